"""`StepUp`: from routine care up to more intensive support (DESIGN.md steps 1–4)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from ..activities.contracts import CancelOpenTasks
    from ..activities.records import RecordActivities
    from ..activities.step_up import StepUpActivities
    from ..activities.step_up_contracts import (
        RecordedStepUp,
        RecordStepUp,
        StepUpRequestFields,
        StepUpRequestUpdate,
    )
    from ..domain.contact import ContactResult, ContactResultKind, OutcomeReport, PersonReply
    from ..domain.handoff import Actor, CompleteTask
    from ..domain.ids import contact_workflow_id
    from ..domain.step_up import (
        ConfirmProposal,
        Escalation,
        StepUpDecision,
        StepUpDecisionKind,
        StepUpInput,
        StepUpOrigin,
        StepUpOutcome,
        StepUpReview,
        StepUpReviewKind,
        StepUpStage,
        StepUpState,
        Urgency,
        intensified_contact,
    )
    from ..domain.tasks import ANSWERED_BY_ACTION, Role, TaskKind
    from .closure_feedback import ClosureFeedback
    from .common import STORE, task_is_open, task_may_be_open, task_not_open, wait_until
    from .contact import Contact
    from .step_up_capacity import CapacityWait
    from .transition_record import TransitionRecord



@workflow.defn
class StepUp:
    @workflow.init
    def __init__(self, inp: StepUpInput) -> None:
        self._input = inp
        self._policy = inp.policy.step_up
        self._state = StepUpState(transition_id=inp.transition_id, origin=inp.origin,
                                  urgency=inp.urgency, requested_at=inp.requested_at)
        self._recorded: RecordedStepUp | None = None
        self._confirmation: ConfirmProposal | None = None
        self._decision: StepUpDecision | None = None
        self._review: StepUpReview | None = None
        self._contact: workflow.ChildWorkflowHandle | None = None
        self._period_over = False
        self._step_down_task_id: int | None = None
        self._step_down_started = False
        self._proposal_unconfirmed = False
        self._capacity = CapacityWait(self)
        self._transition = TransitionRecord(self._state)
        self._feedback = ClosureFeedback()

    @workflow.run
    async def run(self, inp: StepUpInput) -> StepUpState:
        await self._record()  # step 1
        if inp.origin == StepUpOrigin.proposed and not await self._confirm_proposal():
            return await self._close(StepUpOutcome.proposal_dismissed)
        decision = await self._huddle()  # step 2
        if decision.decision == StepUpDecisionKind.decline:
            return await self._close(StepUpOutcome.declined)
        await self._capacity.claim()  # step 3
        while True:  # step 4
            await self._intensified_period()
            review = await self._await_review()
            if review.decision != StepUpReviewKind.continue_:
                break
        await self._capacity.release()
        if review.decision == StepUpReviewKind.step_down:
            await self._hand_over_to_step_down()
            return await self._close(StepUpOutcome.stepped_down)
        # Acute care takes over: the review decision (who, when, why) is the record of it.
        return await self._close(StepUpOutcome.escalated_to_acute)

    # --- steps ----------------------------------------------------------------------------

    async def _record(self) -> None:
        recorded = await workflow.execute_activity_method(
            StepUpActivities.record_step_up, RecordStepUp(input=self._input), **STORE)
        state = self._state
        state.person_id, state.team_id, state.owner_id = (
            recorded.person_id, recorded.team_id, recorded.owner_id)
        self._recorded = recorded

    async def _confirm_proposal(self) -> bool:
        """A proposal goes to the huddle once the clinician confirms it, or when nobody has
        answered by the deadline: escalation must not depend on someone remembering."""
        due = workflow.now() + self._policy.proposal_confirmation_due
        await self._transition.stage(StepUpStage.awaiting_confirmation, "step_up.proposed",
                              {"crossed_rules": self._input.crossed_rules}, next_due_at=due)
        task_id = await self._transition.task("confirm", TaskKind.confirm_step_up_proposal,
                                   "Confirm or dismiss the step-up Handrail proposed",
                                   owner_id=self._state.owner_id, role=Role.clinician, due=due)
        if not await wait_until(lambda: self._confirmation is not None, due):
            self._proposal_unconfirmed = True  # a late answer is refused: the huddle has it now
            await self._transition.finish_task(task_id, "cancelled", None, "went to the huddle unconfirmed")
            await self._transition.event("step_up.proposal_unconfirmed", {"was_due": due.isoformat()})
            return True
        return self._confirmation.confirm

    async def _huddle(self) -> StepUpDecision:
        state, policy = self._state, self._policy
        started = workflow.now()
        urgent = state.urgency == Urgency.urgent
        due = started + (policy.decision_due_urgent if urgent else policy.decision_due_routine)
        state.decision_due = due
        await self._transition.stage(StepUpStage.awaiting_decision, "step_up.huddle_requested",
                              {"urgency": state.urgency.value, "decision_due": due.isoformat()},
                              next_due_at=due)
        priority = "urgent" if urgent else "routine"
        await self._transition.task("huddle", TaskKind.step_up_huddle,
                         "Step-up huddle: approve, modify or decline", role=policy.huddle_role,
                         due=due, priority=priority)
        decided = lambda: self._decision is not None  # noqa: E731
        if not await wait_until(decided, due):
            # No decision in time: up the ladder, each level a task, every wait measured.
            for level, rung in enumerate(policy.escalation_ladder, start=1):
                rung_due = workflow.now() + rung.wait
                await self._transition.task(f"escalation-{level}", TaskKind.step_up_escalation,
                                 f"Step-up decision overdue: decide (escalation level {level})",
                                 role=rung.role, due=rung_due, priority="urgent")
                await self._escalated(state.escalations, level, rung.role, started, "step_up.escalated")
                await self._update_request(escalation_level=level)
                await self._transition.fields(next_due_at=rung_due)
                if await wait_until(decided, rung_due):
                    break
            await wait_until(decided, None)
        return self._decision

    async def _intensified_period(self) -> None:
        state = self._state
        start = workflow.now()
        period = (self._decision.period if self._decision and self._decision.period
                  else self._policy.period)
        state.period_ends_at = start + period
        state.periods += 1
        self._period_over = False
        await self._transition.stage(StepUpStage.intensified, "step_up.period_started",
                              {"period": state.periods, "ends_at": state.period_ends_at.isoformat(),
                               "contact_frequency_seconds": state.contact_frequency.total_seconds()},
                              next_due_at=state.period_ends_at)
        contacts = asyncio.create_task(self._intensified_contacts(start, state.period_ends_at))
        if not await wait_until(contacts.done, state.period_ends_at):
            self._period_over = True  # the period ends the contact in progress
            if self._contact is not None:
                await self._contact.signal(Contact.stop)
            await workflow.wait_condition(contacts.done)
        contacts.result()
        await wait_until(lambda: False, state.period_ends_at)  # no contact left: the period runs out

    async def _intensified_contacts(self, start: datetime, end: datetime) -> None:
        frequency = self._state.contact_frequency
        first = self._policy.first_contact_within if self._state.periods == 1 else frequency
        appointment = start + first
        while not self._period_over:
            while appointment <= workflow.now():  # a long chase skips the slots it overran
                appointment += frequency
            if appointment >= end:
                return
            result = await self._chase_contact(appointment)
            if result.kind == ContactResultKind.made and self._state.first_intensified_contact_at is None:
                made_at = result.made_at or workflow.now()
                self._state.first_intensified_contact_at = made_at
                await self._update_request(first_intensified_contact_at=made_at)
                await self._transition.event("step_up.first_intensified_contact",
                                  {"contact_id": result.contact_id, "after_decision_seconds":
                                   (made_at - self._state.decided_at).total_seconds()})
            appointment += frequency

    async def _chase_contact(self, appointment: datetime) -> ContactResult:
        state, recorded = self._state, self._recorded
        sequence = len(state.contact_ids) + 1
        contact_id = contact_workflow_id(state.transition_id, sequence)
        spec = intensified_contact(
            self._input.policy, contact_id=contact_id, transition_id=state.transition_id,
            sequence=sequence, person_id=recorded.person_id, team_id=recorded.team_id,
            lead_id=state.lead_id, time_zone=recorded.time_zone, appointment_at=appointment)
        state.contact_ids.append(contact_id)
        self._contact = await workflow.start_child_workflow(Contact.run, spec, id=contact_id)
        state.active_contact_id = contact_id  # shown once record-contact can reach it
        if self._period_over:
            await self._contact.signal(Contact.stop)
        try:
            result: ContactResult = await self._contact
        except ChildWorkflowError:
            # The routine itself failed: the next contact still comes, and the review still does.
            result = ContactResult(contact_id=contact_id, kind=ContactResultKind.ladder_exhausted)
        self._contact = None
        state.active_contact_id = None
        if result.supervisor_task_id is not None:
            await self._adopt_supervisor_task(result.supervisor_task_id)
        return result

    async def _adopt_supervisor_task(self, task_id: int) -> None:
        await self._transition.adopt_supervisor_task(task_id)
        await self._transition.event("step_up.contact_ladder_exhausted", {"task_id": task_id})

    async def _await_review(self) -> StepUpReview:
        state = self._state
        due = workflow.now() + self._policy.review_due
        state.review_due = due
        self._review = None
        await self._transition.stage(StepUpStage.awaiting_review, "step_up.review_due",
                              {"period": state.periods}, next_due_at=due)
        await self._transition.task(f"review-{state.periods}", TaskKind.step_up_review,
                         "Review the step-up: continue, step down or escalate to acute services",
                         owner_id=state.lead_id, role=Role.clinician, due=due)
        if not await wait_until(lambda: self._review is not None, due):
            await self._transition.task(f"review-{state.periods}-overdue", TaskKind.step_up_escalation,
                             "Step-up review overdue", role=self._policy.huddle_role,
                             due=workflow.now() + self._policy.supervisor_decision_due,
                             priority="urgent")
            await self._transition.event("step_up.review_overdue", {"was_due": due.isoformat()})
            await wait_until(lambda: self._review is not None, None)
        return self._review

    async def _hand_over_to_step_down(self) -> None:
        """The hook for the step-down taper: until `StepDown` exists, the lead starts it by
        hand and completes this task; the step-up closes when they have."""
        self._step_down_task_id = await self._transition.task(
            "start-step-down", TaskKind.start_step_down, "Start the step-down taper",
            owner_id=self._state.lead_id, role=Role.clinician,
            due=workflow.now() + self._policy.review_due)
        await self._transition.stage(self._state.stage, "step_up.step_down_requested",
                              {"task_id": self._step_down_task_id}, next_due_at=None)
        await wait_until(lambda: self._step_down_started, None)

    async def _close(self, outcome: StepUpOutcome) -> StepUpState:
        state, now = self._state, workflow.now()
        state.outcome = outcome
        # The contacts' own tasks too (a ladder's supervisor task outlives its contact).
        for workflow_id in [workflow.info().workflow_id, *state.contact_ids]:
            await workflow.execute_activity_method(
                RecordActivities.cancel_open_tasks,
                CancelOpenTasks(workflow_id=workflow_id, at=now,
                                business_status=f"step-up {outcome.value}"), **STORE)
        state.open_tasks.clear()
        await self._update_request(outcome=outcome.value)
        await self._transition.stage(StepUpStage.closed, "transition.closed", {"outcome": outcome.value},
                              status="closed", outcome=outcome.value, closed_at=now,
                              next_due_at=None)
        # A dismissed proposal was Handrail's idea, never a step the person took: nothing to ask.
        if outcome != StepUpOutcome.proposal_dismissed and workflow.patched("closure-feedback"):
            state.feedback_rating = await self._feedback.ask(
                policy=self._input.policy, pathway="step_up", transition_id=state.transition_id,
                person_id=state.person_id, team_id=state.team_id, owner_id=state.owner_id,
                time_zone=self._recorded.time_zone, open_tasks=state.open_tasks)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return state

    # --- staff actions (updates) --------------------------------------------------------

    def _require_stage(self, stage: StepUpStage, what: str) -> None:
        if self._state.stage != stage:
            raise ApplicationError(f"no {what} is pending on this step-up "
                                   f"(it is {self._state.stage.value})", type="StageConflict")

    def _require_role(self, actor: Actor, roles, what: str) -> None:
        if actor.role not in roles:
            raise ApplicationError(f"only {', '.join(r.value for r in roles)} may {what}",
                                   type="Forbidden")

    @workflow.update
    async def confirm_proposal(self, command: ConfirmProposal, actor: Actor) -> StepUpState:
        self._confirmation = command
        if command.urgency is not None:
            self._state.urgency = command.urgency
            await self._update_request(urgency=command.urgency.value)
        await self._transition.decided("step_up_proposal", "confirm" if command.confirm else "dismiss",
                            command.reason, actor, TaskKind.confirm_step_up_proposal)
        return self._state

    @confirm_proposal.validator
    def _validate_confirm_proposal(self, command: ConfirmProposal, actor: Actor) -> None:
        if self._confirmation is not None or self._proposal_unconfirmed:
            raise ApplicationError("the proposal was already answered or went to the huddle",
                                   type="StageConflict")
        self._require_stage(StepUpStage.awaiting_confirmation, "proposal confirmation")
        self._require_role(actor, [Role.clinician, *self._policy.decision_roles], "confirm a proposal")

    @workflow.update
    async def decide(self, command: StepUpDecision, actor: Actor) -> StepUpState:
        state, now = self._state, workflow.now()
        self._decision = command
        state.decision, state.decided_at, state.decided_by_id = command.decision, now, actor.id
        detail = {"decision_wait_seconds": (now - state.requested_at).total_seconds(),
                  "escalation_level": len(state.escalations)}
        fields = {}
        if command.decision != StepUpDecisionKind.decline:
            state.lead_id = command.lead_id
            state.contact_frequency = command.contact_frequency or self._policy.contact_frequency
            seconds = state.contact_frequency.total_seconds()
            detail |= {"lead_id": command.lead_id, "contact_frequency_seconds": seconds}
            fields = {"lead_id": command.lead_id, "contact_frequency_seconds": int(seconds)}
        await self._update_request(decision=command.decision.value, decided_at=now,
                                   decided_by_id=actor.id, **fields)
        await self._transition.decided("step_up_huddle", command.decision.value, command.reason, actor,
                            TaskKind.step_up_huddle, TaskKind.step_up_escalation, detail=detail)
        if state.lead_id is not None and state.lead_id != state.owner_id:
            state.owner_id = state.lead_id  # the lead owns the step-up from here on
            await self._transition.fields(owner_id=state.lead_id)
        return state

    @decide.validator
    def _validate_decide(self, command: StepUpDecision, actor: Actor) -> None:
        if self._decision is not None:
            raise ApplicationError("this step-up was already decided", type="StageConflict")
        self._require_stage(StepUpStage.awaiting_decision, "step-up decision")
        self._require_role(actor, self._policy.decision_roles, "decide a step-up")

    @workflow.update
    async def review(self, command: StepUpReview, actor: Actor) -> StepUpState:
        self._review = command
        self._state.reviews.append(command.decision)
        await self._transition.decided("step_up_review", command.decision.value, command.reason, actor,
                            TaskKind.step_up_review, TaskKind.step_up_escalation,
                            detail={"period": self._state.periods})
        return self._state

    @review.validator
    def _validate_review(self, command: StepUpReview, actor: Actor) -> None:
        if self._review is not None:
            raise ApplicationError("this review was already recorded", type="StageConflict")
        self._require_stage(StepUpStage.awaiting_review, "step-up review")
        self._require_role(actor, [Role.clinician, *self._policy.decision_roles], "review a step-up")

    @workflow.update
    async def record_contact(self, command: OutcomeReport, actor: Actor) -> StepUpState:
        await self._contact.signal(Contact.report_outcome, args=[command, actor])
        return self._state

    @record_contact.validator
    def _validate_record_contact(self, command: OutcomeReport, actor: Actor) -> None:
        if self._contact is None:
            raise ApplicationError("no intensified contact is in progress", type="StageConflict")

    @workflow.update
    async def complete_task(self, command: CompleteTask, actor: Actor) -> StepUpState:
        if not await task_is_open(self._state.open_tasks, command.task_id):
            raise task_not_open(command.task_id, "step-up")
        self._validate_complete_task(command, actor)  # what the validator could not check yet
        if command.task_id == self._step_down_task_id:
            self._step_down_started = True
        await self._transition.finish_task(command.task_id, "completed", actor.id, command.note)
        return self._state

    @complete_task.validator
    def _validate_complete_task(self, command: CompleteTask, actor: Actor) -> None:
        if not task_may_be_open(self._state.open_tasks, command.task_id):
            raise task_not_open(command.task_id, "step-up")
        kind = self._state.open_tasks.get(command.task_id)
        if kind in ANSWERED_BY_ACTION:
            raise ApplicationError("answer this task with its action (confirm-proposal, decide "
                                   "or review), which records the reason", type="InvalidAction")

    @workflow.signal
    def person_reply(self, reply: PersonReply) -> None:
        """The answer to the closure question. A reply to a contact's message reaches that
        contact (the webhook signals the workflow that sent it); anything else is left as it
        was before this handler existed, so a running step-up replays unchanged."""
        if not self._feedback.offer(reply.text):
            workflow.logger.info("a reply to the step-up outside the closure question: not acted on")

    @workflow.signal
    def slot_assigned(self, slot_id: int) -> None:
        """A released slot was handed to this request by the step-up that held it."""
        self._capacity.assigned(slot_id)

    @workflow.query
    def status(self) -> StepUpState:
        return self._state

    # --- effects ------------------------------------------------------------------------

    async def _escalated(self, ladder: list, level: int, role: Role, started: datetime,
                         action: str) -> None:
        now = workflow.now()
        waited = (now - started).total_seconds()
        ladder.append(Escalation(level=level, role=role.value, at=now, waited_seconds=waited))
        await self._transition.event(action, {"level": level, "to_role": role.value,
                                              "waited_seconds": waited})

    async def _update_request(self, **fields: object) -> None:
        await workflow.execute_activity_method(
            StepUpActivities.update_step_up_request,
            StepUpRequestUpdate(transition_id=self._state.transition_id,
                                fields=StepUpRequestFields(**fields)), **STORE)
