"""The step-down taper end to end, as staff see it through HTTP, on `handrail dev --policy seconds`.

A stabilized person's clinician starts a taper (refused first with a criterion missing, then
accepted with an override), slows it down once, records each contact, writes the exit plan;
after discharge the person answers two check-ins, one well and one worryingly. Beside it
another person's taper meets an early warning sign that starts an urgent step-up, which the
supervisor approves: that step-down closes re-escalated, and the two point at each other.
"""

from __future__ import annotations

import time

import pytest
from devstack import DevStackProcess, closed_last, running_stack, wait_for
from test_step_up_e2e import Staff, person_on_caseload, task_of

pytestmark = pytest.mark.e2e

CRITERIA = ["symptom_control", "functional_markers", "adherence", "safety_plan_reliability"]
CONTINGENCY = {"early_warning_signs": ["sleeping badly", "missing meals"],
               "fast_track_route": "Call the duty worker the same day"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    with running_stack(tmp_path_factory.mktemp("e2e-step-down") / "data",
                       policy="seconds", demo_notifications=False) as dev:
        yield dev


def consenting_person(coordinator: Staff, mrn: str) -> int:
    person_id = person_on_caseload(coordinator, mrn)
    handoff = next(t for t in coordinator.get("/api/transitions", kind="handoff").json()
                   if t["person_id"] == person_id)
    confirmed = coordinator.act(handoff["id"], "confirm-details", {"consent_to_messages": True})
    assert confirmed.status_code == 200, confirmed.text
    return person_id


def check_in_messages(staff: Staff, transition_id: str) -> list[dict]:
    return sorted((m for m in staff.get("/api/outbox").json()
                   if m["transition_id"] == transition_id and "checking in" in m["body"]),
                  key=lambda m: m["id"])


def test_a_taper_is_adjusted_completed_discharged_and_checked_in_on(stack: DevStackProcess) -> None:
    logins = stack.logins()
    coordinator = Staff(stack.api_url, logins["transition_coordinator"])
    clinician = Staff(stack.api_url, logins["clinician"])
    started = time.monotonic()
    person_id = consenting_person(coordinator, "E2E-STEPDOWN-1")

    request = {"person_id": person_id, "contingency": CONTINGENCY,
               "stabilization": {"confirmed": CRITERIA[:3]}}
    refused = clinician.http.post("/api/step-downs", json=request)
    assert refused.status_code == 422 and "safety_plan_reliability" in refused.text
    request["stabilization"]["overrides"] = {"safety_plan_reliability": "Rewritten with Sky today"}
    asked = clinician.http.post("/api/step-downs", json=request)
    assert asked.status_code == 202, asked.text
    step_down = asked.json()["transition_id"]
    assert step_down.startswith("stepdown-")

    slower = clinician.act(step_down, "adjust-taper", {"kind": "slower", "reason": "Agreed with Sky"})
    assert slower.status_code == 200, slower.text
    assert len(slower.json()["remaining"]) == 4
    for number in range(1, 5):
        contact_id = f"{step_down}.c{number}"
        wait_for(lambda cid=contact_id: clinician.detail(step_down)["status"]["active_contact_id"] == cid,
                 within=20, what=f"taper contact {number}")
        made = clinician.act(step_down, "record-contact", {"outcome": "attended"})
        assert made.status_code == 200, made.text

    exit_task = wait_for(task_of(clinician, step_down, "exit_plan", "mine"), within=20,
                         what="the exit planning task")
    assert exit_task["kind"] == "exit_plan"
    planned = clinician.act(step_down, "exit-plan", {"signposting": ["Recovery college"]})
    assert planned.status_code == 200, planned.text

    for number, text in ((1, "5"), (2, "3")):
        message = wait_for(lambda n=number: len(check_in_messages(coordinator, step_down)) >= n
                           and check_in_messages(coordinator, step_down)[-1], within=20,
                           what=f"check-in {number}")
        answered = coordinator.http.post(f"/api/outbox/{message['id']}/reply", json={"text": text})
        assert answered.status_code == 200, answered.text

    final = wait_for(lambda: (d := clinician.detail(step_down))["stage"] == "closed" and d,
                     within=30, what="the step-down to close")
    assert final["outcome"] == "completed"
    calls = [t for t in final["tasks"] if t["kind"] == "check_in_call"]
    assert len(calls) == 1 and calls[0]["title"].startswith("The check-in answer is worrying")
    timeline = [event["action"] for event in final["timeline"]]
    assert "step_down.discharged" in timeline and closed_last(timeline)
    assert [d["kind"] for d in final["decisions"]][:1] == ["taper_adjustment"]
    assert time.monotonic() - started < 90


def test_an_early_warning_sign_starts_an_urgent_step_up_and_re_escalates(stack: DevStackProcess) -> None:
    logins = stack.logins()
    coordinator = Staff(stack.api_url, logins["transition_coordinator"])
    clinician = Staff(stack.api_url, logins["clinician"])
    supervisor = Staff(stack.api_url, logins["supervisor"])
    person_id = consenting_person(coordinator, "E2E-STEPDOWN-2")
    asked = clinician.http.post("/api/step-downs", json={
        "person_id": person_id, "contingency": CONTINGENCY,
        "stabilization": {"confirmed": CRITERIA}})
    assert asked.status_code == 202, asked.text
    step_down = asked.json()["transition_id"]
    wait_for(lambda: clinician.detail(step_down)["recorded"], within=20, what="the step-down recorded")

    warned = clinician.act(step_down, "early-warning", {"sign": "stopped medication",
                                                        "severity": "severe"})
    assert warned.status_code == 200, warned.text
    step_up = warned.json()["re_escalation_id"]
    huddle = wait_for(task_of(supervisor, step_up, "step_up_huddle"), within=20,
                      what="the urgent huddle task")
    assert huddle["priority"] == "urgent"
    assert clinician.detail(step_down)["status"]["stage"] == "awaiting_re_escalation"
    assert clinician.detail(step_up)["follows_step_down_id"] == step_down
    decided = supervisor.act(step_up, "decide", {"decision": "approve", "reason": "Relapse signature",
                                                 "lead_id": clinician.detail(step_down)["owner"]["id"]})
    assert decided.status_code == 200, decided.text
    final = wait_for(lambda: (d := clinician.detail(step_down))["stage"] == "closed" and d,
                     within=20, what="the step-down to close re-escalated")
    assert final["outcome"] == "re_escalated"
    assert any(t["kind"] == "early_warning" for t in final["tasks"])
