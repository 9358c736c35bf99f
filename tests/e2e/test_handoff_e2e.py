"""The warm handoff end to end, as staff see it through HTTP, on `handrail dev` itself.

A discharge arrives, details and consent are confirmed, the first contact is booked a few
seconds ahead and then missed; the fallback ladder chases it (missed-contact message, call,
coordinator task) and, while it runs, the Temporal dev server is killed with SIGKILL. The
supervisor brings it back, the ladder carries on to the supervisor's decision, and the
supervisor closes the transition as disengaged. Seconds-scale policy: about a minute in all.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from devstack import DevStackProcess, closed_last, running_stack, wait_for

pytestmark = pytest.mark.e2e

PERSON = {  # synthetic: a drama-range number, an invented name and record number
    "identifiers": [{"system": "urn:example:mrn", "value": "E2E-0001"}],
    "given_name": "Quinn",
    "family_name": "Testperson",
    "phone": "+447700900555",
    "time_zone": "Europe/London",
}
CLINICAL_DETAIL = "previous self-harm"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    with running_stack(tmp_path_factory.mktemp("e2e") / "data",
                       policy="seconds", demo_notifications=False) as dev:
        yield dev


class Staff:
    def __init__(self, api_url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=15
        )

    def get(self, path: str, **params) -> httpx.Response:
        return self.http.get(path, params=params)

    def act(self, transition_id: str, action: str, body: dict) -> httpx.Response:
        return self.http.post(f"/api/transitions/{transition_id}/actions/{action}", json=body)


def test_warm_handoff_survives_a_dev_server_crash_and_ends_in_a_supervisor_decision(
    stack: DevStackProcess,
) -> None:
    logins = stack.logins()
    coordinator = Staff(stack.api_url, logins["transition_coordinator"])
    supervisor = Staff(stack.api_url, logins["supervisor"])
    started = time.monotonic()

    # 1. The ED discharge notification arrives.
    notification = {
        "source": "emergency_department",
        "source_system": "e2e-general-ed",
        "encounter_id": "e2e-encounter-1",
        "event_time": datetime.now(UTC).isoformat(),
        "person": PERSON,
        "summary": {"risk_factors": [CLINICAL_DETAIL], "safety_plan": "Call the crisis line."},
    }
    response = coordinator.http.post("/api/handoffs", json=notification)
    assert response.status_code == 202, response.text
    transition_id = response.json()["transition_id"]
    assert transition_id.startswith("handoff-")
    # The same notification again reaches the same transition.
    again = coordinator.http.post("/api/handoffs", json=notification)
    assert (again.status_code, again.json()["transition_id"]) == (200, transition_id)

    def transition() -> dict:
        detail = coordinator.get(f"/api/transitions/{transition_id}")
        assert detail.status_code == 200, detail.text
        return detail.json()

    wait_for(lambda: transition()["recorded"], within=20, what="the transition to be recorded")

    # 2. Consent and contact details confirmed; 3. first contact booked a few seconds ahead.
    confirmed = coordinator.act(
        transition_id, "confirm-details", {"consent_to_messages": True, "phone": PERSON["phone"]}
    )
    assert confirmed.status_code == 200, confirmed.text
    appointment_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    booked = coordinator.act(
        transition_id, "book", {"appointment_at": appointment_at.isoformat(), "location": "Clinic 2"}
    )
    assert booked.status_code == 200, booked.text
    assert booked.json()["stage"] == "first_contact_scheduled"

    def outbox() -> list[dict]:
        messages = coordinator.get("/api/outbox")
        assert messages.status_code == 200, messages.text
        return [m for m in messages.json() if m["transition_id"] == transition_id]

    def outbox_has(*fragments: str, kind: str = "sms"):
        def check() -> list[dict]:
            return [m for m in outbox() if m["kind"] == kind and all(f in m["body"] for f in fragments)]

        return check

    # The confirmation and the reminders reach the outbox (consent was given).
    wait_for(outbox_has("your appointment is on"), within=15, what="the booking confirmation")
    wait_for(outbox_has("reminder of your appointment"), within=15, what="a reminder")

    # 4. Nobody records the contact: it is missed and the ladder's first step messages the person.
    wait_for(outbox_has("we missed you"), within=30, what="the missed-contact message")

    # Mid-ladder, the Temporal dev server dies without warning.
    before = stack.children()
    os.kill(before["temporal"], signal.SIGKILL)
    stack.wait_child("temporal", other_than=before["temporal"], within=30)
    stack.wait_child("worker", other_than=before["worker"], within=60)
    stack.wait_ready(within=60)

    # The ladder carries on: the call, and the coordinator's own call as a task on the team list.
    wait_for(outbox_has(kind="call"), within=40, what="the outreach call entry")
    seen_task_kinds: set[str] = set()

    def team_task_seen(kind: str, staff: Staff, view: str):
        def check() -> bool:
            tasks = staff.get("/api/tasks", view=view)
            assert tasks.status_code == 200, tasks.text
            seen_task_kinds.update(t["kind"] for t in tasks.json() if t["transition_id"] == transition_id)
            return kind in seen_task_kinds

        return check

    wait_for(team_task_seen("outreach_call", coordinator, "team"), within=30, every=0.3,
             what="the coordinator's outreach task in GET /api/tasks")

    # 5. The ladder ends on the supervisor's own list, as a decision to make.
    wait_for(team_task_seen("supervisor_decision", supervisor, "mine"), within=40,
             what="the supervisor's decision task in GET /api/tasks")
    wait_for(lambda: transition()["stage"] == "awaiting_supervisor_decision", within=15,
             what="the transition's stage to show the pending decision")

    # Only the supervisor may decide, and a reason is required.
    refused = coordinator.act(transition_id, "decide", {"decision": "close_disengaged", "reason": "x"})
    assert refused.status_code == 403
    unreasoned = supervisor.act(transition_id, "decide", {"decision": "close_disengaged", "reason": ""})
    assert unreasoned.status_code == 422
    decided = supervisor.act(
        transition_id, "decide",
        {"decision": "close_disengaged", "reason": "Message, call and coordinator call unanswered."},
    )
    assert decided.status_code == 200, decided.text

    def closed() -> dict | None:
        detail = transition()
        return detail if detail["stage"] == "closed" else None

    final = wait_for(closed, within=20, what="the transition to close")
    assert final["outcome"] == "disengaged"
    assert [(d["decision"], d["decided_by_id"] is not None) for d in final["decisions"]] == [
        ("close_disengaged", True)
    ]
    timeline = [event["action"] for event in final["timeline"]]
    assert timeline[0] == "transition.recorded" and closed_last(timeline)
    assert not [t for t in final["tasks"] if t["status"] in ("requested", "in-progress")]

    # Minimum necessary: no name and no clinical detail in anything sent to the phone.
    for message in outbox():
        assert PERSON["given_name"] not in message["body"]
        assert PERSON["family_name"] not in message["body"]
        assert CLINICAL_DETAIL not in message["body"]
    assert time.monotonic() - started < 150
