"""Step-up capacity on the time-skipping server: the waitlist, its escalation, a fair handover."""

from __future__ import annotations

from datetime import timedelta

from handrail.domain.handoff import CompleteTask
from handrail.domain.step_up import StepUpReview, StepUpReviewKind, StepUpStage, Urgency
from handrail.store.capacity import capacity_board
from handrail.store.models import StepUpRequest, StepUpSlot
from handrail.workflows.step_up import StepUp
from tests.workflows.feedback import answer
from tests.workflows.step_ups import (
    add_person,
    add_slots,
    approval,
    open_tasks,
    request_step_up,
    transition,
)


async def approved(h, *, urgency: Urgency = Urgency.routine, period_days: int = 6):
    handle = await request_step_up(h, add_person(h, f"Person{len(h.started)}"), urgency=urgency)
    await handle.execute_update(StepUp.decide, args=[approval(h, period_days=period_days),
                                                     h.staff.supervisor])
    return handle


def stage(h, handle) -> str:
    return transition(h, handle.id).stage


async def test_no_free_slot_waits_visibly_then_the_released_slot_goes_to_the_longest_waiting_urgent(
        harness):
    h = harness
    [slot_id] = add_slots(h, 1)
    holder = await approved(h, period_days=2)  # two days, then its review
    await h.settle(lambda: stage(h, holder) == "intensified")
    routine = await approved(h)
    await h.settle(lambda: stage(h, routine) == "awaiting_capacity")
    await h.advance(timedelta(hours=1), step=timedelta(minutes=30))
    urgent_first = await approved(h, urgency=Urgency.urgent)
    await h.advance(timedelta(hours=1), step=timedelta(minutes=30))
    urgent_later = await approved(h, urgency=Urgency.urgent)
    await h.settle(lambda: stage(h, urgent_later) == "awaiting_capacity")

    # Waiting is visible, in the order the slot will be handed on: urgent first, then longest.
    with h.session() as session:
        [team] = capacity_board(session=session, team_ids=[h.staff.team_id], now=await h.now())
    assert [s["holder_transition_id"] for s in team["slots"]] == [holder.id]
    assert [w["transition_id"] for w in team["waiting"]] == [
        urgent_first.id, urgent_later.id, routine.id]
    assert team["waiting"][2]["waited_seconds"] >= 2 * 3600

    # A day of waiting escalates to the supervisor.
    await h.advance(timedelta(days=1), step=timedelta(hours=2),
                    until=lambda: bool(open_tasks(h, routine.id, "step_up_capacity_escalation")))
    await h.settle(lambda: bool(open_tasks(h, routine.id, "step_up_capacity_escalation")))
    [escalation] = open_tasks(h, routine.id, "step_up_capacity_escalation")
    assert escalation.owner_id == h.staff.supervisor.id

    # The holder's period ends; stepping down releases the slot to the longest-waiting urgent.
    await h.advance(timedelta(days=1), step=timedelta(hours=2),
                    until=lambda: bool(open_tasks(h, holder.id, "step_up_review")))
    await h.settle(lambda: bool(open_tasks(h, holder.id, "step_up_review")))
    await holder.execute_update(StepUp.review, args=[
        StepUpReview(decision=StepUpReviewKind.step_down, reason="Stable"), h.staff.clinician])
    # The signal wakes the chosen request at once: no time passes here.
    await h.settle(lambda: stage(h, urgent_first) == "intensified")
    assert h.rows(StepUpSlot, StepUpSlot.id == slot_id)[0].holder_transition_id == urgent_first.id
    state = await urgent_first.query(StepUp.status)
    assert state.stage == StepUpStage.intensified and state.slot_id == slot_id
    assert not open_tasks(h, urgent_first.id, "step_up_capacity_escalation")
    assert stage(h, urgent_later) == stage(h, routine) == "awaiting_capacity"
    waited = h.rows(StepUpRequest, StepUpRequest.transition_id == urgent_first.id)[0]
    assert waited.capacity_wait_seconds >= timedelta(days=1).total_seconds()

    [hook] = open_tasks(h, holder.id, "start_step_down")
    await holder.execute_update(StepUp.complete_task, args=[CompleteTask(task_id=hook.id),
                                                            h.staff.clinician])
    await answer(h, holder, "4")  # the closure question, answered
