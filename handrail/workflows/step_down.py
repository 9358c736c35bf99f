"""`StepDown`: from intensive support back to routine care or discharge (DESIGN.md steps 1–6).

A taper runs for months, so its history is kept small: each contact is a child workflow, and
after a few contacts the taper continues as a new run carrying its state (`StepDownState`).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from ..activities.step_down import RecordStepDown, StepDownActivities
    from ..domain.consent import ReplyKind, classify_reply
    from ..domain.contact import ContactResult, ContactResultKind, OutcomeReport, PersonReply
    from ..domain.handoff import Actor, CompleteTask, Reassign, RePresentation
    from ..domain.ids import contact_workflow_id
    from ..domain.step_down import (
        Adjustment,
        AdjustTaper,
        CloseStepDown,
        EarlyWarning,
        ExitPlan,
        StepDownInput,
        StepDownOutcome,
        StepDownStage,
        StepDownState,
        reminder_lead,
        taper_contact,
    )
    from ..domain.taper import (
        AdjustmentKind,
        anchor_after_pause,
        contact_window,
        faster,
        missing_criteria,
        planned_contacts,
        rating_is_warning,
        review_due_after_misses,
        slower,
        taper_dates,
    )
    from ..domain.tasks import ANSWERED_BY_ACTION, Role, TaskKind
    from .closure_feedback import ClosureFeedback
    from .common import STORE, task_is_open, task_may_be_open, task_not_open, wait_until
    from .contact import Contact
    from .step_down_after import StepDownAfterTaper
    from .step_down_effects import StepDownEffects
    from .transition_record import TransitionRecord

# A new run after this many contacts: ten contacts with their ladders in one history would
# reach thousands of events; four keep each run small and the replay of one run quick.
CONTACTS_PER_RUN = 4
_ADJUSTABLE = (StepDownStage.recorded, StepDownStage.tapering, StepDownStage.paused)


@workflow.defn
class StepDown(StepDownAfterTaper, StepDownEffects):
    @workflow.init
    def __init__(self, inp: StepDownInput) -> None:
        self._input = inp
        self._policy = inp.policy.step_down
        self._state = inp.carried or StepDownState(
            transition_id=inp.transition_id, step_up_id=inp.step_up_id,
            owner_id=inp.monitoring_owner_id)
        self._transition = TransitionRecord(self._state)
        self._recorded = inp.carried is not None
        self._contact: workflow.ChildWorkflowHandle | None = None
        self._current = None  # the planned contact in progress
        self._plan_changed = False  # wakes the wait for the next contact
        self._closing: tuple[CloseStepDown, Actor] | None = None
        self._check_in_answer = None
        self._run_contacts = 0
        self._feedback = ClosureFeedback()  # asked once, at the close of the last run

    @workflow.run
    async def run(self, inp: StepDownInput) -> StepDownState:
        if inp.carried is None:
            self._refuse_unless_stabilized()  # step 1
            await self._record()  # step 2
        if self._state.stage in _ADJUSTABLE:
            await self._taper()  # steps 3–5
            if self._wants_new_run():
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._state.runs += 1
                workflow.continue_as_new(inp.model_copy(update={"carried": self._state}))
        if self._state.outcome is None:
            await self._after_taper()  # step 6
        return await self._close(self._state.outcome or StepDownOutcome.completed)

    # --- steps 1–2 ------------------------------------------------------------------------

    def _refuse_unless_stabilized(self) -> None:
        """The API checks first (a 422); this guards a start that bypassed it."""
        stabilization = self._input.stabilization
        missing = missing_criteria(self._policy.stabilization_criteria, stabilization.confirmed,
                                   stabilization.overrides)
        if missing:
            raise ApplicationError(
                "stabilization not shown: confirm or override (with a reason) " + ", ".join(missing),
                {"missing": missing}, type="InvalidAction", non_retryable=True)

    async def _record(self) -> None:
        state, now = self._state, workflow.now()
        state.started_at = state.anchor = now
        state.remaining = planned_contacts(self._policy.taper)
        recorded = await workflow.execute_activity_method(
            StepDownActivities.record_step_down,
            RecordStepDown(input=self._input, taper_dates=taper_dates(now, state.remaining)), **STORE)
        state.person_id, state.team_id, state.owner_id = (
            recorded.person_id, recorded.team_id, recorded.owner_id)
        state.time_zone = recorded.time_zone
        self._recorded = True
        await self._transition.stage(StepDownStage.tapering, "step_down.started", {
            "monitoring_owner_id": state.owner_id, "step_up_id": state.step_up_id,
            "contacts_planned": len(state.remaining),
            "overridden": sorted(self._input.stabilization.overrides)})

    # --- steps 3–5: the taper -------------------------------------------------------------

    def _wants_new_run(self) -> bool:
        return (self._state.outcome is None and bool(self._state.remaining)
                and (self._run_contacts >= CONTACTS_PER_RUN
                     or workflow.info().is_continue_as_new_suggested()))

    def _held_now(self) -> bool:
        return (self._state.re_escalation_id is not None or self._state.paused_until is not None
                or self._closing is not None)

    async def _taper(self) -> None:
        state = self._state
        while state.outcome is None and state.remaining and not self._wants_new_run():
            if await self._held():
                continue
            planned = state.remaining[0]
            window = contact_window(state.anchor, planned)
            state.next_contact_at = window.appointment_at
            start_at = min(window.not_before, window.appointment_at - reminder_lead(self._input.policy))
            self._plan_changed = False
            if await wait_until(lambda: self._plan_changed or self._held_now(), start_at):
                continue  # adjusted, paused or closed: plan the next contact again
            self._current = state.remaining.pop(0)
            result = await self._chase_contact(window)
            self._current = None
            if result.kind == ContactResultKind.cancelled and self._held_now():
                state.remaining.insert(0, planned)  # stopped by a pause: it is planned again
                continue
            state.anchor = window.appointment_at  # the schedule keeps its dates
            self._run_contacts += 1
            await self._counted(result)
            await self._plan_dates()

    async def _held(self) -> bool:
        """A close, a fast-track step-up or a pause holds the taper; True when it held."""
        state = self._state
        if self._closing is not None:
            state.outcome = StepDownOutcome.disengaged
            return True
        if state.re_escalation_id is not None:
            await self._await_re_escalation(StepDownStage.tapering)
            return True
        if state.paused_until is None:
            return False
        until = state.paused_until
        if until > workflow.now():
            if state.stage != StepDownStage.paused:
                await self._transition.stage(StepDownStage.paused, None, {}, next_due_at=until)
            await wait_until(lambda: state.paused_until != until or self._closing is not None
                             or state.re_escalation_id is not None, until)
            return True
        state.anchor = anchor_after_pause(state.anchor, until)
        state.paused_until = None
        await self._transition.stage(StepDownStage.tapering, "step_down.resumed",
                              {"paused_until": until.isoformat()})
        return True

    async def _chase_contact(self, window) -> ContactResult:
        state = self._state
        sequence = len(state.contact_ids) + 1
        contact_id = contact_workflow_id(state.transition_id, sequence)
        spec = taper_contact(
            self._input.policy, contact_id=contact_id, transition_id=state.transition_id,
            sequence=sequence, person_id=state.person_id, team_id=state.team_id,
            owner_id=state.owner_id, time_zone=state.time_zone, not_before=window.not_before,
            appointment_at=window.appointment_at, due_at=window.due_at)
        state.contact_ids.append(contact_id)
        self._contact = await workflow.start_child_workflow(Contact.run, spec, id=contact_id)
        state.active_contact_id = contact_id
        if self._held_now():
            await self._stop_contact()
        try:
            result: ContactResult = await self._contact
        except ChildWorkflowError:
            # The routine itself failed: counted as a miss, and the taper goes on.
            result = ContactResult(contact_id=contact_id, kind=ContactResultKind.ladder_exhausted)
        self._contact = None
        state.active_contact_id = None
        if result.supervisor_task_id is not None:
            await self._transition.adopt_supervisor_task(result.supervisor_task_id)
        return result

    async def _counted(self, result: ContactResult) -> None:
        """A contact the routine had to chase counts as missed, even if the chase reached the
        person: two in a row is the pattern the review is for."""
        state = self._state
        missed = result.kind != ContactResultKind.made or bool(result.ladder_steps_taken)
        if not missed:
            state.contacts_made += 1
            state.consecutive_misses = 0
            return
        state.contacts_missed += 1
        state.consecutive_misses += 1
        if result.kind == ContactResultKind.made:
            state.contacts_made += 1
        if review_due_after_misses(state.consecutive_misses, self._policy.missed_contacts_for_review):
            await self._transition.task(f"review-{result.contact_id}", TaskKind.step_down_review,
                             f"{state.consecutive_misses} taper contacts missed in a row: review "
                             "the plan with the person", owner_id=state.owner_id,
                             role=Role.clinician, due=workflow.now() + self._policy.review_due,
                             priority="urgent")
            await self._transition.event("step_down.review_requested",
                              {"consecutive_misses": state.consecutive_misses})

    # --- staff actions (updates) ----------------------------------------------------------

    def _require_open(self) -> None:
        if self._state.stage == StepDownStage.closed or self._closing is not None:
            raise ApplicationError("this step-down is closed", type="StageConflict")

    @workflow.update
    async def adjust_taper(self, command: AdjustTaper, actor: Actor) -> StepDownState:
        await workflow.wait_condition(lambda: self._recorded)
        state, now = self._state, workflow.now()
        if command.kind == AdjustmentKind.slower:
            state.remaining = slower(state.remaining, by=command.by, current=self._current)
        elif command.kind == AdjustmentKind.faster:
            state.remaining = faster(state.remaining, by=command.by,
                                     keep_at_least=0 if self._current else 1)
        elif command.kind == AdjustmentKind.pause:
            state.paused_until = command.until
            await self._stop_contact()
        else:
            state.anchor = anchor_after_pause(state.anchor, now)
            state.paused_until = None
        state.adjustments.append(Adjustment(kind=command.kind, reason=command.reason, by_id=actor.id,
                                            at=now, contacts_left=len(state.remaining)))
        self._plan_changed = True
        await self._transition.decided("taper_adjustment", command.kind.value, command.reason, actor, detail={
            "by": command.by, "until": command.until.isoformat() if command.until else None,
            "contacts_left": len(state.remaining)})
        await self._plan_dates()
        return state

    @adjust_taper.validator
    def _validate_adjust_taper(self, command: AdjustTaper, actor: Actor) -> None:
        self._require_open()
        if self._state.stage not in _ADJUSTABLE:
            raise ApplicationError(f"the taper cannot be adjusted now (it is {self._state.stage.value})",
                                   type="StageConflict")
        if command.kind == AdjustmentKind.resume and self._state.paused_until is None:
            raise ApplicationError("the taper is not paused", type="StageConflict")
        if command.kind == AdjustmentKind.pause and command.until <= workflow.now():
            raise ApplicationError("until: must be in the future", type="InvalidAction")

    @workflow.update
    async def early_warning(self, command: EarlyWarning, actor: Actor) -> StepDownState:
        await workflow.wait_condition(lambda: self._recorded)
        await self._fast_track(command, source="staff", actor_id=actor.id)
        return self._state

    @early_warning.validator
    def _validate_early_warning(self, command: EarlyWarning, actor: Actor) -> None:
        self._require_open()

    @workflow.update
    async def exit_plan(self, command: ExitPlan, actor: Actor) -> StepDownState:
        self._state.exit_plan = command
        await self._transition.decided(
            "step_down_exit_plan", "signposted", command.note or "exit plan recorded", actor,
            TaskKind.exit_plan, detail={"signposting": command.signposting})
        await self._update_plan(exit_plan=command.model_dump(mode="json"))
        return self._state

    @exit_plan.validator
    def _validate_exit_plan(self, command: ExitPlan, actor: Actor) -> None:
        self._require_open()
        if self._state.stage != StepDownStage.exit_planning or self._state.exit_plan is not None:
            raise ApplicationError("no exit plan is pending on this step-down", type="StageConflict")

    @workflow.update
    async def record_contact(self, command: OutcomeReport, actor: Actor) -> StepDownState:
        await self._contact.signal(Contact.report_outcome, args=[command, actor])
        return self._state

    @record_contact.validator
    def _validate_record_contact(self, command: OutcomeReport, actor: Actor) -> None:
        if self._contact is None:
            raise ApplicationError("no taper contact is in progress", type="StageConflict")

    @workflow.update
    async def complete_task(self, command: CompleteTask, actor: Actor) -> StepDownState:
        if not await task_is_open(self._state.open_tasks, command.task_id):
            raise task_not_open(command.task_id, "step-down")
        self._validate_complete_task(command, actor)  # what the validator could not check yet
        await self._transition.finish_task(command.task_id, "completed", actor.id, command.note)
        return self._state

    @complete_task.validator
    def _validate_complete_task(self, command: CompleteTask, actor: Actor) -> None:
        if not task_may_be_open(self._state.open_tasks, command.task_id):
            raise task_not_open(command.task_id, "step-down")
        kind = self._state.open_tasks.get(command.task_id)
        if kind in ANSWERED_BY_ACTION:
            raise ApplicationError("answer this task with exit-plan, which records the signposting",
                                   type="InvalidAction")

    @workflow.update
    async def reassign(self, command: Reassign, actor: Actor) -> StepDownState:
        await workflow.wait_condition(lambda: self._recorded)
        previous, self._state.owner_id = self._state.owner_id, command.owner_id
        await self._transition.stage(self._state.stage, "transition.reassigned",
                              {"from_owner_id": previous, "to_owner_id": command.owner_id,
                               "reason": command.reason}, actor_id=actor.id, owner_id=command.owner_id)
        await self._update_plan(monitoring_owner_id=command.owner_id)
        return self._state

    @reassign.validator
    def _validate_reassign(self, command: Reassign, actor: Actor) -> None:
        self._require_open()
        if command.owner_id == self._state.owner_id:
            raise ApplicationError("owner_id: already the monitoring owner", type="InvalidAction")

    @workflow.update
    async def close(self, command: CloseStepDown, actor: Actor) -> StepDownState:
        self._closing = (command, actor)
        await self._transition.decided("step_down_close", StepDownOutcome.disengaged.value,
                                       command.reason, actor)
        await self._stop_contact()
        return self._state

    @close.validator
    def _validate_close(self, command: CloseStepDown, actor: Actor) -> None:
        self._require_open()
        if actor.role not in (Role.transition_coordinator, Role.supervisor, Role.clinical_lead):
            raise ApplicationError("only a coordinator, supervisor or clinical lead closes a step-down",
                                   type="Forbidden")

    # --- events from outside (signals) and the query --------------------------------------

    @workflow.signal
    async def person_reply(self, reply: PersonReply) -> None:
        if self._feedback.offer(reply.text):
            return  # the answer to the question asked at closure (no contact runs by then)
        if self._contact is not None:
            await self._contact.signal(Contact.person_reply, reply)
            return
        await workflow.wait_condition(lambda: self._recorded)
        answer = classify_reply(reply.text, opted_out=False)
        if answer.kind in (ReplyKind.help, ReplyKind.opt_in, ReplyKind.opt_out):
            return  # consent keywords are the messaging layer's
        await self._transition.event("person.replied", {"message_id": reply.message_id,
                                             "rating": answer.rating})
        if self._state.awaiting_check_in_reply:
            self._check_in_answer = answer
        elif answer.kind != ReplyKind.yes:
            await self._transition.task(self._transition.key("reply"), TaskKind.read_reply,
                             "The person replied: read it and respond", owner_id=self._state.owner_id,
                             due=workflow.now() + self._policy.supervisor_decision_due)
        if (self._state.stage != StepDownStage.closed
                and rating_is_warning(answer.rating, self._policy.warning_rating_at_or_below)):
            await self._fast_track(EarlyWarning(
                sign=f"rated {answer.rating} of 5 in reply to a check-in",
                severity=self._policy.warning_rating_severity), source="reply", actor_id=None)

    @workflow.signal
    async def re_presented(self, event: RePresentation) -> None:
        """A crisis handoff for the person within the repeat-crisis window (its own record
        activity put it on this timeline): the owner reviews while the step-down is open."""
        await workflow.wait_condition(lambda: self._recorded)
        if event.transition_id in self._state.repeat_crisis_ids:
            return
        self._state.repeat_crisis_ids.append(event.transition_id)
        if self._state.stage != StepDownStage.closed:
            await self._transition.task(
                f"repeat-crisis-{event.transition_id}", TaskKind.re_presentation_review,
                "Crisis presentation during the step-down: review the plan",
                owner_id=self._state.owner_id,
                due=workflow.now() + self._policy.fast_track_task_due, priority="urgent")

    @workflow.query
    def status(self) -> StepDownState:
        return self._state
