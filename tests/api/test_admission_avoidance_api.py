"""`POST /api/admission-avoidance` and the episode's actions, with a Temporal stand-in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from api_world import add_transition
from sqlmodel import Session, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from handrail.domain.admission_avoidance import (
    AdmissionThresholds,
    AvoidanceDecision,
    AvoidanceInput,
    AvoidanceReview,
    AvoidanceReviewKind,
    CarerDetails,
    RiskReport,
    WithdrawCarerConsent,
)
from handrail.store.models import ApiToken, AvoidanceEpisode, Carer, StaffTeam, Task, Transition
from handrail.store.models import Staff as StaffRow
from handrail.store.tokens import hash_token, new_token

EPISODE = "avoid-00000000-0000-4000-8000-000000000001"
CARER = {"name": "Alex Carer", "phone": "+447700900654", "relationship": "partner",
         "consent": True, "consent_source": "verbal, at the assessment"}
APPROVAL = {"decision": "approve", "rationale": "Safe at home with daily visits",
            "thresholds": {"risk_rating_at_or_above": 7, "missed_contacts_in_a_row": 2},
            "dissent": [{"name": "Dr Dee Senior", "view": "Would admit tonight",
                         "resolution": "Agreed to a visit this evening and a review at 48 hours"}]}


@pytest.fixture
def seniors(world) -> dict[str, dict[str, str]]:
    """The avoidance's senior roles and a crisis worker, each with a login on the north team."""
    headers = {}
    with Session(world.engine) as session:
        for role in ("clinical_lead", "on_call_senior", "crisis_worker"):
            staff = StaffRow(name=f"Test {role}", role=role)
            session.add(staff)
            session.flush()
            session.add(StaffTeam(staff_id=staff.id, team_id=world.north_id))
            token = new_token()
            session.add(ApiToken(staff_id=staff.id, token_hash=hash_token(token)))
            headers[role] = {"Authorization": f"Bearer {token}"}
        session.commit()
    return headers


def request_for(world, **changes) -> dict:
    return {"person_id": world.person_id,
            "reason": "In crisis after a bereavement; family at home and engaging",
            "proposed_thresholds": {"risk_rating_at_or_above": 6, "missed_contacts_in_a_row": 2},
            "carer": CARER, **changes}


def on_caseload(world) -> None:
    add_transition(world, transition_id="handoff-caseload", team_id=world.north_id)


def add_episode(world, transition_id: str = EPISODE, **values) -> None:
    with Session(world.engine) as session:
        values = {"stage": "awaiting_decision", **values}
        session.add(Transition(id=transition_id, kind="admission_avoidance", person_id=world.person_id,
                               team_id=world.north_id, policy_version="test",
                               event_time=datetime.now(UTC), **values))
        session.commit()


def updates(temporal) -> list[tuple[str, str, list]]:
    return [(workflow_id, name, args) for kind, workflow_id, name, args in temporal.calls
            if kind == "update"]


def test_a_clinician_opens_an_episode_with_its_thresholds_and_the_consenting_carer(api, world, temporal):
    on_caseload(world)
    answer = api.post("/api/admission-avoidance", json=request_for(world), headers=world.auth("clinician"))
    assert answer.status_code == 202, answer.text
    opened = answer.json()
    transition_id = opened["transition_id"]
    assert transition_id.startswith("avoid-") and "Testperson" not in transition_id
    assert opened["status_url"] == f"/api/transitions/{transition_id}" and opened["carer_recorded"]
    workflow, inp, options = temporal.started[transition_id]
    assert workflow == "AdmissionAvoidance" and isinstance(inp, AvoidanceInput)
    assert (inp.team_code, inp.requested_by_id) == ("crisis-north", world.staff_ids["clinician"])
    assert inp.reason.startswith("In crisis") and inp.policy.admission_avoidance is not None
    assert inp.proposed_thresholds == AdmissionThresholds(risk_rating_at_or_above=6)
    assert options["task_queue"]
    # The carer and the person's consent reach the episode's own update, with who recorded it.
    [(workflow_id, name, [carer, actor])] = updates(temporal)
    assert (workflow_id, name) == (transition_id, "record_carer")
    assert carer == CarerDetails(**CARER) and actor.id == world.staff_ids["clinician"]


def test_a_second_episode_for_the_same_person_is_refused_with_the_open_one(api, world, temporal):
    on_caseload(world)
    first = api.post("/api/admission-avoidance", json=request_for(world), headers=world.auth("clinician"))
    # Asked again before the workflow has recorded it: the same workflow id, refused.
    again = api.post("/api/admission-avoidance", json=request_for(world), headers=world.auth("clinician"))
    assert again.status_code == 409
    assert again.json()["detail"]["transition_id"] == first.json()["transition_id"]
    add_episode(world, "avoid-open")
    recorded = api.post("/api/admission-avoidance", json=request_for(world),
                        headers=world.auth("supervisor"))
    assert recorded.status_code == 409 and recorded.json()["detail"]["transition_id"] == "avoid-open"
    assert "already open" in recorded.json()["detail"]["msg"]
    assert len(temporal.started) == 1


def test_an_episode_beside_an_open_step_up_starts_and_asks_the_step_ups_owner_to_decide(
        api, world, temporal):
    on_caseload(world)
    owner_id = world.staff_ids["coordinator"]
    add_transition(world, transition_id="stepup-open", team_id=world.north_id, kind="step_up",
                   stage="intensive", owner_id=owner_id)

    answer = api.post("/api/admission-avoidance", json=request_for(world), headers=world.auth("clinician"))

    assert answer.status_code == 202  # crisis care is never held up by the step-up
    episode_id = answer.json()["transition_id"]
    with Session(world.engine) as session:
        [task] = session.exec(select(Task).where(Task.kind == "pathway_overlap")).all()
    assert (task.transition_id, task.owner_id, task.priority, task.workflow_id, task.status) == (
        "stepup-open", owner_id, "urgent", None, "requested")
    assert task.key == f"stepup-open:overlap:{episode_id}"
    done = api.post(f"/api/tasks/{task.id}/complete", json={"note": "Step-up paused for the episode"},
                    headers=world.auth("coordinator"))
    assert done.status_code == 200 and done.json()["status"] == "completed"


def test_a_step_up_is_refused_while_an_episode_is_open_naming_it(api, world, temporal):
    on_caseload(world)
    add_episode(world, "avoid-open", stage="intensive")

    answer = api.post("/api/step-ups", json={"person_id": world.person_id, "urgency": "urgent",
                                             "reason": "Not coping"}, headers=world.auth("clinician"))

    assert answer.status_code == 409
    assert answer.json()["detail"]["transition_id"] == "avoid-open"
    assert "senior review" in answer.json()["detail"]["msg"]
    assert temporal.started == {}


def test_without_a_carer_nothing_is_recorded_for_one(api, world, temporal):
    on_caseload(world)
    body = request_for(world)
    del body["carer"], body["proposed_thresholds"]
    answer = api.post("/api/admission-avoidance", json=body, headers=world.auth("clinician"))
    assert answer.status_code == 202, answer.text
    assert answer.json()["carer_recorded"] is None and updates(temporal) == []
    [(_, inp, _)] = temporal.started.values()
    assert inp.proposed_thresholds is None  # the senior documents them, or the policy's apply


def test_a_carer_the_workflow_could_not_take_leaves_the_episode_open_and_says_so(api, world, temporal):
    on_caseload(world)
    temporal.update_error = RPCError("deadline", RPCStatusCode.DEADLINE_EXCEEDED, b"")
    answer = api.post("/api/admission-avoidance", json=request_for(world), headers=world.auth("clinician"))
    assert answer.status_code == 202, answer.text
    assert answer.json()["carer_recorded"] is False and len(temporal.started) == 1


@pytest.mark.parametrize("changes, field", [
    ({"reason": "   "}, ["body", "reason"]),
    ({"reason": None}, ["body", "reason"]),
    ({"proposed_thresholds": {"risk_rating_at_or_above": 11}},
     ["body", "proposed_thresholds", "risk_rating_at_or_above"]),
    ({"proposed_thresholds": {"risk_rating_at_or_above": 7, "warning_severity_at_or_above": "dire"}},
     ["body", "proposed_thresholds", "warning_severity_at_or_above"]),
    ({"carer": {**CARER, "phone": "call me maybe"}}, ["body", "carer", "phone"]),
    ({"carer": {k: v for k, v in CARER.items() if k != "consent"}}, ["body", "carer", "consent"]),
    ({"carer": {**CARER, "consent_source": ""}}, ["body", "carer", "consent_source"]),
    ({"diagnosis": "not ours to send"}, ["body", "diagnosis"]),
    ({"person_id": 0}, ["body", "person_id"]),
])
def test_bad_input_is_a_422_naming_the_field_and_starts_nothing(api, world, temporal, changes, field):
    on_caseload(world)
    answer = api.post("/api/admission-avoidance", json=request_for(world, **changes),
                      headers=world.auth("clinician"))
    assert answer.status_code == 422, answer.text
    assert field in [problem["loc"] for problem in answer.json()["detail"]]
    assert temporal.started == {}


def test_a_person_off_the_caseload_or_of_another_team_is_refused_alike(api, world, temporal):
    add_transition(world, transition_id="handoff-south", team_id=world.south_id)
    answer = api.post("/api/admission-avoidance", json=request_for(world), headers=world.auth("clinician"))
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "person_id"]
    unknown = api.post("/api/admission-avoidance", json=request_for(world, person_id=99999),
                       headers=world.auth("clinician"))
    assert unknown.json()["detail"] == answer.json()["detail"]
    other_team = api.post("/api/admission-avoidance", json=request_for(world, team="crisis-south"),
                          headers=world.auth("clinician"))
    assert other_team.status_code == 422 and other_team.json()["detail"][0]["loc"] == ["body", "team"]
    assert api.post("/api/admission-avoidance", json=request_for(world),
                    headers=world.auth("coordinator")).status_code == 403
    assert temporal.started == {}


def test_the_senior_decision_is_for_a_clinical_lead_or_the_on_call_senior(api, world, temporal, seniors):
    add_episode(world)
    decided = api.post(f"/api/transitions/{EPISODE}/actions/decide", json=APPROVAL,
                       headers=seniors["clinical_lead"])
    assert decided.status_code == 200, decided.text
    [(workflow_id, name, [command, actor])] = updates(temporal)
    assert (workflow_id, name, actor.role.value) == (EPISODE, "decide", "clinical_lead")
    assert isinstance(command, AvoidanceDecision) and command.dissent[0].name == "Dr Dee Senior"
    assert command.thresholds.risk_rating_at_or_above == 7
    for who in ("supervisor", "clinician"):
        refused = api.post(f"/api/transitions/{EPISODE}/actions/decide", json=APPROVAL,
                           headers=world.auth(who))
        assert refused.status_code == 403, who
        assert "clinical_lead, on_call_senior" in refused.json()["detail"]
    # The handoff's or the step-up's decision is not this pathway's command.
    wrong = api.post(f"/api/transitions/{EPISODE}/actions/decide",
                     json={"decision": "continue_outreach", "reason": "x"}, headers=seniors["on_call_senior"])
    assert wrong.status_code == 422 and "rationale" in wrong.text
    assert len(updates(temporal)) == 1


def test_a_decision_the_workflow_refuses_keeps_its_reason(api, world, temporal, seniors):
    add_episode(world)
    temporal.update_error = WorkflowUpdateFailedError(ApplicationError(
        "this admission avoidance was already decided", type="StageConflict"))
    again = api.post(f"/api/transitions/{EPISODE}/actions/decide", json=APPROVAL,
                     headers=seniors["clinical_lead"])
    assert (again.status_code, again.json()["detail"]) == (
        409, "this admission avoidance was already decided")
    temporal.update_error = WorkflowUpdateFailedError(ApplicationError(
        "dissent without a resolution (Dr Dee Senior): record how it was resolved", type="InvalidAction"))
    unresolved = api.post(f"/api/transitions/{EPISODE}/actions/decide", json=APPROVAL,
                          headers=seniors["clinical_lead"])
    assert unresolved.status_code == 422 and "resolution" in unresolved.json()["detail"]
    temporal.update_error = WorkflowUpdateFailedError(ApplicationError(
        "a crossed threshold is answered continue or admit", type="InvalidAction"))
    ended = api.post(f"/api/transitions/{EPISODE}/actions/review",
                     json={"decision": "end", "reason": "settled"}, headers=seniors["on_call_senior"])
    assert ended.status_code == 422 and "continue or admit" in ended.json()["detail"]


def test_reviews_and_threshold_answers_go_to_the_review_update(api, world, temporal, seniors):
    add_episode(world)
    for who, decision in (("clinical_lead", "step_down"), ("on_call_senior", "admit"),
                          ("clinical_lead", "continue"), ("on_call_senior", "end")):
        answer = api.post(f"/api/transitions/{EPISODE}/actions/review",
                          json={"decision": decision, "reason": "seen today"}, headers=seniors[who])
        assert answer.status_code == 200, answer.text
        assert updates(temporal)[-1][2][0] == AvoidanceReview(decision=AvoidanceReviewKind(decision),
                                                              reason="seen today")
    assert api.post(f"/api/transitions/{EPISODE}/actions/review",
                    json={"decision": "maybe", "reason": "x"},
                    headers=seniors["clinical_lead"]).status_code == 422
    assert api.post(f"/api/transitions/{EPISODE}/actions/review",
                    json={"decision": "continue", "reason": "x"},
                    headers=world.auth("clinician")).status_code == 403


def test_risk_early_warnings_contacts_and_the_carer_reach_their_updates(api, world, temporal, seniors):
    add_episode(world, stage="intensive")
    sent = [
        ("report-risk", {"rating": 8, "note": "voices louder"}, seniors["crisis_worker"], "report_risk"),
        ("early-warning", {"sign": "not sleeping", "severity": "high"}, world.auth("coordinator"),
         "early_warning"),
        ("record-contact", {"outcome": "attended"}, seniors["crisis_worker"], "record_contact"),
        ("record-carer", {**CARER, "consent": False}, world.auth("coordinator"), "record_carer"),
        ("withdraw-carer-consent", {"note": "asked on the phone"}, world.auth("coordinator"),
         "withdraw_carer_consent"),
    ]
    for action, body, headers, update in sent:
        answer = api.post(f"/api/transitions/{EPISODE}/actions/{action}", json=body, headers=headers)
        assert answer.status_code == 200, (action, answer.text)
        assert updates(temporal)[-1][1] == update
    commands = [args[0] for _, _, args in updates(temporal)]
    assert commands[0] == RiskReport(rating=8, note="voices louder")
    assert commands[-1] == WithdrawCarerConsent(note="asked on the phone")
    assert api.post(f"/api/transitions/{EPISODE}/actions/report-risk", json={"rating": 12},
                    headers=world.auth("clinician")).status_code == 422
    assert api.post(f"/api/transitions/{EPISODE}/actions/report-risk", json={"rating": 3},
                    headers=world.auth("coordinator")).status_code == 403
    # A step-down's taper is not this pathway's, and only this pathway takes a risk rating.
    assert api.post(f"/api/transitions/{EPISODE}/actions/adjust-taper", json={"kind": "slower",
                    "reason": "x"}, headers=world.auth("clinician")).status_code == 409
    add_transition(world, transition_id="handoff-1", team_id=world.north_id)
    assert api.post("/api/transitions/handoff-1/actions/report-risk", json={"rating": 3},
                    headers=world.auth("clinician")).status_code == 409


def test_an_episode_of_another_team_is_not_found(api, world, temporal, seniors):
    with Session(world.engine) as session:
        session.add(Transition(id="avoid-south", kind="admission_avoidance", stage="intensive",
                               person_id=world.person_id, team_id=world.south_id,
                               policy_version="test", event_time=datetime.now(UTC)))
        session.commit()
    answer = api.post("/api/transitions/avoid-south/actions/decide", json=APPROVAL,
                      headers=seniors["clinical_lead"])
    assert answer.status_code == 404 and updates(temporal) == []


def test_the_record_shows_the_episode_its_length_and_the_carers_consent(api, world, temporal):
    add_episode(world, status="closed", outcome="admission_avoided")
    now = datetime.now(UTC)
    with Session(world.engine) as session:
        session.add(AvoidanceEpisode(transition_id=EPISODE, team_id=world.north_id,
                                     person_id=world.person_id, reason="In crisis",
                                     requested_at=now, decision="approve", started_at=now,
                                     ended_at=now, episode_seconds=5400.0,
                                     outcome="admission_avoided"))
        session.add(Carer(person_id=world.person_id, name="Alex Carer", phone="+447700900654",
                          relationship="partner", consent_given=False, consent_withdrawn_at=now))
        session.commit()
    detail = api.get(f"/api/transitions/{EPISODE}", headers=world.auth("clinician")).json()
    assert detail["outcome"] == "admission_avoided"
    assert (detail["episode"]["episode_seconds"], detail["episode"]["outcome"]) == (
        5400.0, "admission_avoided")
    assert detail["carer"]["receives_updates"] is False and detail["carer"]["consent_withdrawn_at"]


def test_openapi_documents_the_start_and_the_episodes_commands(api):
    document = api.get("/openapi.json").json()
    start = document["paths"]["/api/admission-avoidance"]["post"]
    assert "202" in start["responses"] and "409" in start["responses"]
    action = document["paths"]["/api/transitions/{transition_id}/actions/{action}"]["post"]
    described = action["requestBody"]["description"]
    for name in ("decide on an admission avoidance → AvoidanceDecision",
                 "review on an admission avoidance → AvoidanceReview",
                 "withdraw-carer-consent on an admission avoidance → WithdrawCarerConsent"):
        assert name in described


def test_consent_withdrawn_after_the_workflow_ended_is_written_to_the_store(api, world, temporal):
    add_episode(world, stage="closed", status="closed", outcome="admission_avoided")
    with Session(world.engine) as session:
        session.add(Carer(person_id=world.person_id, name="Alex Carer", phone="+447700900654",
                          relationship="partner", consent_given=True))
        session.commit()
    temporal.update_error = RPCError("workflow execution already completed",
                                     RPCStatusCode.NOT_FOUND, b"")

    answer = api.post(f"/api/transitions/{EPISODE}/actions/withdraw-carer-consent",
                      json={"note": "phoned a week later"}, headers=world.auth("coordinator"))

    assert answer.status_code == 200, answer.text
    with Session(world.engine) as session:
        carer = session.exec(select(Carer).where(Carer.person_id == world.person_id)).one()
        assert (carer.consent_given, carer.consent_withdrawn_at is not None) == (False, True)
    # Any other action on the ended episode is still refused as closed.
    other = api.post(f"/api/transitions/{EPISODE}/actions/report-risk", json={"rating": 3},
                     headers=world.auth("clinician"))
    assert other.status_code == 409
