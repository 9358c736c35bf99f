"""The step-up end to end, as staff see it through HTTP, on `handrail dev --policy seconds`.

A person on the caseload (through a warm handoff) gets worse: their clinician asks for an
urgent step-up; the supervisor approves it at the huddle with a lead and a contact frequency;
the person takes a reserved slot, the first intensified contact is recorded, the period ends in
a review and the lead steps them down, which gives the slot back. Beside it a second request
gets no decision and climbs the escalation ladder until the on-call senior decides.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest
from devstack import DevStackProcess, closed_last, running_stack, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    with running_stack(tmp_path_factory.mktemp("e2e-step-up") / "data",
                       policy="seconds", demo_notifications=False) as dev:
        yield dev


class Staff:
    def __init__(self, api_url: str, token: str) -> None:
        self.http = httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=15)

    def get(self, path: str, **params) -> httpx.Response:
        return self.http.get(path, params=params)

    def act(self, transition_id: str, action: str, body: dict) -> httpx.Response:
        return self.http.post(f"/api/transitions/{transition_id}/actions/{action}", json=body)

    def detail(self, transition_id: str) -> dict:
        answer = self.get(f"/api/transitions/{transition_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def tasks(self, transition_id: str, view: str = "team") -> list[dict]:
        answer = self.get("/api/tasks", view=view)
        assert answer.status_code == 200, answer.text
        return [t for t in answer.json() if t["transition_id"] == transition_id]


def person_on_caseload(coordinator: Staff, mrn: str) -> int:
    """A warm handoff puts the person on the team's caseload."""
    answer = coordinator.http.post("/api/handoffs", json={
        "source": "crisis_line", "source_system": "e2e-crisis-line", "encounter_id": f"e2e-{mrn}",
        "event_time": datetime.now(UTC).isoformat(),
        "person": {"identifiers": [{"system": "urn:example:mrn", "value": mrn}],
                   "given_name": "Sky", "family_name": "Testperson", "phone": "+447700900556"},
        "summary": {"risk_factors": ["none recorded"], "safety_plan": "Call the crisis line."},
    })
    assert answer.status_code == 202, answer.text
    handoff_id = answer.json()["transition_id"]
    recorded = wait_for(lambda: coordinator.detail(handoff_id)["recorded"] and coordinator.detail(
        handoff_id), within=20, what="the handoff to be recorded")
    return recorded["person_id"]


def task_of(staff: Staff, transition_id: str, kind: str, view: str = "team"):
    def check():
        found = [t for t in staff.tasks(transition_id, view) if t["kind"] == kind
                 and t["status"] == "requested"]
        return found[0] if found else None

    return check


def test_step_up_is_requested_decided_given_a_slot_chased_reviewed_and_stepped_down(
        stack: DevStackProcess) -> None:
    logins = stack.logins()
    coordinator = Staff(stack.api_url, logins["transition_coordinator"])
    clinician = Staff(stack.api_url, logins["clinician"])
    supervisor = Staff(stack.api_url, logins["supervisor"])
    on_call = Staff(stack.api_url, logins["on_call_senior"])
    started = time.monotonic()
    person_id = person_on_caseload(coordinator, "E2E-STEPUP-1")
    unanswered_person = person_on_caseload(coordinator, "E2E-STEPUP-2")

    # 1. The clinician asks for an urgent step-up with the indicators behind it.
    request = {"person_id": person_id, "urgency": "urgent", "reason": "Two missed sessions",
               "indicators": {"missed_sessions": 2, "functional_decline": True}}
    asked = clinician.http.post("/api/step-ups", json=request)
    assert asked.status_code == 202, asked.text
    step_up = asked.json()["transition_id"]
    assert step_up.startswith("stepup-")
    again = clinician.http.post("/api/step-ups", json=request)
    assert (again.status_code, again.json()["transition_id"]) == (200, step_up)
    unanswered = clinician.http.post("/api/step-ups", json={
        "person_id": unanswered_person, "urgency": "urgent", "reason": "Early warning signs"})
    assert unanswered.status_code == 202, unanswered.text
    unanswered_id = unanswered.json()["transition_id"]

    # 2. The huddle: the supervisor's task; only a supervisor-level role decides, with a reason.
    wait_for(task_of(supervisor, step_up, "step_up_huddle", "mine"), within=20,
             what="the huddle task on the supervisor's list")
    detail = clinician.detail(step_up)
    assert detail["kind"] == "step_up" and detail["status"]["stage"] == "awaiting_decision"
    lead_id = detail["owner"]["id"]  # the requesting clinician leads it
    approve = {"decision": "approve", "reason": "Risk rising; two contacts a week",
               "lead_id": lead_id, "contact_frequency": "PT8S"}
    assert clinician.act(step_up, "decide", approve).status_code == 403
    assert supervisor.act(step_up, "decide", {**approve, "reason": ""}).status_code == 422
    decided = supervisor.act(step_up, "decide", approve)
    assert decided.status_code == 200, decided.text
    assert supervisor.act(step_up, "decide", approve).status_code == 409  # decided once only

    # 3. A reserved slot of the team, visible on the capacity board.
    def holding() -> dict | None:
        board = supervisor.get("/api/capacity").json()
        north = next(team for team in board if team["team"] == "crisis-north")
        return north if step_up in [s["holder_transition_id"] for s in north["slots"]] else None

    wait_for(holding, within=15, what="the step-up to hold a slot")

    # 4. Intensified contacts, each chased by the contact routine; the first one is made.
    wait_for(lambda: clinician.detail(step_up)["status"]["active_contact_id"], within=15,
             what="the first intensified contact")
    made = clinician.act(step_up, "record-contact", {"outcome": "attended"})
    assert made.status_code == 200, made.text
    wait_for(lambda: clinician.detail(step_up)["status"]["first_intensified_contact_at"],
             within=15, what="the first intensified contact recorded")

    # The unanswered request has climbed its ladder meanwhile: clinical lead, then on-call senior.
    wait_for(task_of(on_call, unanswered_id, "step_up_escalation", "mine"), within=45,
             what="the escalation to the on-call senior")
    escalated = clinician.detail(unanswered_id)["status"]["escalations"]
    assert [e["role"] for e in escalated] == ["clinical_lead", "on_call_senior"]
    declined = on_call.act(unanswered_id, "decide", {"decision": "decline",
                                                     "reason": "Seen at home tonight instead"})
    assert declined.status_code == 200, declined.text

    # The period ends in a review for the lead: stepping down gives the slot back.
    wait_for(task_of(clinician, step_up, "step_up_review", "mine"), within=60,
             what="the review task at the end of the period")
    reviewed = clinician.act(step_up, "review", {"decision": "step_down", "reason": "Stable again"})
    assert reviewed.status_code == 200, reviewed.text
    wait_for(lambda: holding() is None, within=15, what="the slot to be released")
    hook = wait_for(task_of(clinician, step_up, "start_step_down", "mine"), within=15,
                    what="the task to start the step-down taper")
    done = clinician.http.post(f"/api/tasks/{hook['id']}/complete", json={"note": "taper started"})
    assert done.status_code == 200, done.text

    final = wait_for(lambda: (d := clinician.detail(step_up))["stage"] == "closed" and d,
                     within=20, what="the step-up to close")
    assert final["outcome"] == "stepped_down"
    assert [(d["kind"], d["decision"]) for d in final["decisions"]] == [
        ("step_up_huddle", "approve"), ("step_up_review", "step_down")]
    timeline = [event["action"] for event in final["timeline"]]
    assert timeline[0] == "transition.recorded" and closed_last(timeline)
    assert "step_up.slot_claimed" in timeline and "step_up.first_intensified_contact" in timeline
    assert clinician.detail(unanswered_id)["outcome"] == "declined"
    assert time.monotonic() - started < 120
