"""Step 6 of the step-down: exit planning, discharge, and the post-discharge check-ins.

A mixin of `StepDown`. A check-in is a message from the step-down itself (so the person's
answer comes back to it as `person_reply`): a good answer is recorded, no answer or a worrying
one is a call task for the owner. An early warning sign or a close still applies throughout.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ..activities.contracts import SendChannel, SendToPerson
    from ..domain.consent import ReplyKind
    from ..domain.messaging import render
    from ..domain.step_down import StepDownOutcome, StepDownStage
    from ..domain.taper import check_in_reply_is_good, check_in_times
    from ..domain.tasks import Role, TaskKind
    from .common import send_to_person, wait_until


class StepDownAfterTaper:
    def _interrupted_after_taper(self) -> bool:
        return self._closing is not None or self._state.re_escalation_id is not None

    async def _hold_after_taper(self, resume_stage: StepDownStage) -> bool:
        """True when the step-down ends here (closed, or re-escalated)."""
        if self._closing is not None:
            self._state.outcome = StepDownOutcome.disengaged
            return True
        if self._state.re_escalation_id is not None:
            await self._await_re_escalation(resume_stage)
            return self._state.outcome is not None
        return False

    async def _after_taper(self) -> None:
        if not await self._plan_exit() or not await self._discharge():
            return
        await self._check_in_after_discharge()

    async def _plan_exit(self) -> bool:
        state, policy = self._state, self._policy
        if state.exit_plan is None:
            due = workflow.now() + policy.exit_planning_due
            await self._transition.stage(StepDownStage.exit_planning, "step_down.taper_completed",
                                  {"contacts_made": state.contacts_made,
                                   "contacts_missed": state.contacts_missed}, next_due_at=due)
            await self._transition.task("exit-plan", TaskKind.exit_plan,
                             "Taper complete: agree the exit plan and onward signposting",
                             owner_id=state.owner_id, role=Role.clinician, due=due)
        while state.exit_plan is None:
            await workflow.wait_condition(
                lambda: state.exit_plan is not None or self._interrupted_after_taper())
            if await self._hold_after_taper(StepDownStage.exit_planning):
                return False
        return True

    async def _discharge(self) -> bool:
        state = self._state
        if state.discharged_at is None:
            state.discharged_at = workflow.now()
            await self._update_plan(discharged_at=state.discharged_at)
            await self._transition.stage(StepDownStage.post_discharge, "step_down.discharged",
                                  {"signposting": state.exit_plan.signposting},
                                  next_due_at=check_in_times(state.discharged_at,
                                                             self._policy.check_ins_after)[0]
                                  if self._policy.check_ins_after else None)
        return True

    async def _check_in_after_discharge(self) -> None:
        state, policy = self._state, self._policy
        for number, at in enumerate(check_in_times(state.discharged_at, policy.check_ins_after), 1):
            if number <= state.check_ins_sent:
                continue
            while True:  # until the check-in's date, held by a fast track meanwhile
                await wait_until(self._interrupted_after_taper, at)
                if await self._hold_after_taper(StepDownStage.post_discharge):
                    return
                if workflow.now() >= at:
                    break
            state.check_ins_sent = number
            await self._check_in(number)

    async def _check_in(self, number: int) -> None:
        state, policy = self._state, self._policy
        self._check_in_answer = None
        state.awaiting_check_in_reply = True
        sent = await self._send_check_in(number)
        if sent is None or not sent.delivered_to_channel:
            state.awaiting_check_in_reply = False
            await self._check_in_call(number, "The check-in message could not be sent: call the person")
            return
        await self._transition.event("step_down.check_in_sent", {"check_in": number})
        answered = await wait_until(lambda: self._check_in_answer is not None
                                    or self._interrupted_after_taper(),
                                    workflow.now() + policy.check_in_reply_within)
        state.awaiting_check_in_reply = False
        answer = self._check_in_answer
        if not answered or answer is None:
            await self._check_in_call(number, "No answer to the check-in after discharge: call the person")
            return
        good = check_in_reply_is_good(confirmed=answer.kind == ReplyKind.yes, rating=answer.rating,
                                      good_at_or_above=policy.check_in_good_rating_at_or_above)
        await self._transition.event("step_down.check_in_answered",
                          {"check_in": number, "rating": answer.rating, "good": good})
        if not good:
            await self._check_in_call(number, "The check-in answer is worrying: call the person")

    async def _check_in_call(self, number: int, title: str) -> None:
        await self._transition.task(f"check-in-{number}-call", TaskKind.check_in_call, title,
                         owner_id=self._state.owner_id, role=Role.clinician, priority="urgent",
                         due=workflow.now() + self._policy.fast_track_task_due)

    async def _send_check_in(self, number: int):
        state, policy = self._state, self._input.policy
        body = render(self._policy.check_in_message, service=policy.service_name,
                      phone=policy.service_phone, at=None, time_zone=state.time_zone)
        deadline: datetime = workflow.now() + self._policy.check_in_reply_within
        return await send_to_person(
            SendToPerson(key=f"{state.transition_id}:check-in-{number}",
                         transition_id=state.transition_id, contact_id=None,
                         workflow_id=workflow.info().workflow_id, person_id=state.person_id,
                         channel=SendChannel.sms, step=f"check-in-{number}", body=body,
                         at=workflow.now(), frequency_cap=policy.messaging.frequency_cap),
            time_zone=state.time_zone, quiet_hours=policy.quiet_hours,
            interrupted=self._interrupted_after_taper, deadline=deadline)
