"""`Contact`: one planned touchpoint, reminded, awaited and, when missed, chased up the ladder.

The same routine serves every pathway as a child workflow: remind the person, wait for the
outcome or for the window to pass, and on a miss climb the pathway's fallback ladder step by
step (each an action and a wait) until contact is made or the ladder ends in a supervisor's
decision task. A person's reply and a delivery failure arrive as signals and move it on at once.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ..activities.contracts import (
        ContactRecord,
        SendChannel,
        SendResult,
        SendToPerson,
    )
    from ..activities.records import RecordActivities
    from ..activities.step_up import StepUpActivities
    from ..activities.step_up_contracts import IndicatorNote
    from ..domain.consent import ReplyKind, classify_reply
    from ..domain.contact import (
        ContactOutcome,
        ContactResult,
        ContactResultKind,
        ContactSpec,
        DeliveryFailure,
        OutcomeReport,
        PersonReply,
    )
    from ..domain.handoff import Actor, CompleteTask
    from ..domain.indicators import IndicatorKind
    from ..domain.messaging import render
    from ..domain.policy import LadderAction, LadderStep
    from ..domain.tasks import Role, TaskKind
    from .common import (
        STORE,
        finish_task,
        number_unusable,
        open_task,
        send_to_person,
        task_is_open,
        task_may_be_open,
        task_not_open,
    tasks_heard_of,
        wait_until,
    )
    from .metrics import escalated, fallback_step_taken

# Misses and what staff observe at a contact feed the step-up thresholds (histories recorded
# before it replay without the extra activity).
INDICATORS_PATCH = "step-up-indicators"
# A number that cannot take messages raises a call task (histories before it replay without).
UNUSABLE_NUMBER_PATCH = "unusable-number-task"


# What the supervisor is asked when the ladder ends: the handoff's own decision (answered with
# `decide`), elsewhere an acknowledgement of what was done, while the pathway carries on.
LADDER_EXHAUSTED_TITLES = {
    "first_contact": "Fallback ladder exhausted: decide (continue outreach, close as disengaged, transfer)",
    "*": "Fallback ladder exhausted: the person was not reached; review the plan and record what "
         "was done",
}


@workflow.defn
class Contact:
    @workflow.init
    def __init__(self, spec: ContactSpec) -> None:
        self._spec = spec
        self._appointment_at = spec.appointment_at
        self._due_at = spec.due_at
        self._reschedules = 0
        self._outcome: OutcomeReport | None = None
        self._outcome_actor: Actor | None = None
        self._rescheduled = False
        self._stopped = False
        self._confirmed_at: datetime | None = None
        self._failed_attempts: set[int] = set()
        self._open_tasks: dict[int, str] = {}
        self._ladder_position = 0
        self._result = ContactResult(contact_id=spec.contact_id, kind=ContactResultKind.cancelled)
        self._supervisor_task_id: int | None = None
        self._replies = 0
        self._unusable_number_task = False

    # --- the routine -------------------------------------------------------------------

    @workflow.run
    async def run(self, spec: ContactSpec) -> ContactResult:
        await self._record("scheduled")
        while True:
            outcome = await self._await_touchpoint()
            if outcome is not None:
                return await self._finish(outcome)
            outcome = await self._climb_ladder()
            if outcome is not None:
                return await self._finish(outcome)
            # rescheduled mid-ladder: back to waiting for the new appointment

    async def _await_touchpoint(self) -> ContactResultKind | None:
        """Reminders, then the outcome by the window's end. None when it was missed."""
        while True:
            if self._rescheduled:
                self._rescheduled = False
                await self._record("rescheduled")
            appointment = self._appointment_at
            for index, offset in enumerate(sorted(self._spec.reminders_before, reverse=True)):
                remind_at = appointment - offset
                if remind_at < workflow.now():
                    continue
                if await wait_until(self._interrupted, remind_at):
                    break
                await self._send(SendChannel.sms, "reminder",
                                 f"reminder-{self._reschedules}-{index}", deadline=appointment)
            await wait_until(self._interrupted, self._due_at)
            if not self._rescheduled or self._stopped or self._outcome is not None:
                return await self._settle(missed_by_default=True)

    async def _climb_ladder(self) -> ContactResultKind | None:
        """Each step: its action, then a wait for contact. None when rescheduled mid-way."""
        ladder = self._spec.fallback_ladder
        while self._ladder_position < len(ladder):
            step = ladder[self._ladder_position]
            position = self._ladder_position
            self._ladder_position += 1
            await self._record("chasing", ladder_step=position + 1)
            failed_attempt = await self._take(step, position)
            if step.action == LadderAction.supervisor_escalation:
                return ContactResultKind.ladder_exhausted
            if failed_attempt is None:
                await wait_until(self._interrupted, workflow.now() + step.wait)
            elif failed_attempt >= 0:
                # Delivery failed: stop waiting as soon as the provider tells us.
                await wait_until(
                    lambda attempt=failed_attempt: self._interrupted() or attempt in self._failed_attempts,
                    workflow.now() + step.wait,
                )
            settled = await self._settle(missed_by_default=False)
            if settled is not None:
                return settled
            if self._rescheduled:
                return None
        return ContactResultKind.ladder_exhausted

    async def _take(self, step: LadderStep, position: int) -> int | None:
        """Do one ladder step. Returns the attempt id to watch for a delivery failure, -1 when
        nothing reached the person (so the ladder moves on at once), None for a task."""
        key = f"ladder-{position}-{step.action.value}"
        fallback_step_taken(step.action.value)
        if step.action in (LadderAction.message, LadderAction.call):
            channel = SendChannel.sms if step.action == LadderAction.message else SendChannel.call
            sent = await self._send(channel, step.template or "missed_contact", key)
            self._result.outreach_attempts += 1
            self._result.ladder_steps_taken.append(step.action.value)
            if sent is None or not sent.delivered_to_channel:
                return -1
            return sent.attempt_id
        self._result.ladder_steps_taken.append(step.action.value)
        if step.action == LadderAction.coordinator_task:
            self._result.outreach_attempts += 1
            await self._task(key, TaskKind.outreach_call, f"Call the person: {self._what} missed",
                             due=workflow.now() + step.wait, priority="urgent")
        elif step.action == LadderAction.rebook:
            await self._task(key, TaskKind.rebook_contact, f"Re-book the missed {self._what}",
                             due=workflow.now() + step.wait, priority="urgent")
        elif step.action == LadderAction.supervisor_escalation:
            self._supervisor_task_id = await self._task(
                key, TaskKind.supervisor_decision,
                LADDER_EXHAUSTED_TITLES.get(self._spec.purpose, LADDER_EXHAUSTED_TITLES["*"]),
                due=workflow.now() + self._spec.supervisor_decision_due, priority="urgent",
                role=Role.supervisor, owner_id=None,
            )
            escalated("fallback_ladder_exhausted")
        return None

    async def _settle(self, *, missed_by_default: bool) -> ContactResultKind | None:
        if self._stopped:
            return ContactResultKind.cancelled
        outcome = self._outcome
        if outcome is not None and outcome.outcome == ContactOutcome.attended:
            return ContactResultKind.made
        if outcome is not None or missed_by_default:
            reason = outcome.outcome.value if outcome else ContactOutcome.missed.value
            await self._record("missed", outcome=reason,
                               actor_id=self._outcome_actor.id if self._outcome_actor else None,
                               note=outcome.note if outcome else "no outcome recorded by the window's end")
            missed = outcome is None or outcome.outcome == ContactOutcome.missed
            if missed_by_default and workflow.patched(INDICATORS_PATCH):
                await self._note_indicators(
                    ([IndicatorKind.missed_contact] if missed else [])
                    + (outcome.indicators if outcome else []))
            self._outcome = None
            self._outcome_actor = None
        return None

    async def _finish(self, kind: ContactResultKind) -> ContactResult:
        now = workflow.now()
        self._result.kind = kind
        if kind == ContactResultKind.made:
            made_at = (self._outcome.occurred_at if self._outcome and self._outcome.occurred_at else now)
            self._result.made_at = made_at
            await self._record("attended", outcome="attended", outcome_at=made_at,
                               actor_id=self._outcome_actor.id if self._outcome_actor else None,
                               note=self._outcome.note if self._outcome else "")
            if self._outcome and self._outcome.indicators and workflow.patched(INDICATORS_PATCH):
                await self._note_indicators(self._outcome.indicators)
        elif kind == ContactResultKind.cancelled:
            await self._record("cancelled", outcome="cancelled")
        else:
            await self._record("ladder_exhausted", ladder_step=self._ladder_position)
        # Chasing tasks end with the contact; the supervisor's decision task outlives it.
        await tasks_heard_of()
        for task_id in list(self._open_tasks):
            if task_id != self._supervisor_task_id:
                await self._finish_task(task_id, "cancelled", None, f"contact {kind.value}")
        self._result.supervisor_task_id = self._supervisor_task_id
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result

    @property
    def _what(self) -> str:
        return "first contact" if self._spec.purpose == "first_contact" else "planned contact"

    # --- staff and person events --------------------------------------------------------

    def _interrupted(self) -> bool:
        return self._stopped or self._outcome is not None or self._rescheduled

    @workflow.signal
    def report_outcome(self, report: OutcomeReport, actor: Actor) -> None:
        if report.outcome == ContactOutcome.rescheduled and report.new_appointment_at:
            self.reschedule(report.new_appointment_at)
            return
        self._outcome = report
        self._outcome_actor = actor

    @workflow.signal
    def reschedule(self, appointment_at: datetime) -> None:
        grace = self._spec.due_at - self._spec.appointment_at
        self._appointment_at = appointment_at
        self._due_at = appointment_at + grace
        self._reschedules += 1
        self._rescheduled = True

    @workflow.signal
    def stop(self) -> None:
        self._stopped = True

    @workflow.signal
    async def person_reply(self, reply: PersonReply) -> None:
        self._replies += 1
        answer = classify_reply(reply.text, opted_out=False)
        if answer.kind in (ReplyKind.help, ReplyKind.opt_out, ReplyKind.opt_in):
            return  # consent keywords are the messaging layer's: recorded there, at once
        if answer.kind == ReplyKind.yes:
            self._confirmed_at = reply.received_at
            await self._record("confirmed_by_person")
            return
        due = workflow.now() + self._spec.supervisor_decision_due
        if answer.kind in (ReplyKind.callback, ReplyKind.no):
            await self._task(f"reply-{self._replies}", TaskKind.outreach_call,
                             "The person asked to talk: call them back", due=due, priority="urgent")
        else:  # a rating or free text: somebody reads it
            await self._task(f"reply-{self._replies}", TaskKind.read_reply,
                             "The person replied: read it and respond", due=due, priority="routine")

    @workflow.signal
    def delivery_failed(self, failure: DeliveryFailure) -> None:
        self._failed_attempts.add(failure.message_id)

    @workflow.update
    async def complete_task(self, command: CompleteTask, actor: Actor) -> None:
        if not await task_is_open(self._open_tasks, command.task_id):
            raise task_not_open(command.task_id, "contact")
        await self._finish_task(command.task_id, "completed", actor.id, command.note)

    @complete_task.validator
    def _validate_complete_task(self, command: CompleteTask, actor: Actor) -> None:
        if not task_may_be_open(self._open_tasks, command.task_id):
            raise task_not_open(command.task_id, "contact")

    @workflow.query
    def appointment(self) -> datetime:
        return self._appointment_at

    # --- effects ------------------------------------------------------------------------

    async def _send(self, channel: SendChannel, template: str, step: str,
                    deadline: datetime | None = None) -> SendResult | None:
        spec = self._spec
        body = render(getattr(spec.messages, template), service=spec.service.name,
                      phone=spec.service.phone, at=self._appointment_at, time_zone=spec.time_zone)
        sent = await send_to_person(
            SendToPerson(key=f"{spec.contact_id}:{step}", transition_id=spec.transition_id,
                         contact_id=spec.contact_id, workflow_id=workflow.info().workflow_id,
                         person_id=spec.person_id, channel=channel, step=step, body=body,
                         at=workflow.now(), frequency_cap=spec.frequency_cap),
            time_zone=spec.time_zone, quiet_hours=spec.quiet_hours, interrupted=self._interrupted,
            deadline=deadline)
        if sent is not None and number_unusable(sent) and workflow.patched(UNUSABLE_NUMBER_PATCH):
            await self._ask_for_a_working_number()
        return sent

    async def _ask_for_a_working_number(self) -> None:
        """No message can reach this number: the coordinator calls (or finds a new number)
        before the appointment, instead of every later reminder failing unseen. Once a contact."""
        if self._unusable_number_task:
            return
        self._unusable_number_task = True
        now = workflow.now()
        due = now + self._spec.supervisor_decision_due
        if now < self._appointment_at < due:
            due = self._appointment_at
        await self._task("unusable-number", TaskKind.outreach_call,
                         "Messages cannot reach the person's number: call them and record a "
                         "working mobile number", due=due, priority="urgent")

    async def _task(self, key: str, kind: TaskKind, title: str, *, due: datetime, priority: str,
                    role: Role | None = None, owner_id: int | None = -1) -> int:
        spec = self._spec
        return await open_task(
            self._open_tasks, key=f"{spec.contact_id}:{key}", transition_id=spec.transition_id,
            team_id=spec.team_id, kind=kind, title=title, due=due, role=role, priority=priority,
            owner_id=spec.owner_id if owner_id == -1 else owner_id)

    async def _finish_task(self, task_id: int, status: str, actor_id: int | None, note: str) -> None:
        await finish_task(self._open_tasks, task_id, status, actor_id, note)

    async def _note_indicators(self, kinds: list[IndicatorKind]) -> None:
        spec, actor = self._spec, self._outcome_actor
        for kind in dict.fromkeys(kinds):  # each kind once per contact event
            await workflow.execute_activity_method(
                StepUpActivities.note_indicator,
                IndicatorNote(key=f"{spec.contact_id}:{kind.value}:{self._reschedules}:"
                                  f"{self._ladder_position}",
                              person_id=spec.person_id, team_id=spec.team_id,
                              transition_id=spec.transition_id, kind=kind,
                              observed_at=workflow.now(), recorded_by_id=actor.id if actor else None),
                **STORE)

    async def _record(self, status: str, *, outcome: str | None = None,
                      outcome_at: datetime | None = None, ladder_step: int | None = None,
                      actor_id: int | None = None, note: str = "") -> None:
        spec = self._spec
        await workflow.execute_activity_method(
            RecordActivities.record_contact,
            ContactRecord(
                contact_id=spec.contact_id, transition_id=spec.transition_id,
                key=f"{spec.contact_id}:{status}:{self._reschedules}:{self._ladder_position}:{self._replies}",
                at=workflow.now(), sequence=spec.sequence, purpose=spec.purpose,
                appointment_at=self._appointment_at,
                not_before=self._appointment_at - (spec.appointment_at - spec.not_before),
                due_at=self._due_at, status=status, outcome=outcome, outcome_at=outcome_at,
                confirmed_by_person_at=self._confirmed_at,
                ladder_step=self._ladder_position if ladder_step is None else ladder_step,
                actor_id=actor_id, note=note,
            ),
            **STORE,
        )


