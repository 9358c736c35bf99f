"""The thresholds a clinician proposes when opening an episode (POST /api/admission-avoidance):
shown on the record, and documented with a decision that names none of its own."""

from __future__ import annotations

import uuid

from handrail.domain.admission_avoidance import (
    AdmissionThresholds,
    AvoidanceDecision,
    AvoidanceDecisionKind,
    AvoidanceInput,
)
from handrail.store.models import Decision
from handrail.workflows.admission_avoidance import AdmissionAvoidance
from tests.workflows.avoidances import add_person
from tests.workflows.step_ups import open_tasks, transition

PROPOSED = AdmissionThresholds(risk_rating_at_or_above=8, missed_contacts_in_a_row=3)


async def _open(h, proposed: AdmissionThresholds | None):
    transition_id = f"avoid-{uuid.uuid4()}"
    handle = await h.client.start_workflow(AdmissionAvoidance.run, AvoidanceInput(
        transition_id=transition_id, person_id=add_person(h), team_code="crisis-north",
        reason="In crisis; could be admitted, but supported at home",
        requested_by_id=h.staff.clinician.id, requested_at=await h.now(), policy=h.policy,
        proposed_thresholds=proposed), id=transition_id, task_queue=h.task_queue)
    h.started.append(handle)
    await h.settle(lambda: bool(open_tasks(h, transition_id, "avoidance_decision")))
    return handle


def _approval(thresholds: AdmissionThresholds | None = None) -> AvoidanceDecision:
    return AvoidanceDecision(decision=AvoidanceDecisionKind.approve, rationale="Safe at home",
                             thresholds=thresholds)


async def test_a_decision_naming_no_thresholds_documents_the_clinicians_proposal(harness):
    h = harness
    handle = await _open(h, PROPOSED)
    assert transition(h, handle.id).summary["proposed_thresholds"]["risk_rating_at_or_above"] == 8
    state = await handle.execute_update(AdmissionAvoidance.decide, args=[_approval(), h.staff.clinical_lead])
    assert state.thresholds == PROPOSED
    [decision] = h.rows(Decision, Decision.transition_id == handle.id)
    assert decision.detail["thresholds"]["missed_contacts_in_a_row"] == 3


async def test_the_seniors_own_thresholds_win_and_without_a_proposal_the_policys_apply(harness):
    h = harness
    own = AdmissionThresholds(risk_rating_at_or_above=6)
    proposed = await _open(h, PROPOSED)
    state = await proposed.execute_update(AdmissionAvoidance.decide, args=[_approval(own),
                                                                           h.staff.clinical_lead])
    assert state.thresholds == own
    unproposed = await _open(h, None)
    assert transition(h, unproposed.id).summary["proposed_thresholds"] is None
    state = await unproposed.execute_update(AdmissionAvoidance.decide, args=[_approval(),
                                                                             h.staff.clinical_lead])
    assert state.thresholds.model_dump() == h.policy.admission_avoidance.thresholds.model_dump()
