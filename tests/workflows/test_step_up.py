"""The step-up of DESIGN.md on the time-skipping server: huddle, ladder, slot, contacts, review."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handrail.domain.contact import ContactOutcome, OutcomeReport
from handrail.domain.handoff import CompleteTask
from handrail.domain.step_up import (
    StepUpDecision,
    StepUpDecisionKind,
    StepUpOutcome,
    StepUpReview,
    StepUpReviewKind,
    StepUpStage,
    Urgency,
)
from handrail.store.models import AuditEvent, Contact, Decision, StepUpRequest, StepUpSlot, Task
from handrail.workflows.step_up import StepUp
from tests.workflows.feedback import answer
from tests.workflows.step_ups import (
    add_on_call_senior,
    add_person,
    add_slots,
    approval,
    open_tasks,
    refusal,
    request_step_up,
    transition,
)


async def test_approved_step_up_takes_a_slot_runs_intensified_contacts_and_is_reviewed(harness):
    h = harness
    [slot_id] = add_slots(h, 1)
    handle = await request_step_up(h, add_person(h))
    [huddle] = open_tasks(h, handle.id, "step_up_huddle")
    assert huddle.owner_id == h.staff.supervisor.id
    assert transition(h, handle.id).kind == "step_up"

    state = await handle.execute_update(StepUp.decide, args=[approval(h), h.staff.supervisor])
    assert state.decision == StepUpDecisionKind.approve and state.lead_id == h.staff.clinician.id
    await h.settle(lambda: transition(h, handle.id).stage == "intensified")
    assert h.rows(StepUpSlot, StepUpSlot.id == slot_id)[0].holder_transition_id == handle.id
    [decision] = h.rows(Decision, Decision.transition_id == handle.id)
    assert (decision.kind, decision.decision, decision.decided_by_id) == (
        "step_up_huddle", "approve", h.staff.supervisor.id)
    assert decision.reason == "Risk rising; agreed at huddle"
    assert transition(h, handle.id).owner_id == h.staff.clinician.id  # the lead owns it now
    assert not open_tasks(h, handle.id, "step_up_huddle")

    # The first intensified contact is due within two days (the policy), then every three.
    await h.advance(timedelta(days=2) - timedelta(hours=1), step=timedelta(hours=6))
    await h.settle(lambda: bool(h.rows(Contact, Contact.transition_id == handle.id)))
    [first] = h.rows(Contact, Contact.transition_id == handle.id)
    assert first.id == f"{handle.id}.c1" and first.purpose == "intensified_contact"
    await handle.execute_update(StepUp.record_contact, args=[
        OutcomeReport(outcome=ContactOutcome.attended), h.staff.clinician])
    await h.settle(lambda: h.rows(StepUpRequest, StepUpRequest.transition_id == handle.id)[0]
                   .first_intensified_contact_at is not None)

    # The period (six days, as decided) ends in a review task for the lead.
    await h.advance(timedelta(days=5), step=timedelta(hours=6),
                    until=lambda: bool(open_tasks(h, handle.id, "step_up_review")))
    await h.settle(lambda: bool(open_tasks(h, handle.id, "step_up_review")))
    [review] = open_tasks(h, handle.id, "step_up_review")
    assert review.owner_id == h.staff.clinician.id
    assert len(h.rows(Contact, Contact.transition_id == handle.id)) == 2  # day 2 and day 5

    state = await handle.execute_update(StepUp.review, args=[
        StepUpReview(decision=StepUpReviewKind.step_down, reason="Stable for a fortnight"),
        h.staff.clinician])
    # Stepping down releases the slot at once and asks the lead to start the taper.
    await h.settle(lambda: bool(open_tasks(h, handle.id, "start_step_down")))
    assert h.rows(StepUpSlot, StepUpSlot.id == slot_id)[0].holder_transition_id is None
    [hook] = open_tasks(h, handle.id, "start_step_down")
    await handle.execute_update(StepUp.complete_task, args=[
        CompleteTask(task_id=hook.id, note="Taper started"), h.staff.clinician])
    final = await answer(h, handle, "4")  # the closure question
    assert final.outcome == StepUpOutcome.stepped_down
    row = transition(h, handle.id)
    assert (row.status, row.outcome) == ("closed", "stepped_down")
    request = h.rows(StepUpRequest, StepUpRequest.transition_id == handle.id)[0]
    assert request.decided_at is not None and request.capacity_wait_seconds == 0.0
    assert request.first_intensified_contact_at >= request.decided_at
    assert [d.kind for d in h.rows(Decision, Decision.transition_id == handle.id)] == [
        "step_up_huddle", "step_up_review"]
    await h.record_history(handle.id, "stepup_stepped_down")


async def test_a_review_can_continue_for_another_period_and_then_escalate_to_acute_services(harness):
    h = harness
    [slot_id] = add_slots(h, 1)
    handle = await request_step_up(h, add_person(h))
    await handle.execute_update(StepUp.decide, args=[approval(h, period_days=2), h.staff.supervisor])

    async def reviewed(decision: StepUpReviewKind, reviews: int) -> None:
        await h.advance(timedelta(days=3), step=timedelta(hours=6), until=lambda: bool(
            open_tasks(h, handle.id, "step_up_review")))
        await h.settle(lambda: bool(open_tasks(h, handle.id, "step_up_review")))
        state = await handle.execute_update(StepUp.review, args=[
            StepUpReview(decision=decision, reason="see notes"), h.staff.clinician])
        assert len(state.reviews) == reviews

    await reviewed(StepUpReviewKind.continue_, 1)
    await h.settle(lambda: transition(h, handle.id).stage == "intensified")
    assert h.rows(StepUpSlot, StepUpSlot.id == slot_id)[0].holder_transition_id == handle.id
    await reviewed(StepUpReviewKind.escalate_acute, 2)
    final = await answer(h, handle, "4")
    assert final.outcome == StepUpOutcome.escalated_to_acute and final.reviews == [
        StepUpReviewKind.continue_, StepUpReviewKind.escalate_acute]
    assert transition(h, handle.id).outcome == "escalated_to_acute"
    assert h.rows(StepUpSlot, StepUpSlot.id == slot_id)[0].holder_transition_id is None
    assert [d.decision for d in h.rows(Decision, Decision.kind == "step_up_review")] == [
        "continue", "escalate_acute"]


async def test_a_declined_step_up_closes_with_its_reason_on_record(harness):
    h = harness
    add_slots(h, 1)
    handle = await request_step_up(h, add_person(h))
    await handle.execute_update(StepUp.decide, args=[StepUpDecision(
        decision=StepUpDecisionKind.decline, reason="Current plan adequate; review in 2 weeks"),
        h.staff.supervisor])
    final = await answer(h, handle, "4")
    assert final.outcome == StepUpOutcome.declined
    [decision] = h.rows(Decision, Decision.transition_id == handle.id)
    assert decision.decision == "decline" and decision.reason.startswith("Current plan adequate")
    assert decision.decided_by_id == h.staff.supervisor.id and decision.decided_at is not None
    assert transition(h, handle.id).outcome == "declined"
    assert open_tasks(h, handle.id) == []
    assert all(slot.holder_transition_id is None for slot in h.rows(StepUpSlot))


async def test_no_decision_in_time_climbs_the_escalation_ladder_and_each_wait_is_measured(harness):
    h = harness
    on_call = add_on_call_senior(h)
    handle = await request_step_up(h, add_person(h), urgency=Urgency.urgent)
    # Urgent: eight hours for the huddle (routine would have three days).
    await h.advance(timedelta(hours=7), step=timedelta(hours=1))
    assert not open_tasks(h, handle.id, "step_up_escalation")
    await h.advance(timedelta(hours=1, minutes=30), step=timedelta(minutes=30),
                    until=lambda: bool(open_tasks(h, handle.id, "step_up_escalation")))
    await h.settle(lambda: bool(open_tasks(h, handle.id, "step_up_escalation")))
    [to_lead] = open_tasks(h, handle.id, "step_up_escalation")
    assert to_lead.owner_id == h.staff.clinical_lead.id and to_lead.priority == "urgent"

    await h.advance(timedelta(days=1, hours=1), step=timedelta(hours=2),
                    until=lambda: len(open_tasks(h, handle.id, "step_up_escalation")) == 2)
    await h.settle(lambda: len(open_tasks(h, handle.id, "step_up_escalation")) == 2)
    owners = {t.owner_id for t in open_tasks(h, handle.id, "step_up_escalation")}
    assert owners == {h.staff.clinical_lead.id, on_call.id}
    state = await handle.query(StepUp.status)
    assert [(e.level, e.role) for e in state.escalations] == [
        (1, "clinical_lead"), (2, "on_call_senior")]
    waited = [e.waited_seconds for e in state.escalations]
    assert waited == pytest.approx([8 * 3600, 32 * 3600], abs=60)  # the huddle's 8 h, then 24 h
    events = [e.detail for e in h.rows(AuditEvent, AuditEvent.transition_id == handle.id)
              if e.action == "step_up.escalated"]
    assert [e["to_role"] for e in events] == ["clinical_lead", "on_call_senior"]

    # The on-call senior decides: every task that asked for the decision is done.
    await handle.execute_update(StepUp.decide, args=[StepUpDecision(
        decision=StepUpDecisionKind.decline, reason="Admitted elsewhere overnight"), on_call])
    await answer(h, handle, "4")
    request = h.rows(StepUpRequest, StepUpRequest.transition_id == handle.id)[0]
    assert request.escalation_level == 2 and request.decided_by_id == on_call.id


async def test_a_decision_from_anyone_but_a_supervisor_level_role_or_a_second_one_is_refused(harness):
    h = harness
    add_slots(h, 1)
    handle = await request_step_up(h, add_person(h))
    refused = await refusal(handle, StepUp.decide, approval(h), h.staff.clinician)
    assert refused.type == "Forbidden" and "supervisor" in refused.message
    refused = await refusal(handle, StepUp.decide, approval(h), h.staff.coordinator)
    assert refused.type == "Forbidden"
    refused = await refusal(handle, StepUp.review, StepUpReview(
        decision=StepUpReviewKind.continue_, reason="x"), h.staff.clinician)
    assert refused.type == "StageConflict" and "no step-up review is pending" in refused.message
    assert h.rows(Decision, Decision.transition_id == handle.id) == []

    await handle.execute_update(StepUp.decide, args=[approval(h), h.staff.supervisor])
    refused = await refusal(handle, StepUp.decide, StepUpDecision(
        decision=StepUpDecisionKind.decline, reason="changed my mind"), h.staff.clinical_lead)
    assert refused.type == "StageConflict" and "already decided" in refused.message
    assert len(h.rows(Decision, Decision.transition_id == handle.id)) == 1
    state = await handle.query(StepUp.status)
    assert state.decision == StepUpDecisionKind.approve
    assert state.stage in (StepUpStage.awaiting_decision, StepUpStage.intensified)


async def test_a_contact_whose_ladder_ends_leaves_the_supervisor_a_task_the_step_up_answers(harness):
    h = harness
    add_slots(h, 1)
    handle = await request_step_up(h, add_person(h))
    await handle.execute_update(StepUp.decide, args=[approval(h), h.staff.supervisor])

    # Nobody records the first contact (day 2): message, call and coordinator task, then the
    # supervisor hears of it while the step-up carries on with its next contact.
    # (Up to five days: started after 13:00, the call falls in quiet hours and waits for 08:00.)
    await h.advance(timedelta(days=5), step=timedelta(hours=2),
                    until=lambda: bool(open_tasks(h, handle.id, "supervisor_decision")))
    await h.settle(lambda: bool(open_tasks(h, handle.id, "supervisor_decision")))
    [ended] = open_tasks(h, handle.id, "supervisor_decision")
    assert "not reached" in ended.title and "disengaged" not in ended.title
    await h.settle(lambda: h.rows(Task, Task.id == ended.id)[0].workflow_id == handle.id)
    assert transition(h, handle.id).stage == "intensified"
    coordinator_call = [t for t in h.rows(Task, Task.transition_id == handle.id)
                        if t.kind == "outreach_call"]
    assert [t.title for t in coordinator_call] == ["Call the person: planned contact missed"]

    await handle.execute_update(StepUp.complete_task, args=[
        CompleteTask(task_id=ended.id, note="Visited at home; safe, agreed a new time"),
        h.staff.supervisor])
    done = h.rows(Task, Task.id == ended.id)[0]
    assert (done.status, done.completed_by_id) == ("completed", h.staff.supervisor.id)
