"""Staff doing their main jobs through the console in headless Chromium, on `handrail dev
--policy seconds` with its demo data: the coordinator takes and completes a task and a typed
reply moves the workflow; the clinician records a missed contact and the fallback ladder
appears on the timeline without a reload; the supervisor approves a step-up, sees the slot
taken and reads the reports; a wrong role is refused; and every page passes axe-core (no
serious or critical violation) at desktop width and at 375 px. Screenshots of each page go to
test-artifacts/console/."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from console_browser import PHONE, StaffBrowser, launch_chromium
from devstack import running_stack, wait_for
from playwright.sync_api import expect, sync_playwright

pytestmark = pytest.mark.e2e
LIVE = 30_000  # ms: how long a page may take to show what a workflow did, by itself


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("console") / "data", policy="seconds") as dev:
        # The demo's three discharges and one step-up, recorded: what a first start shows.
        token = dev.logins()["transition_coordinator"]
        wait_for(lambda: len(httpx.get(f"{dev.api_url}/api/transitions", timeout=5,
                                       headers={"Authorization": f"Bearer {token}"}).json()) == 4,
                 within=60, what="the three demo handoffs and the demo step-up")
        yield dev


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def staff(stack, browser):
    """staff(role, n=0, viewport=...) → a logged-in StaffBrowser for that demo login."""
    emails, password = stack.console_logins()
    # The public address (localhost), so the browser's Origin is the one login expects.
    base_url = f"http://localhost:{stack.api_port}"
    opened: list[StaffBrowser] = []

    def open_as(role: str, n: int = 0, **options) -> StaffBrowser:
        person = StaffBrowser(browser, base_url, emails[role][n], password, **options)
        opened.append(person)
        return person.log_in()

    yield open_as
    for person in opened:
        person.close()


def _open_transition(who: StaffBrowser, person_name: str) -> None:
    who.open("/console/transitions?kind=handoff")
    who.page.get_by_role("link", name=person_name).click()
    expect(who.page.get_by_role("heading", level=1)).to_have_text(person_name)


def _local_input(minutes_ahead: int) -> str:
    # The form's datetime-local field is read in the person's time zone (Europe/London).
    when = datetime.now(ZoneInfo("Europe/London")) + timedelta(minutes=minutes_ahead)
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def _book(who: StaffBrowser) -> None:
    page = who.page
    page.locator("#action-book summary").click()
    page.get_by_label(re.compile("^Appointment")).fill(_local_input(60))
    page.get_by_label("Where", exact=True).fill("Clinic 2")
    # The demo discharges are hours old: the seconds policy's first-contact deadline has passed.
    page.get_by_label(re.compile("^Reason, if after")).fill("Demo discharge from hours ago")
    page.locator("#action-book").get_by_role("button", name="Book").click()
    expect(page.get_by_role("status")).to_have_text("Booked.")


def test_coordinator_takes_a_task_and_completes_it_from_my_work(staff):
    riley = staff("transition_coordinator", 1)  # the demo's second coordinator: Morgan owns all
    riley.open("/console/work")
    riley.check_page("work")
    riley.open("/console/transitions")
    riley.check_page("transitions")

    # A task of a colleague's that Riley's role may take (the demo shares transitions out).
    takeable = None
    for person in ("Robin Example", "Sam Sample", "Jordan Placeholder"):
        _open_transition(riley, person)
        tasks = riley.page.locator(".task").filter(
            has=riley.page.get_by_role("button", name=re.compile("^Take")))
        if tasks.count():
            takeable = tasks.first
            break
    assert takeable is not None, "no task of a colleague to take in the demo data"
    riley.check_page("transition")
    task_id = takeable.get_attribute("data-task-id")
    takeable.get_by_role("button", name=re.compile("^Take")).click()
    expect(riley.page.get_by_role("status")).to_have_text("Task taken: it is yours now.")

    riley.open("/console/work")
    mine = riley.page.locator(f".task[data-task-id='{task_id}']")
    expect(mine).to_contain_text("yours")
    mine.get_by_role("button", name=re.compile("^Complete")).click()
    expect(riley.page.get_by_role("status")).to_have_text("Task completed.")
    expect(riley.page.locator(f".task[data-task-id='{task_id}']")).to_have_count(0)


def test_clinician_records_a_missed_contact_and_the_fallback_appears_on_the_timeline(staff):
    sam = staff("clinician")
    _open_transition(sam, "Sam Sample")
    _book(sam)

    def record_missed() -> bool:
        sam.page.locator("#action-record-contact summary").click()
        sam.page.get_by_label("Outcome").select_option("missed")
        sam.page.locator("#action-record-contact").get_by_role("button", name="Record contact").click()
        # Right after booking the contact routine may not have started: the API says so (409).
        return sam.page.get_by_role("status").count() == 1

    wait_for(record_missed, within=20, every=1, what="the missed contact to be accepted")
    expect(sam.page.get_by_role("status")).to_have_text("Contact recorded.")
    # The fallback ladder's first steps reach the timeline while the page stays open.
    fallback = sam.page.locator("#transition-timeline li[data-action^='outreach.']")
    expect(fallback.first).to_be_visible(timeout=LIVE)
    sam.check_page("transition-fallback")


def test_supervisor_approves_a_step_up_and_sees_the_slot_taken(stack, staff):
    clinician = httpx.Client(base_url=stack.api_url, timeout=15,
                             headers={"Authorization": f"Bearer {stack.logins()['clinician']}"})
    robin = next(t for t in clinician.get("/api/transitions").json() if t["person_name"] == "Robin Example")
    asked = clinician.post("/api/step-ups", json={
        "person_id": robin["person_id"], "urgency": "routine",
        "reason": "Two missed sessions, sleeping badly",
        "indicators": {"missed_sessions": 2, "functional_decline": True}})
    assert asked.status_code == 202, asked.text

    avery = staff("supervisor")
    avery.open("/console/approvals")
    pending = avery.page.locator(f"[data-step-up='{asked.json()['transition_id']}']")
    expect(pending).to_be_visible(timeout=LIVE)  # appears once the workflow has recorded it
    expect(pending).to_contain_text("Missed sessions: 2")
    free = avery.page.get_by_test_id("free-crisis-north")
    expect(free).to_have_text("3")
    avery.check_page("approvals")

    pending.locator("summary").click()
    pending.get_by_label("Decision").select_option("approve")
    lead = pending.get_by_label(re.compile("^Lead"))
    lead.select_option(lead.locator("option", has_text="Sam Lindqvist").get_attribute("value"))
    pending.get_by_label(re.compile("^Contact every")).fill("PT8S")
    pending.get_by_label("Reason").fill("Agreed at the huddle: weekly becomes every few days")
    pending.get_by_role("button", name="Record the decision").click()

    expect(avery.page.get_by_role("status")).to_have_text("Decision recorded.")
    expect(free).to_have_text("2", timeout=LIVE)
    expect(avery.page.locator("#approvals-capacity")).to_contain_text("Robin Example")

    # The step-up's timeliness is counted in the outcome figures, exported as CSV too.
    avery.open("/console/reports")
    expect(avery.page.locator("[data-measure^='first_contact']").first).to_be_visible()
    avery.check_page("reports")
    for link in ("Download the outcome figures as CSV", "Download the weekly checks as CSV"):
        exported = avery.page.request.get(avery.page.get_by_role("link", name=link).get_attribute("href"))
        assert exported.status == 200 and "text/csv" in exported.headers["content-type"], link


def test_a_reply_typed_in_the_outbox_moves_the_workflow(staff):
    morgan = staff("transition_coordinator")
    _open_transition(morgan, "Jordan Placeholder")
    morgan.page.locator("#action-confirm-details summary").click()
    morgan.page.get_by_label("Consents to SMS reminders").check()
    morgan.page.locator("#action-confirm-details").get_by_role("button", name="Confirm details").click()
    expect(morgan.page.get_by_role("status")).to_have_text("Details confirmed.")
    _book(morgan)
    # A second tab stays on the transition, never reloaded: what it shows later, it fetched itself.
    watcher = morgan.context.new_page()
    watcher.goto(morgan.page.url.split("?")[0])
    watcher.evaluate("window.notReloaded = true")

    morgan.open("/console/outbox")
    confirmation = morgan.page.locator(".message", has_text="Jordan Placeholder").filter(
        has_text="your appointment is on")
    expect(confirmation).to_be_visible(timeout=LIVE)
    morgan.check_page("outbox")
    confirmation.get_by_label("Reply from the person").fill("YES")
    confirmation.get_by_role("button", name="Send reply").click()
    expect(morgan.page.get_by_role("status")).to_have_text("Reply delivered.")

    expect(watcher.locator("#transition-contacts")).to_contain_text("confirmed by the person",
                                                                    timeout=LIVE)
    assert watcher.evaluate("window.notReloaded === true")


def test_a_wrong_role_is_refused(staff):
    admin = staff("admin")
    expect(admin.page).to_have_url(re.compile("/console/admin$"))
    admin.check_page("admin")
    refused = admin.page.goto("/console/work")
    assert refused.status == 403
    expect(admin.page.get_by_role("alert")).to_contain_text("the admin role may not open this")
    admin.check_page("refused")

    clinician = staff("clinician")
    assert clinician.page.goto("/console/approvals").status == 403
    assert clinician.page.goto("/console/admin").status == 403


def test_every_page_is_accessible_at_375_px(stack, staff, browser):
    login = StaffBrowser(browser, f"http://localhost:{stack.api_port}", "", "", viewport=PHONE)
    login.open("/console/login")
    login.check_page("login")
    login.close()

    avery = staff("supervisor", viewport=PHONE)
    for name, path in [("work", "/console/work"), ("transitions", "/console/transitions"),
                       ("approvals", "/console/approvals"), ("reports", "/console/reports"),
                       ("outbox", "/console/outbox")]:
        avery.open(path)
        avery.check_page(name)
    _open_transition(avery, "Robin Example")
    avery.check_page("transition")
    staff("admin", viewport=PHONE).check_page("admin")
