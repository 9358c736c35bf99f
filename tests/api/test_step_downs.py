"""`POST /api/step-downs` and the step-down's actions, with a Temporal stand-in."""

from __future__ import annotations

from datetime import UTC, datetime

from api_world import add_task, add_transition
from sqlmodel import Session

from handrail.domain.step_down import AdjustTaper, StepDownInput
from handrail.domain.taper import AdjustmentKind
from handrail.store.models import Transition

ALL = ["symptom_control", "functional_markers", "adherence", "safety_plan_reliability"]


def add_pathway(world, transition_id: str, team_id: int, kind: str) -> None:
    with Session(world.engine) as session:
        session.add(Transition(id=transition_id, kind=kind, stage="recorded", person_id=world.person_id,
                               team_id=team_id, policy_version="test", event_time=datetime.now(UTC)))
        session.commit()


def request_for(world, **changes) -> dict:
    return {"person_id": world.person_id, "stabilization": {"confirmed": ALL},
            "contingency": {"early_warning_signs": ["sleeping badly", "isolating"],
                            "fast_track_route": "Call the duty worker the same day"}, **changes}


def test_a_clinician_starts_a_step_down_for_a_stabilized_person_on_the_caseload(api, world, temporal):
    add_transition(world, transition_id="handoff-caseload", team_id=world.north_id)
    answer = api.post("/api/step-downs", json=request_for(world), headers=world.auth("clinician"))
    assert answer.status_code == 202, answer.text
    transition_id = answer.json()["transition_id"]
    assert transition_id.startswith("stepdown-") and "Testperson" not in transition_id
    workflow, inp, options = temporal.started[transition_id]
    assert workflow == "StepDown" and isinstance(inp, StepDownInput)
    assert inp.monitoring_owner_id == world.staff_ids["clinician"]  # the requester by default
    assert inp.contingency.early_warning_signs == ["sleeping badly", "isolating"]
    assert inp.policy.step_down is not None and options["task_queue"]
    again = api.post("/api/step-downs", json=request_for(world), headers=world.auth("clinician"))
    assert (again.status_code, again.json()["transition_id"]) == (200, transition_id)
    assert api.post("/api/step-downs", json=request_for(world),
                    headers=world.auth("coordinator")).status_code == 403


def test_stabilization_not_shown_is_a_422_naming_each_missing_criterion(api, world, temporal):
    add_transition(world, transition_id="handoff-caseload", team_id=world.north_id)
    partial = request_for(world, stabilization={"confirmed": ["symptom_control", "adherence"],
                                                "overrides": {"functional_markers": " "}})
    answer = api.post("/api/step-downs", json=partial, headers=world.auth("clinician"))
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", "stabilization"]
    assert "functional_markers, safety_plan_reliability" in problem["msg"]
    overridden = request_for(world, stabilization={
        "confirmed": ["symptom_control", "adherence", "functional_markers"],
        "overrides": {"safety_plan_reliability": "Plan rewritten this week"}})
    assert api.post("/api/step-downs", json=overridden,
                    headers=world.auth("clinician")).status_code == 202
    unknown = request_for(world, stabilization={"confirmed": [*ALL, "mood"]})
    assert "mood" in api.post("/api/step-downs", json=unknown, headers=world.auth("clinician")).text
    assert len(temporal.started) == 1


def test_a_step_down_after_a_step_up_completes_the_step_ups_hook_task(api, world, temporal):
    step_up_id = "stepup-00000000-0000-4000-8000-000000000001"
    add_pathway(world, step_up_id, world.north_id, "step_up")
    hook = add_task(world, transition_id=step_up_id, team_id=world.north_id, kind="start_step_down",
                    title="Start the step-down taper")
    answer = api.post("/api/step-downs", json=request_for(world, step_up_id=step_up_id),
                      headers=world.auth("clinician"))
    assert answer.status_code == 202, answer.text
    _, inp, _ = temporal.started[answer.json()["transition_id"]]
    assert inp.step_up_id == step_up_id
    [(_, workflow_id, update, [command, actor])] = [c for c in temporal.calls if c[0] == "update"]
    assert (workflow_id, update, command.task_id) == (step_up_id, "complete_task", hook.id)
    south = "stepup-00000000-0000-4000-8000-000000000002"
    add_pathway(world, south, world.south_id, "step_up")
    refused = api.post("/api/step-downs", json=request_for(world, step_up_id=south),
                       headers=world.auth("clinician"))
    assert refused.status_code == 422 and "step_up_id" in refused.text


def test_step_down_actions_reach_the_step_down_update_with_its_own_command(api, world, temporal):
    add_pathway(world, "stepdown-1", world.north_id, "step_down")
    adjusted = api.post("/api/transitions/stepdown-1/actions/adjust-taper",
                        json={"kind": "slower", "reason": "agreed with the person", "by": 2},
                        headers=world.auth("clinician"))
    assert adjusted.status_code == 200, adjusted.text
    [(_, workflow_id, update, [command, _actor])] = temporal.calls[-1:]
    assert (workflow_id, update) == ("stepdown-1", "adjust_taper")
    assert command == AdjustTaper(kind=AdjustmentKind.slower, reason="agreed with the person", by=2)
    no_date = api.post("/api/transitions/stepdown-1/actions/adjust-taper",
                       json={"kind": "pause", "reason": "holiday"}, headers=world.auth("clinician"))
    assert no_date.status_code == 422 and "until" in no_date.text
    warning = api.post("/api/transitions/stepdown-1/actions/early-warning",
                       json={"sign": "stopped medication", "severity": "high"},
                       headers=world.auth("coordinator"))
    assert warning.status_code == 200 and temporal.calls[-1][2] == "early_warning"
    # A handoff has no taper to adjust.
    add_transition(world, transition_id="handoff-1", team_id=world.north_id)
    assert api.post("/api/transitions/handoff-1/actions/adjust-taper",
                    json={"kind": "slower", "reason": "x"},
                    headers=world.auth("clinician")).status_code == 409
