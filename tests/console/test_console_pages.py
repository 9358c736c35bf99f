"""The console's pages without a browser: login, scoping by role and team, CSRF, the actions
reaching the workflow through the API's own dispatch, and reads on the audit trail."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from console_world import PASSWORD, log_in_as
from sqlmodel import Session, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from handrail.security.passwords import verify_password
from handrail.store import inbound
from handrail.store.demo import CONSOLE_PASSWORD_PREFIX, seed_demo
from handrail.store.models import AuditEvent, InboundMessage, Staff, Task, Transition


def test_pages_send_a_visitor_without_a_session_to_the_login_page(client):
    answer = client.get("/console/work")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?next=/console/work"


def test_login_with_the_password_opens_the_page_asked_for_and_a_wrong_one_says_why(client, world):
    wrong = client.post("/console/login", data={"email": world.emails["clinician"], "password": "nope-nope",
                                                "next": "/console/transitions"})
    assert wrong.status_code == 401
    assert "email or password is wrong" in wrong.text

    right = client.post("/console/login", data={"email": world.emails["clinician"], "password": PASSWORD,
                                                "next": "/console/transitions"})
    assert (right.status_code, right.headers["location"]) == (303, "/console/transitions")
    page = client.get("/console/transitions")
    assert page.status_code == 200 and "RobinConsoleNorth" not in page.text
    assert "Robin ConsoleNorth" in page.text and "Sasha ConsoleSouth" not in page.text


def test_logout_needs_the_csrf_token_and_then_ends_the_session(client, world):
    csrf = log_in_as(client, world, "clinician")

    assert client.post("/console/logout", data={}).status_code == 403
    assert client.post("/console/logout", data={"csrf_token": csrf}).status_code == 303
    client.cookies.clear()
    assert client.get("/console/work").status_code == 303


def test_my_work_lists_my_tasks_and_the_unowned_queue_overdue_first(client, world):
    log_in_as(client, world, "transition_coordinator")

    page = client.get("/console/work")

    assert page.status_code == 200
    queue, mine = page.text.index("Book first contact (queue)"), page.text.index("Book first contact (mine)")
    assert queue < mine  # the overdue unowned one first
    assert "(south)" not in page.text
    assert f'action="/console/tasks/{world.tasks["queue"]}/take"' in page.text


def test_taking_a_task_makes_it_mine_on_the_record_and_a_second_take_is_refused(client, world):
    csrf = log_in_as(client, world, "clinician")

    taken = client.post(f"/console/tasks/{world.tasks['queue']}/take", data={"csrf_token": csrf})
    again = client.post(f"/console/tasks/{world.tasks['queue']}/take", data={"csrf_token": csrf})

    assert (taken.status_code, taken.headers["location"]) == (303, "/console/work?done=taken")
    assert again.status_code == 409 and "already yours" in again.text
    with Session(world.engine) as session:
        assert session.get(Task, world.tasks["queue"]).owner_id == world.staff["clinician"]
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "task.taken")).all()
        assert event.actor_id == world.staff["clinician"]


def test_completing_a_task_goes_to_its_workflow_and_a_refusal_shows_the_workflows_reason(
    client, world, temporal,
):
    csrf = log_in_as(client, world, "transition_coordinator")
    back = f"/console/transitions/{world.transitions['north']}"
    done = client.post(f"/console/tasks/{world.tasks['mine']}/complete",
                       data={"csrf_token": csrf, "back": back})
    assert done.headers["location"] == f"/console/transitions/{world.transitions['north']}?done=completed"
    [(kind, workflow_id, update, args)] = temporal.calls
    assert (kind, workflow_id, update, args[0].task_id) == (
        "update", world.transitions["north"], "complete_task", world.tasks["mine"])

    temporal.update_error = WorkflowUpdateFailedError(
        ApplicationError("task 2 is not open on this transition", type="StageConflict"))
    refused = client.post(f"/console/tasks/{world.tasks['mine']}/complete", data={"csrf_token": csrf})
    assert refused.status_code == 409 and "task 2 is not open on this transition" in refused.text


def test_a_transition_page_shows_the_record_and_audits_one_read_however_often_it_refreshes(client, world):
    log_in_as(client, world, "clinician")
    url = f"/console/transitions/{world.transitions['north']}"

    pages = [client.get(url) for _ in range(3)]

    assert [p.status_code for p in pages] == [200, 200, 200]
    assert "Robin ConsoleNorth" in pages[0].text and "Open the workflow in the Temporal UI" in pages[0].text
    with Session(world.engine) as session:
        reads = session.exec(select(AuditEvent).where(AuditEvent.action == "read")).all()
    assert [(r.actor_id, r.transition_id) for r in reads] == [
        (world.staff["clinician"], world.transitions["north"])]


def test_a_text_no_pathway_heard_shows_on_the_transition_page_with_its_task(client, world):
    with Session(world.engine) as session:
        message = inbound.record_message(
            session=session, key="twilio:SMconsole", person_id=session.get(
                Transition, world.transitions["north"]).person_id,
            transition_id=world.transitions["north"], channel="sms",
            body="Still struggling, can someone ring me", at=datetime.now(UTC))
        inbound.task_for_unheard(session=session, message=message, at=datetime.now(UTC),
                                 due_within=timedelta(hours=4))
        session.commit()
        assert session.exec(select(InboundMessage)).one().task_id is not None
    log_in_as(client, world, "transition_coordinator")

    page = client.get(f"/console/transitions/{world.transitions['north']}")

    assert "“Still struggling, can someone ring me”" in page.text
    assert "no pathway was listening: a task to read it" in page.text
    assert "sent a message no running pathway heard" in page.text  # the open task


def test_booking_from_the_form_sends_the_apis_command_in_the_persons_time_zone(client, world, temporal):
    csrf = log_in_as(client, world, "transition_coordinator")
    url = f"/console/transitions/{world.transitions['north']}"

    answer = client.post(f"{url}/actions/book", data={
        "csrf_token": csrf, "appointment_at": "2030-07-01T10:30", "location": "Clinic 2"})

    assert (answer.status_code, answer.headers["location"]) == (303, f"{url}?done=book")
    [(_, _, update, (booking, actor))] = temporal.calls
    assert update == "book" and booking.location == "Clinic 2"
    assert booking.appointment_at.isoformat() == "2030-07-01T10:30:00+01:00"  # London summer time
    assert actor.id == world.staff["transition_coordinator"]


def test_an_action_the_role_may_not_take_answers_the_apis_403_with_its_reason(client, world, temporal):
    csrf = log_in_as(client, world, "clinician")
    url = f"/console/transitions/{world.transitions['north']}"

    answer = client.post(f"{url}/actions/close", data={"csrf_token": csrf, "reason": "moved away"})
    bad = client.post(f"{url}/actions/reassign", data={"csrf_token": csrf, "owner_id": "x", "reason": ""})

    assert answer.status_code == 403 and "the clinician role may not close" in answer.text
    assert bad.status_code == 403  # clinicians may not reassign either, whatever the form says
    assert temporal.calls == []


def test_an_invalid_form_answers_422_naming_the_field(client, world, temporal):
    csrf = log_in_as(client, world, "transition_coordinator")
    url = f"/console/transitions/{world.transitions['north']}"

    answer = client.post(f"{url}/actions/close", data={"csrf_token": csrf, "reason": ""})

    assert answer.status_code == 422 and "reason:" in answer.text
    assert temporal.calls == []


def test_forms_without_the_csrf_token_are_refused(client, world, temporal):
    log_in_as(client, world, "transition_coordinator")

    answer = client.post(f"/console/transitions/{world.transitions['north']}/actions/close",
                         data={"reason": "x"})

    assert answer.status_code == 403 and "CSRF" in answer.text
    assert temporal.calls == []


def test_another_teams_transition_is_not_found_and_admins_never_see_clinical_pages(client, world):
    log_in_as(client, world, "clinician")
    assert client.get(f"/console/transitions/{world.transitions['south']}").status_code == 404

    log_in_as(client, world, "admin")
    for page in ("/console/work", "/console/transitions", "/console/outbox",
                 f"/console/transitions/{world.transitions['north']}"):
        refused = client.get(page)
        assert refused.status_code == 403, page
        assert "Robin" not in refused.text
    admin = client.get("/console/admin")
    assert admin.status_code == 200 and "Test clinician" in admin.text and "Robin" not in admin.text
    assert client.get("/console/").headers["location"] == "/console/admin"


def test_a_reply_typed_in_the_outbox_reaches_the_workflow_as_the_persons_reply(client, world, temporal):
    csrf = log_in_as(client, world, "transition_coordinator")

    page = client.get("/console/outbox")
    answer = client.post(f"/console/outbox/{world.messages['north']}/reply",
                         data={"csrf_token": csrf, "text": "YES"})
    again = client.post(f"/console/outbox/{world.messages['north']}/reply",
                        data={"csrf_token": csrf, "text": "YES"})

    assert page.status_code == 200 and "Reply from the person" in page.text
    assert answer.headers["location"] == "/console/outbox?done=replied"
    [(kind, workflow_id, name, reply)] = temporal.calls
    assert (kind, workflow_id, name, reply.text) == (
        "signal", world.transitions["north"], "person_reply", "YES")
    assert again.status_code == 409 and "already has a reply" in again.text


def test_pages_load_only_their_own_script_and_style_under_the_csp(client, world):
    log_in_as(client, world, "supervisor")

    page = client.get("/console/work")

    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/console/static/console.js" defer>']
    assert "style=" not in page.text
    assert client.get("/console/static/console.js").status_code == 200
    assert client.get("/console/static/console.css").status_code == 200


def test_reports_show_assurance_and_outcomes_to_supervisors_only_with_csv(client, world):
    log_in_as(client, world, "supervisor")

    page = client.get("/console/reports?from=2026-01-01&to=2026-12-31")
    assurance_csv = client.get("/console/reports/assurance.csv")
    outcomes_csv = client.get("/api/reports/outcomes?from=2026-01-01&to=2026-12-31&format=csv")

    assert page.status_code == 200
    assert "Weekly assurance" in page.text and "First contact within 72 hours" in page.text
    assert assurance_csv.status_code == 200
    assert assurance_csv.text.splitlines()[0] == "team,week,check,count,source"
    assert outcomes_csv.status_code == 200 and outcomes_csv.text.startswith("measure,")
    log_in_as(client, world, "clinician")
    assert client.get("/console/reports").status_code == 403


def test_approvals_list_the_step_ups_waiting_for_a_decision_with_capacity(client, world):
    log_in_as(client, world, "supervisor")

    page = client.get("/console/approvals")

    assert page.status_code == 200 and "No step-up is waiting for a decision." in page.text
    log_in_as(client, world, "clinician")
    assert client.get("/console/approvals").status_code == 403


def test_a_task_meant_for_a_role_can_be_taken_only_by_that_role(client, world):
    with Session(world.engine, expire_on_commit=False) as session:
        queued = session.get(Task, world.tasks["queue"])
        decision = Task(key="north-decision", transition_id=queued.transition_id,
                        workflow_id=queued.workflow_id, kind="supervisor_decision",
                        title="Decide after the fallback ladder", team_id=queued.team_id,
                        role="supervisor")
        session.add(decision)
        session.commit()
    csrf = log_in_as(client, world, "clinician")

    work = client.get("/console/work")
    refused = client.post(f"/console/tasks/{decision.id}/take", data={"csrf_token": csrf})

    assert f'action="/console/tasks/{decision.id}/take"' not in work.text
    assert refused.status_code == 403 and "for the supervisor role" in refused.text
    csrf = log_in_as(client, world, "supervisor")
    assert client.post(f"/console/tasks/{decision.id}/take", data={"csrf_token": csrf}).status_code == 303


def test_demo_staff_share_one_console_password_written_once_to_the_logins_file(sqlite_engine):
    with Session(sqlite_engine) as session:
        first = seed_demo(session)
        session.commit()
        again = seed_demo(session)
        staff = session.exec(select(Staff)).all()

    [line] = [text for text in first.as_text().splitlines() if text.startswith(CONSOLE_PASSWORD_PREFIX)]
    password = line.split()[-1]
    assert len(password) >= 12 and again.password is None
    assert all(verify_password(member.password_hash, password) for member in staff)


def test_a_step_up_page_offers_the_huddles_decision_to_a_supervisor(client, world):
    with Session(world.engine) as session:
        north = session.get(Transition, world.transitions["north"])
        session.add(Transition(id="stepup-console-north", kind="step_up", stage="awaiting_decision",
                               person_id=north.person_id, team_id=north.team_id, policy_version="test"))
        session.commit()
    log_in_as(client, world, "supervisor")

    page = client.get("/console/transitions/stepup-console-north")

    assert page.status_code == 200
    assert 'action="/console/transitions/stepup-console-north/actions/decide"' in page.text
    assert "Contact every (ISO 8601" in page.text and "/actions/book" not in page.text


def test_a_pathway_without_its_own_forms_gets_forms_from_its_commands(client, world, temporal):
    with Session(world.engine) as session:
        north = session.get(Transition, world.transitions["north"])
        session.add(Transition(id="stepdown-console-north", kind="step_down", stage="tapering",
                               person_id=north.person_id, team_id=north.team_id, policy_version="test"))
        session.commit()
    csrf = log_in_as(client, world, "supervisor")
    url = "/console/transitions/stepdown-console-north"

    page = client.get(url)
    closed = client.post(f"{url}/actions/close", data={"csrf_token": csrf, "reason": "moved area"})

    assert page.status_code == 200 and f'action="{url}/actions/close"' in page.text
    assert 'id="close-reason"' in page.text  # the field, labelled, from the command's schema
    for action in ("early-warning", "adjust-taper"):  # the step-down's own actions
        assert f'action="{url}/actions/{action}"' in page.text
    assert closed.status_code == 303
    [(_, workflow_id, update, (command, _actor))] = temporal.calls
    assert (workflow_id, update, command.reason) == ("stepdown-console-north", "close", "moved area")


def test_an_early_warning_sign_reported_from_its_generic_form_reaches_the_step_down(
    client, world, temporal,
):
    with Session(world.engine) as session:
        north = session.get(Transition, world.transitions["north"])
        session.add(Transition(id="stepdown-console-ews", kind="step_down", stage="tapering",
                               person_id=north.person_id, team_id=north.team_id, policy_version="test"))
        session.commit()
    csrf = log_in_as(client, world, "clinician")

    answer = client.post("/console/transitions/stepdown-console-ews/actions/early-warning",
                         data={"csrf_token": csrf, "sign": "not sleeping again", "severity": "moderate"})

    assert answer.status_code == 303, answer.text
    [(_, _, update, (command, _actor))] = temporal.calls
    assert (update, command.sign, command.severity.value) == ("early_warning", "not sleeping again",
                                                              "moderate")


def test_a_decision_task_is_opened_for_its_action_never_ticked_off_from_my_work(client, world):
    with Session(world.engine) as session:
        north = session.get(Transition, world.transitions["north"])
        coordinator = session.exec(select(Staff).where(Staff.role == "transition_coordinator")).first()
        decision = Task(key="north-ladder-decision", transition_id=north.id, workflow_id=f"{north.id}.c1",
                        kind="supervisor_decision", title="Fallback ladder exhausted: decide",
                        team_id=north.team_id, owner_id=coordinator.id)
        session.add(decision)
        session.commit()
        decision_id = decision.id
    log_in_as(client, world, "transition_coordinator")

    page = client.get("/console/work")

    assert "Fallback ladder exhausted: decide" in page.text
    assert f'action="/console/tasks/{decision_id}/complete"' not in page.text
    assert f'action="/console/tasks/{world.tasks["mine"]}/complete"' in page.text


def test_times_show_in_the_consoles_zone_with_its_name_summer_and_winter():
    from types import SimpleNamespace

    from handrail.api.console.web import _when
    from handrail.config import Settings

    def context(zone: str) -> SimpleNamespace:
        zone = Settings(console_time_zone=zone).console_time_zone  # validated as the app's is
        return SimpleNamespace(globals={"console_time_zone": zone})

    summer, winter = datetime(2027, 7, 14, 9, 30, tzinfo=UTC), datetime(2027, 1, 14, 9, 30, tzinfo=UTC)
    assert _when(context("Europe/London"), summer) == "14 Jul 10:30:00 BST"
    assert _when(context("Europe/London"), winter) == "14 Jan 09:30:00 GMT"
    assert _when(context("America/New_York"), summer) == "14 Jul 05:30:00 EDT"
    assert _when(context("Europe/London"), None) == "—"


def test_an_unknown_console_zone_is_refused_naming_the_setting():
    import pytest
    from pydantic import ValidationError

    from handrail.config import Settings

    with pytest.raises(ValidationError, match="console_time_zone"):
        Settings(console_time_zone="Mars/Olympus")


def test_a_time_in_a_timeline_entry_reads_like_every_other_time():
    from types import SimpleNamespace

    from handrail.api.console.web import _detail_value

    environment = SimpleNamespace(globals={"console_time_zone": "Europe/London"})
    assert _detail_value(environment, "2027-07-14T09:30:00.123456+00:00") == "14 Jul 10:30:00 BST"
    assert _detail_value(environment, "handoff-49358908.c1") == "handoff-49358908.c1"
    assert _detail_value(environment, 3) == 3
    assert _detail_value(environment, ["a"]) == '["a"]'
