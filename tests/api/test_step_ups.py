"""`POST /api/step-ups`, the step-up's actions and `GET /api/capacity`, with a Temporal stand-in."""

from __future__ import annotations

from datetime import UTC, datetime

from api_world import add_transition
from sqlmodel import Session

from handrail.domain.step_up import StepUpInput, StepUpOrigin, Urgency
from handrail.store.models import StepUpRequest, StepUpSlot, Transition

REQUEST = {"person_id": 0, "urgency": "urgent", "reason": "Missed two sessions, not eating",
           "indicators": {"missed_sessions": 2, "functional_decline": True,
                          "risk_indicators": ["hopelessness"], "housing_instability": True}}


def add_step_up(world, *, transition_id: str, team_id: int) -> None:
    with Session(world.engine) as session:
        session.add(Transition(id=transition_id, kind="step_up", stage="awaiting_decision",
                               person_id=world.person_id, team_id=team_id, policy_version="test"))
        session.commit()


def request_for(world, **changes) -> dict:
    return {**REQUEST, "person_id": world.person_id, **changes}


def test_a_clinician_asks_for_a_step_up_for_a_person_on_the_teams_caseload(api, world, temporal):
    add_transition(world, transition_id="handoff-caseload", team_id=world.north_id)
    answer = api.post("/api/step-ups", json=request_for(world), headers=world.auth("clinician"))
    assert answer.status_code == 202, answer.text
    transition_id = answer.json()["transition_id"]
    assert transition_id.startswith("stepup-") and "Testperson" not in transition_id
    workflow, inp, options = temporal.started[transition_id]
    assert workflow == "StepUp" and isinstance(inp, StepUpInput)
    assert (inp.origin, inp.urgency, inp.team_code) == (StepUpOrigin.clinician, Urgency.urgent,
                                                       "crisis-north")
    assert inp.requested_by_id == world.staff_ids["clinician"] and inp.indicators.functional_decline
    assert inp.policy.step_up is not None and options["task_queue"]
    # Asked again before the workflow has recorded it: the same step-up, not a second one.
    again = api.post("/api/step-ups", json=request_for(world), headers=world.auth("clinician"))
    assert (again.status_code, again.json()["transition_id"]) == (200, transition_id)
    assert len(temporal.started) == 1


def test_a_person_off_the_caseload_or_of_another_team_is_refused_alike(api, world, temporal):
    add_transition(world, transition_id="handoff-south", team_id=world.south_id)
    answer = api.post("/api/step-ups", json=request_for(world), headers=world.auth("clinician"))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "person_id"]
    unknown = api.post("/api/step-ups", json=request_for(world, person_id=99999),
                       headers=world.auth("clinician"))
    assert unknown.json()["detail"] == answer.json()["detail"]
    other_team = api.post("/api/step-ups", json=request_for(world, team="crisis-south"),
                          headers=world.auth("clinician"))
    assert other_team.status_code == 422 and other_team.json()["detail"][0]["loc"] == ["body", "team"]
    assert temporal.started == {}


def test_a_request_without_a_reason_is_refused_and_an_open_step_up_is_answered_again(
        api, world, temporal):
    add_transition(world, transition_id="handoff-caseload", team_id=world.north_id)
    missing = api.post("/api/step-ups", json=request_for(world, reason=""),
                       headers=world.auth("clinician"))
    assert missing.status_code == 422
    add_step_up(world, transition_id="stepup-open", team_id=world.north_id)
    again = api.post("/api/step-ups", json=request_for(world), headers=world.auth("clinician"))
    assert (again.status_code, again.json()["transition_id"]) == (200, "stepup-open")
    assert temporal.started == {}


def test_step_up_actions_reach_the_step_up_update_with_its_own_command(api, world, temporal):
    add_step_up(world, transition_id="stepup-1", team_id=world.north_id)
    body = {"decision": "approve", "reason": "rising risk", "contact_frequency": "P2D",
            "lead_id": world.staff_ids["clinician"]}
    decided = api.post("/api/transitions/stepup-1/actions/decide", json=body,
                       headers=world.auth("supervisor"))
    assert decided.status_code == 200, decided.text
    [(_, workflow_id, update, [command, actor])] = temporal.calls[-1:]
    assert (workflow_id, update) == ("stepup-1", "decide")
    assert command.contact_frequency.days == 2 and actor.role.value == "supervisor"
    # An approval names its lead; the handoff's decision command is not a step-up's.
    no_lead = api.post("/api/transitions/stepup-1/actions/decide",
                       json={"decision": "approve", "reason": "x", "contact_frequency": "P2D"},
                       headers=world.auth("supervisor"))
    assert no_lead.status_code == 422 and "lead_id" in no_lead.text
    handoff_style = api.post("/api/transitions/stepup-1/actions/decide",
                             json={"decision": "close_disengaged", "reason": "x"},
                             headers=world.auth("supervisor"))
    assert handoff_style.status_code == 422
    assert api.post("/api/transitions/stepup-1/actions/decide", json=body,
                    headers=world.auth("clinician")).status_code == 403
    review = api.post("/api/transitions/stepup-1/actions/review",
                      json={"decision": "step_down", "reason": "stable"},
                      headers=world.auth("clinician"))
    assert review.status_code == 200 and temporal.calls[-1][2] == "review"
    # A handoff has no review.
    add_transition(world, transition_id="handoff-1", team_id=world.north_id)
    assert api.post("/api/transitions/handoff-1/actions/review",
                    json={"decision": "continue", "reason": "x"},
                    headers=world.auth("clinician")).status_code == 409


def test_capacity_shows_the_teams_slots_holders_and_waiting_requests(api, world):
    add_step_up(world, transition_id="stepup-holder", team_id=world.north_id)
    add_step_up(world, transition_id="stepup-waiting", team_id=world.north_id)
    add_step_up(world, transition_id="stepup-south", team_id=world.south_id)
    since = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    with Session(world.engine) as session:
        session.add_all([
            StepUpSlot(team_id=world.north_id, label="north 1", holder_transition_id="stepup-holder",
                       claimed_at=since),
            StepUpSlot(team_id=world.south_id, label="south 1"),
        ])
        for transition_id, team_id, status in (("stepup-holder", world.north_id, "holding"),
                                               ("stepup-waiting", world.north_id, "waiting"),
                                               ("stepup-south", world.south_id, "waiting")):
            session.add(StepUpRequest(transition_id=transition_id, team_id=team_id,
                                      person_id=world.person_id, origin="clinician",
                                      urgency="routine", reason="x", requested_at=since,
                                      capacity_status=status, waiting_since=since))
        session.commit()
    answer = api.get("/api/capacity", headers=world.auth("coordinator"))
    assert answer.status_code == 200, answer.text
    [north] = answer.json()  # only the user's own team
    assert north["team"] == "crisis-north" and north["free"] == 0
    assert north["slots"][0]["holder_transition_id"] == "stepup-holder"
    [waiting] = north["waiting"]
    assert waiting["transition_id"] == "stepup-waiting" and waiting["waited_seconds"] > 86400
    assert "stepup-south" not in answer.text
