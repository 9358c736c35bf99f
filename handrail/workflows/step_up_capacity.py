"""Step 3 of the step-up: a reserved slot of the team, or the waitlist until one is free.

A waiting request is woken two ways, on purpose: the step-up that releases a slot hands it on
in the store and signals the request it chose (so the wait ends at once), and the waiter
re-claims on a timer (`capacity_recheck`) as well, because a claim is idempotent and a signal
can miss (the releasing activity retried after it committed, or a slot added by an admin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ..activities.step_up import StepUpActivities
    from ..activities.step_up_contracts import SlotClaim, SlotRequest
    from ..domain.step_up import StepUpStage
    from ..domain.tasks import TaskKind
    from .common import STORE, wait_until

if TYPE_CHECKING:
    from .step_up import StepUp


class CapacityWait:
    def __init__(self, step_up: StepUp) -> None:
        self._step_up = step_up
        self._assigned = False

    def assigned(self, slot_id: int) -> None:
        self._assigned = True

    async def claim(self) -> None:
        step_up, state, policy = self._step_up, self._step_up._state, self._step_up._policy
        claim = await self._claim()
        if claim.slot_id is None:
            state.waiting_since = claim.waiting_since
            started = claim.waiting_since or workflow.now()
            ladder = policy.capacity_escalation
            level, next_escalation = 0, started + ladder[0].wait
            await step_up._transition.stage(StepUpStage.awaiting_capacity, "step_up.waiting_for_capacity",
                                     {"waiting_since": started.isoformat()},
                                     next_due_at=next_escalation)
            while claim.slot_id is None:
                wake = workflow.now() + policy.capacity_recheck
                if next_escalation is not None:
                    wake = min(wake, next_escalation)
                await wait_until(lambda: self._assigned, wake)
                self._assigned = False
                claim = await self._claim()
                if claim.slot_id is None and next_escalation is not None \
                        and workflow.now() >= next_escalation:
                    rung = ladder[level]
                    level += 1
                    await step_up._transition.task(
                        f"capacity-{level}", TaskKind.step_up_capacity_escalation,
                        "Approved step-up waiting for a slot: find capacity", role=rung.role,
                        due=workflow.now() + rung.wait, priority="urgent")
                    await step_up._escalated(state.capacity_escalations, level, rung.role, started,
                                             "step_up.capacity_escalated")
                    next_escalation = (workflow.now() + ladder[level].wait
                                       if level < len(ladder) else None)
                    await step_up._transition.fields(next_due_at=next_escalation)
            for task_id, kind in list(state.open_tasks.items()):
                if kind == TaskKind.step_up_capacity_escalation.value:
                    await step_up._transition.finish_task(task_id, "completed", None, "slot assigned")
        state.slot_id, state.slot_claimed_at = claim.slot_id, claim.claimed_at
        waited = ((claim.claimed_at - state.waiting_since).total_seconds()
                  if state.waiting_since and claim.claimed_at else 0.0)
        await step_up._transition.event("step_up.slot_claimed", {
            "slot_id": claim.slot_id, "label": claim.label, "waited_seconds": waited})

    async def release(self) -> None:
        """Give the slot back; the store hands it to the longest-waiting request (urgent
        first), and that request is told at once."""
        state = self._step_up._state
        released = await workflow.execute_activity_method(
            StepUpActivities.release_step_up_slot,
            SlotRequest(transition_id=state.transition_id, at=workflow.now()), **STORE)
        await self._step_up._transition.event("step_up.slot_released",
                                   {"slot_id": released.slot_id, "handed_to": released.handed_to})
        if released.handed_to is not None:
            try:
                await workflow.get_external_workflow_handle(released.handed_to).signal(
                    "slot_assigned", released.slot_id)
            except Exception:  # noqa: BLE001 - the waiter's own re-check finds the slot
                workflow.logger.info("could not signal %s; it re-checks on its timer",
                                     released.handed_to)

    async def _claim(self) -> SlotClaim:
        return await workflow.execute_activity_method(
            StepUpActivities.claim_step_up_slot,
            SlotRequest(transition_id=self._step_up._state.transition_id, at=workflow.now()),
            **STORE)
