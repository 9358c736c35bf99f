"""Handrail proposes a step-up itself when recorded indicators cross the policy's thresholds.

The contact routine runs on its own here (NOTES.md: a parent and its child are two workflows
at once); its misses and what staff record at it are the events the thresholds count."""

from __future__ import annotations

import uuid
from datetime import timedelta

from handrail.domain.contact import ContactOutcome, ContactSpec, OutcomeReport, ServiceDetails
from handrail.domain.indicators import IndicatorKind
from handrail.domain.step_up import ConfirmProposal, StepUpStage
from handrail.store.models import Indicator, Transition
from handrail.workflows.contact import Contact
from handrail.workflows.step_up import StepUp
from tests.workflows.step_ups import add_person, open_tasks


def on_caseload(h, person_id: int) -> str:
    """A handoff of the team for the person: the transition their contact belongs to."""
    transition_id = f"handoff-{uuid.uuid4()}"
    with h.session() as session:
        session.add(Transition(id=transition_id, kind="handoff", stage="monitoring",
                               person_id=person_id, team_id=h.staff.team_id,
                               owner_id=h.staff.coordinator.id, clinician_id=h.staff.clinician.id,
                               policy_version="test"))
        session.commit()
    return transition_id


def observed(h, person_id: int, kind: IndicatorKind, at) -> None:
    with h.session() as session:
        session.add(Indicator(key=f"seed-{uuid.uuid4()}", person_id=person_id,
                              team_id=h.staff.team_id, kind=kind.value, observed_at=at))
        session.commit()


async def contact(h, transition_id: str, person_id: int):
    policy, now = h.policy, await h.now()
    appointment = now + timedelta(minutes=30)
    contact_id = f"{transition_id}.c1"
    spec = ContactSpec(
        contact_id=contact_id, transition_id=transition_id, sequence=1, person_id=person_id,
        team_id=h.staff.team_id, owner_id=h.staff.coordinator.id, time_zone="Europe/London",
        appointment_at=appointment, not_before=appointment, due_at=appointment + timedelta(hours=1),
        fallback_ladder=policy.handoff.fallback_ladder, quiet_hours=None, messages=policy.messages,
        service=ServiceDetails(name="Test", phone="+441632960000"),
        supervisor_decision_due=timedelta(days=1))
    handle = await h.client.start_workflow(Contact.run, spec, id=contact_id, task_queue=h.task_queue)
    h.started.append(handle)
    return handle


def step_ups(h, person_id: int) -> list[Transition]:
    return h.rows(Transition, Transition.person_id == person_id, Transition.kind == "step_up")


async def test_a_second_missed_contact_with_a_recorded_decline_proposes_a_step_up_to_the_clinician(
        harness):
    h = harness
    person_id, now = add_person(h), await h.now()
    transition_id = on_caseload(h, person_id)
    observed(h, person_id, IndicatorKind.missed_contact, now - timedelta(days=10))
    observed(h, person_id, IndicatorKind.functional_decline, now - timedelta(days=5))
    await contact(h, transition_id, person_id)

    await h.advance(timedelta(hours=2), step=timedelta(minutes=30),
                    until=lambda: bool(step_ups(h, person_id)))
    await h.settle(lambda: bool(step_ups(h, person_id)))
    [proposal] = step_ups(h, person_id)
    h.started.append(h.client.get_workflow_handle(proposal.id))
    assert proposal.id.startswith("stepup-") and proposal.source == "proposed"
    assert proposal.summary["crossed_rules"] == ["missed contacts with functional decline"]
    assert proposal.summary["source_transition_id"] == transition_id
    await h.settle(lambda: bool(open_tasks(h, proposal.id, "confirm_step_up_proposal")))
    [confirm] = open_tasks(h, proposal.id, "confirm_step_up_proposal")
    assert confirm.owner_id == h.staff.clinician.id  # the person's clinician confirms it

    handle = h.client.get_workflow_handle(proposal.id)
    state = await handle.execute_update(StepUp.confirm_proposal, args=[
        ConfirmProposal(confirm=True, reason="Agree: not coping since the move"), h.staff.clinician])
    await h.settle(lambda: bool(open_tasks(h, proposal.id, "step_up_huddle")))
    state = await handle.query(StepUp.status)
    assert state.stage == StepUpStage.awaiting_decision


async def test_indicators_below_the_thresholds_propose_nothing(harness):
    h = harness
    person_id, now = add_person(h), await h.now()
    transition_id = on_caseload(h, person_id)
    observed(h, person_id, IndicatorKind.functional_decline, now - timedelta(days=5))
    observed(h, person_id, IndicatorKind.missed_contact, now - timedelta(days=40))  # too long ago
    await contact(h, transition_id, person_id)

    await h.advance(timedelta(hours=2), step=timedelta(minutes=30))
    await h.settle(lambda: len(h.rows(Indicator, Indicator.person_id == person_id)) == 3)
    assert step_ups(h, person_id) == []


async def test_a_decline_recorded_at_an_attended_contact_counts_toward_the_threshold(harness):
    h = harness
    person_id, now = add_person(h), await h.now()
    transition_id = on_caseload(h, person_id)
    for days_ago in (20, 6):
        observed(h, person_id, IndicatorKind.missed_contact, now - timedelta(days=days_ago))
    handle = await contact(h, transition_id, person_id)
    await handle.signal(Contact.report_outcome, args=[OutcomeReport(
        outcome=ContactOutcome.attended, indicators=[IndicatorKind.functional_decline]),
        h.staff.clinician])
    await h.settle(lambda: bool(step_ups(h, person_id)))
    [proposal] = step_ups(h, person_id)
    h.started.append(h.client.get_workflow_handle(proposal.id))
    decline = h.rows(Indicator, Indicator.person_id == person_id,
                     Indicator.kind == "functional_decline")
    assert [d.recorded_by_id for d in decline] == [h.staff.clinician.id]


async def test_a_proposal_nobody_confirms_goes_to_the_huddle_at_its_deadline(harness):
    from handrail.domain.step_up import StepUpOrigin
    from tests.workflows.step_ups import refusal, request_step_up

    h = harness
    handle = await request_step_up(h, add_person(h), origin=StepUpOrigin.proposed)
    assert open_tasks(h, handle.id, "confirm_step_up_proposal")
    await h.advance(timedelta(days=2, hours=1), step=timedelta(hours=6),
                    until=lambda: bool(open_tasks(h, handle.id, "step_up_huddle")))
    await h.settle(lambda: bool(open_tasks(h, handle.id, "step_up_huddle")))
    assert not open_tasks(h, handle.id, "confirm_step_up_proposal")
    late = await refusal(handle, StepUp.confirm_proposal,
                         ConfirmProposal(confirm=False, reason="too late"), h.staff.clinician)
    assert late.type == "StageConflict"


async def test_nothing_is_proposed_during_an_admission_avoidance_episode(harness):
    """Its own thresholds send a crossing to the senior on call; a step-up proposal beside it
    would be a second, conflicting escalation of the same missed contacts."""
    h = harness
    person_id, now = add_person(h), await h.now()
    transition_id = on_caseload(h, person_id)
    with h.session() as session:
        session.add(Transition(id=f"avoid-{uuid.uuid4()}", kind="admission_avoidance",
                               stage="intensive", person_id=person_id, team_id=h.staff.team_id,
                               policy_version="test"))
        session.commit()
    observed(h, person_id, IndicatorKind.missed_contact, now - timedelta(days=10))
    observed(h, person_id, IndicatorKind.functional_decline, now - timedelta(days=5))
    await contact(h, transition_id, person_id)

    await h.advance(timedelta(hours=2), step=timedelta(minutes=30))
    await h.settle(lambda: len(h.rows(Indicator, Indicator.person_id == person_id)) == 3)
    assert step_ups(h, person_id) == []  # the missed contact is recorded, nothing proposed
