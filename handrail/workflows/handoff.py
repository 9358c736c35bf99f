"""`PostCrisisHandoff`: the warm handoff after an ED or crisis discharge (DESIGN.md steps 1–7).

How its steps stop and hold, and its writes to the store, are `HandoffEffects`
(workflows/handoff_effects.py); this module is the pathway, its staff actions and its events."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from ..activities.contracts import (
        CancelOpenTasks,
        DecisionRecord,
        PersonDetailsUpdate,
        RecordedHandoff,
        RecordHandoff,
    )
    from ..activities.records import RecordActivities
    from ..domain.consent import ReplyKind, classify_reply
    from ..domain.contact import (
        ContactResult,
        ContactResultKind,
        ContactSpec,
        DeliveryFailure,
        OutcomeReport,
        PersonReply,
        ServiceDetails,
    )
    from ..domain.handoff import (
        Actor,
        Booking,
        CloseTransition,
        CompleteTask,
        ConfirmDetails,
        HandoffInput,
        HandoffOutcome,
        HandoffStage,
        HandoffState,
        Reassign,
        RePresentation,
        SupervisorDecision,
        SupervisorDecisionKind,
    )
    from ..domain.ids import contact_workflow_id
    from ..domain.intake import (
        EncounterEvent,
        EncounterEventKind,
        EncounterWhereabouts,
        apply_encounter_event,
    )
    from ..domain.tasks import Role, TaskKind
    from .closure_feedback import ClosureFeedback
    from .common import STORE, task_is_open, task_may_be_open, task_not_open, tasks_heard_of
    from .contact import Contact
    from .handoff_effects import (
        SETTLE_BEFORE_CLEARING,
        HandoffEffects,
        _Closed,
        _Suspended,
    )


@workflow.defn
class PostCrisisHandoff(HandoffEffects):
    @workflow.init
    def __init__(self, inp: HandoffInput) -> None:
        self._input = inp
        self._policy = inp.policy.handoff
        self._state = HandoffState(transition_id=inp.transition_id)
        self._recorded: RecordedHandoff | None = None
        self._booking: Booking | None = None
        self._decision: SupervisorDecision | None = None
        self._closing: tuple[CloseTransition, Actor | None] | None = None  # None: the hospital
        self._contact: workflow.ChildWorkflowHandle | None = None
        self._consent_task_id: int | None = None
        self._booking_task_id: int | None = None
        self._med_rec_task_id: int | None = None
        self._supervisor_task_id: int | None = None
        self._event_count = 0
        self._episode = 0
        self._where = EncounterWhereabouts(discharged_at=inp.notification.event_time)
        self._encounter_messages: set[str] = set()
        self._suspending = False
        self._stopping_tracks = False
        self._background: list[asyncio.Task] = []
        self._feedback = ClosureFeedback()

    @workflow.run
    async def run(self, inp: HandoffInput) -> HandoffState:
        await self._record_and_assign()  # step 1
        await self._link_re_presentation()
        outcome = HandoffOutcome.closed_by_staff
        try:
            while True:
                await self._until_discharged()  # an ED registration or admission waits here
                pathway = asyncio.create_task(self._pathway())
                # Closing is the pathway's own to handle: it stops its contact and raises.
                await workflow.wait_condition(lambda task=pathway: task.done() or self._on_hold())
                if self._on_hold():
                    await self._suspend(pathway)
                    continue
                outcome = pathway.result()
                break
        except _Closed:
            outcome = HandoffOutcome.closed_by_staff
        await self._close(outcome)
        return self._state

    async def _pathway(self) -> HandoffOutcome:
        """Steps 2–7 from one discharge. A hold (re-admission, a cancelled discharge) cancels
        it; the next discharge runs it again with fresh clocks."""
        self._episode += 1
        await self._start_clocks()
        side_tracks = [
            asyncio.create_task(self._side_track(self._confirm_consent_and_details)),  # step 3
            asyncio.create_task(self._side_track(self._track_medication_reconciliation)),  # step 6
        ]
        try:
            outcome = await self._main_line()
        except (_Closed, _Suspended):
            await self._stop_side_tracks(side_tracks)
            raise
        except BaseException:
            # Cancelled (a stop that outlasted its grace) or evicted from the worker's cache:
            # no workflow call may run here, only the old way of stopping.
            for track in side_tracks:
                track.cancel()
            raise
        await self._stop_side_tracks(side_tracks)
        return outcome

    async def _main_line(self) -> HandoffOutcome:
        while True:
            await self._book_first_contact()  # step 4
            result = await self._chase_first_contact()  # step 5
            if result.kind == ContactResultKind.made:
                await self._watch_for_re_presentation()  # step 7
                return HandoffOutcome.completed
            decided = await self._await_supervisor_decision()
            if decided == SupervisorDecisionKind.close_disengaged:
                return HandoffOutcome.disengaged
            if decided == SupervisorDecisionKind.transfer_care:
                return HandoffOutcome.transferred

    # --- steps ----------------------------------------------------------------------------

    async def _record_and_assign(self) -> None:
        inp, now = self._input, workflow.now()
        recorded = await workflow.execute_activity_method(
            RecordActivities.record_handoff, RecordHandoff(input=inp, received_at=now), **STORE)
        state = self._state
        state.person_id, state.team_id, state.owner_id = (
            recorded.person_id, recorded.team_id, recorded.owner_id)
        state.re_presentation_of = recorded.earlier_transition_ids
        self._recorded = recorded

    async def _start_clocks(self) -> None:
        """Every deadline of the handoff counts from the discharge."""
        state, policy = self._state, self._policy
        discharged = self._where.discharged_at
        assert discharged is not None and self._recorded is not None
        state.discharged_at = discharged
        if not state.details_confirmed:  # counted from the discharge the pathway runs from
            state.consent_due = workflow.now() + policy.consent_confirmation_due
        state.booking_due = discharged + policy.booking_due
        state.first_contact_due = discharged + policy.first_contact_due
        state.medication_reconciliation_due = discharged + policy.medication_reconciliation_due
        state.watch_until = discharged + policy.re_presentation_window
        state.medication_reconciled_at = None
        self._booking = None
        await self._set_stage(HandoffStage.awaiting_booking, "handoff.owner_assigned",
                              {"owner_id": state.owner_id, "discharged_at": discharged.isoformat()},
                              event_time=discharged,
                              consent_due=state.consent_due, booking_due=state.booking_due,
                              first_contact_due=state.first_contact_due,
                              medication_reconciliation_due=state.medication_reconciliation_due,
                              next_due_at=min(state.consent_due, state.booking_due))
        # Step 2: the summary goes to the clinician and the care coordinator, each as a task.
        for role, staff_id in ((Role.clinician, self._recorded.clinician_id),
                               (Role.care_coordinator, self._recorded.care_coordinator_id)):
            await self._task(f"summary-{role.value}", TaskKind.review_crisis_summary,
                             "Review the crisis summary", owner_id=staff_id, role=role,
                             due=state.booking_due)

    async def _confirm_consent_and_details(self) -> None:
        state = self._state
        if state.details_confirmed:
            return  # confirmed in an earlier episode of this handoff
        self._consent_task_id = await self._task(
            "consent", TaskKind.confirm_consent_and_details,
            "Confirm consent and contact details", due=state.consent_due, priority="urgent")
        if not await self._until(lambda: state.details_confirmed, state.consent_due):
            await self._escalate("consent", "Consent and contact details not confirmed in time",
                                 state.consent_due)

    async def _book_first_contact(self) -> None:
        state = self._state
        if self._booking is None:
            self._booking_task_id = await self._task(
                f"book-{len(state.contact_ids) + 1}", TaskKind.book_first_contact,
                "Book the first follow-up contact", due=state.booking_due, priority="urgent")
            if not await self._until(lambda: self._booking is not None, state.booking_due):
                await self._escalate(f"booking-{len(state.contact_ids) + 1}",
                                     "First contact not booked in time", state.booking_due)
            await self._until(lambda: self._booking is not None, None)

    async def _chase_first_contact(self) -> ContactResult:
        booking, state = self._booking, self._state
        assert booking is not None and self._recorded is not None
        sequence = len(state.contact_ids) + 1
        contact_id = contact_workflow_id(state.transition_id, sequence)
        appointment = booking.appointment_at
        spec = ContactSpec(
            contact_id=contact_id, transition_id=state.transition_id, sequence=sequence,
            person_id=self._recorded.person_id, team_id=self._recorded.team_id,
            owner_id=state.owner_id, time_zone=self._time_zone(),
            appointment_at=appointment,
            not_before=appointment - max(self._policy.reminders_before, default=appointment - appointment),
            due_at=appointment + self._policy.outcome_grace,
            reminders_before=self._policy.reminders_before,
            fallback_ladder=self._policy.fallback_ladder,
            quiet_hours=self._input.policy.quiet_hours, messages=self._input.policy.messages,
            service=ServiceDetails(name=self._input.policy.service_name,
                                   phone=self._input.policy.service_phone),
            supervisor_decision_due=self._policy.supervisor_decision_due,
            frequency_cap=self._input.policy.messaging.frequency_cap,
        )
        state.contact_ids.append(contact_id)
        state.active_contact_id = contact_id
        await self._set_stage(HandoffStage.first_contact_scheduled, "contact.started",
                              {"contact_id": contact_id}, next_due_at=spec.due_at)
        self._contact = await workflow.start_child_workflow(Contact.run, spec, id=contact_id)
        if (self._closing is not None or self._suspending) and workflow.patched(SETTLE_BEFORE_CLEARING):
            # Closed or put on hold while the routine was starting: nobody has told it to stop.
            await self._contact.signal(Contact.stop)
        try:
            result: ContactResult = await self._contact
        except ChildWorkflowError:
            # The routine itself failed: a person must not be dropped because code did.
            result = ContactResult(contact_id=contact_id, kind=ContactResultKind.ladder_exhausted)
        self._contact = None
        state.active_contact_id = None
        if self._closing is not None:
            raise _Closed()
        if self._suspending:
            raise _Suspended()
        if result.kind == ContactResultKind.made:
            state.first_contact_at = result.made_at
            await self._set_stage(HandoffStage.monitoring, "handoff.first_contact_made",
                                  {"contact_id": contact_id}, first_contact_at=result.made_at,
                                  next_due_at=None)
        self._supervisor_task_id = result.supervisor_task_id
        return result

    async def _await_supervisor_decision(self) -> SupervisorDecisionKind:
        state = self._state
        due = workflow.now() + self._policy.supervisor_decision_due
        await self._set_stage(HandoffStage.awaiting_supervisor_decision, "handoff.ladder_exhausted",
                              {}, next_due_at=due)
        self._decision = None
        if not await self._until(lambda: self._decision is not None, due):
            await self._escalate(f"decision-{len(state.contact_ids)}",
                                 "Supervisor decision overdue after the fallback ladder", due,
                                 role=Role.clinical_lead)
            await self._until(lambda: self._decision is not None, None)
        decision = self._decision
        assert decision is not None
        if decision.decision == SupervisorDecisionKind.continue_outreach:
            self._booking = None
            state.appointment_at = None
            await self._set_stage(HandoffStage.awaiting_booking, "handoff.outreach_continues", {},
                                  appointment_at=None, next_due_at=state.booking_due)
        return decision.decision

    async def _track_medication_reconciliation(self) -> None:
        state = self._state
        self._med_rec_task_id = await self._task(
            "medication-reconciliation", TaskKind.medication_reconciliation,
            "Reconcile medications after discharge", owner_id=self._recorded.clinician_id,
            role=Role.clinician, due=state.medication_reconciliation_due)
        if not await self._until(lambda: state.medication_reconciled_at is not None,
                                 state.medication_reconciliation_due):
            await self._escalate("medication-reconciliation", "Medication reconciliation overdue",
                                 state.medication_reconciliation_due)

    async def _link_re_presentation(self) -> None:
        """Step 7 from the other side: tell earlier handoffs of this person that they were
        followed by a new crisis presentation inside their watch window."""
        for earlier_id in self._state.re_presentation_of:
            handle = workflow.get_external_workflow_handle(earlier_id)
            try:
                await handle.signal(PostCrisisHandoff.re_presented, RePresentation(
                    transition_id=self._state.transition_id,
                    event_time=self._input.notification.event_time))
            except Exception:  # noqa: BLE001 - a closed earlier handoff is counted from the store
                workflow.logger.info("earlier handoff no longer running; linked in the store only")

    async def _watch_for_re_presentation(self) -> None:
        await self._until(lambda: False, self._state.watch_until)

    async def _close(self, outcome: HandoffOutcome) -> None:
        state = self._state
        if self._contact is not None:
            await self._contact.signal(Contact.stop)
        state.stage = HandoffStage.closed
        state.outcome = outcome
        now = workflow.now()
        reason = {}
        actor_id = None
        if self._closing is not None:
            reason = {"reason": self._closing[0].reason}
            actor_id = self._closing[1].id if self._closing[1] else None
        await workflow.execute_activity_method(
            RecordActivities.cancel_open_tasks,
            CancelOpenTasks(workflow_id=workflow.info().workflow_id, at=now,
                            business_status=f"transition {outcome.value}"), **STORE)
        await self._set_stage(HandoffStage.closed, "transition.closed",
                              {"outcome": outcome.value, **reason}, actor_id=actor_id,
                              status="closed", outcome=outcome.value, closed_at=now, next_due_at=None)
        # A cancelled registration was never a discharge: there is nothing to ask about.
        if not self._where.registration_cancelled and workflow.patched("closure-feedback"):
            state.feedback_rating = await self._feedback.ask(
                policy=self._input.policy, pathway="handoff", transition_id=state.transition_id,
                person_id=state.person_id, team_id=state.team_id, owner_id=state.owner_id,
                time_zone=self._time_zone(), open_tasks=state.open_tasks)
        await workflow.wait_condition(workflow.all_handlers_finished)

    # --- staff actions (updates) --------------------------------------------------------

    def _require_open(self) -> None:
        if self._state.stage == HandoffStage.closed or self._closing is not None:
            raise ApplicationError("this transition is closed", type="StageConflict")

    @workflow.update
    async def confirm_details(self, command: ConfirmDetails, actor: Actor) -> HandoffState:
        await workflow.wait_condition(lambda: self._recorded is not None)
        state = self._state
        await workflow.execute_activity_method(
            RecordActivities.record_person_details,
            PersonDetailsUpdate(transition_id=state.transition_id, person_id=state.person_id,
                                key=self._key("details"), at=workflow.now(), actor_id=actor.id,
                                consent_to_messages=command.consent_to_messages,
                                phone=command.phone, time_zone=command.time_zone), **STORE)
        if command.time_zone:
            self._recorded.time_zone = command.time_zone
        state.details_confirmed = True
        state.consent_to_messages = command.consent_to_messages
        await self._set_fields("details_confirmed_at", workflow.now())
        await tasks_heard_of()
        if self._consent_task_id is not None:
            await self._finish_task(self._consent_task_id, "completed", actor.id, command.note)
        return state

    @confirm_details.validator
    def _validate_confirm_details(self, command: ConfirmDetails, actor: Actor) -> None:
        self._require_open()

    @workflow.update
    async def book(self, command: Booking, actor: Actor) -> HandoffState:
        await workflow.wait_condition(lambda: self._recorded is not None)
        state = self._state
        state.appointment_at = command.appointment_at
        rebooking = self._contact is not None
        if rebooking:
            await self._contact.signal(Contact.reschedule, command.appointment_at)
        self._booking = command
        await self._set_stage(
            state.stage, "contact.rebooked" if rebooking else "contact.booked",
            {"appointment_at": command.appointment_at.isoformat(), "location": command.location,
             "late_reason": command.late_reason}, actor_id=actor.id,
            appointment_at=command.appointment_at)
        await tasks_heard_of()
        if self._booking_task_id is not None:
            await self._finish_task(self._booking_task_id, "completed", actor.id, "booked")
            self._booking_task_id = None
        # Sent beside the update, which answers at once: at night it waits for the morning.
        self._background.append(asyncio.create_task(self._send_booking_confirmation(command)))
        return state

    @book.validator
    def _validate_book(self, command: Booking, actor: Actor) -> None:
        self._require_open()
        state = self._state
        if state.stage in (HandoffStage.monitoring, HandoffStage.awaiting_supervisor_decision,
                           HandoffStage.awaiting_discharge, HandoffStage.inpatient_hold):
            raise ApplicationError(f"nothing to book while the transition is {state.stage.value}",
                                   type="StageConflict")
        if command.appointment_at <= workflow.now():
            raise ApplicationError("appointment_at: must be in the future", type="InvalidAction")
        due = state.first_contact_due
        if due is not None and command.appointment_at > due and not command.late_reason:
            raise ApplicationError(
                f"appointment_at: {command.appointment_at.isoformat()} is after the first-contact "
                f"deadline {due.isoformat()}; give late_reason to book it anyway",
                type="InvalidAction")

    @workflow.update
    async def record_contact(self, command: OutcomeReport, actor: Actor) -> HandoffState:
        await self._contact.signal(Contact.report_outcome, args=[command, actor])
        if command.outcome.value == "rescheduled" and command.new_appointment_at:
            self._state.appointment_at = command.new_appointment_at
        return self._state

    @record_contact.validator
    def _validate_record_contact(self, command: OutcomeReport, actor: Actor) -> None:
        self._require_open()
        if self._contact is None:
            raise ApplicationError("no contact is in progress: book one first", type="StageConflict")
        if command.outcome.value == "rescheduled" and command.new_appointment_at is None:
            raise ApplicationError("new_appointment_at: required when the outcome is rescheduled",
                                   type="InvalidAction")

    @workflow.update
    async def complete_task(self, command: CompleteTask, actor: Actor) -> HandoffState:
        if not await task_is_open(self._state.open_tasks, command.task_id):
            raise task_not_open(command.task_id, "transition")
        self._validate_complete_task(command, actor)  # what the validator could not check yet
        now = workflow.now()
        if command.task_id == self._med_rec_task_id:
            self._state.medication_reconciled_at = now
            await self._set_stage(self._state.stage, "medication.reconciled", {}, actor_id=actor.id,
                                  medication_reconciled_at=now, medication_reconciled_by_id=actor.id)
        await self._finish_task(command.task_id, "completed", actor.id, command.note)
        return self._state

    @complete_task.validator
    def _validate_complete_task(self, command: CompleteTask, actor: Actor) -> None:
        if not task_may_be_open(self._state.open_tasks, command.task_id):
            raise task_not_open(command.task_id, "transition")
        if (command.task_id == self._med_rec_task_id
                and actor.role.value not in self._policy.medication_reconciliation_roles):
            raise ApplicationError(
                f"medication reconciliation can be completed only by "
                f"{', '.join(self._policy.medication_reconciliation_roles)}", type="Forbidden")

    @workflow.update
    async def reassign(self, command: Reassign, actor: Actor) -> HandoffState:
        await workflow.wait_condition(lambda: self._recorded is not None)
        previous = self._state.owner_id
        self._state.owner_id = command.owner_id
        await self._set_stage(self._state.stage, "transition.reassigned",
                              {"from_owner_id": previous, "to_owner_id": command.owner_id,
                               "reason": command.reason}, actor_id=actor.id,
                              owner_id=command.owner_id)
        return self._state

    @reassign.validator
    def _validate_reassign(self, command: Reassign, actor: Actor) -> None:
        self._require_open()
        if command.owner_id == self._state.owner_id:
            raise ApplicationError("owner_id: already the owner", type="InvalidAction")

    @workflow.update
    async def decide(self, command: SupervisorDecision, actor: Actor) -> HandoffState:
        await workflow.execute_activity_method(
            RecordActivities.record_decision,
            DecisionRecord(key=self._key("decision"), transition_id=self._state.transition_id,
                           kind="handoff_ladder_exhausted", decision=command.decision.value,
                           reason=command.reason, decided_by_id=actor.id,
                           decided_at=workflow.now()), **STORE)
        if self._supervisor_task_id is not None:
            await self._finish_task(self._supervisor_task_id, "completed", actor.id, command.reason)
        self._decision = command
        return self._state

    @decide.validator
    def _validate_decide(self, command: SupervisorDecision, actor: Actor) -> None:
        self._require_open()
        if self._state.stage != HandoffStage.awaiting_supervisor_decision or self._decision is not None:
            raise ApplicationError("no supervisor decision is pending on this transition",
                                   type="StageConflict")
        if actor.role not in (Role.supervisor, Role.clinical_lead):
            raise ApplicationError("only a supervisor or clinical lead decides", type="Forbidden")

    @workflow.update
    async def close(self, command: CloseTransition, actor: Actor) -> HandoffState:
        self._closing = (command, actor)
        if self._contact is not None:
            await self._contact.signal(Contact.stop)
        return self._state

    @close.validator
    def _validate_close(self, command: CloseTransition, actor: Actor) -> None:
        self._require_open()

    # --- events from outside (signals) and the query ------------------------------------

    @workflow.signal
    async def person_reply(self, reply: PersonReply) -> None:
        if self._feedback.offer(reply.text):
            return  # the answer to the question asked at closure (no contact runs by then)
        starting = self._state.stage in (HandoffStage.awaiting_booking,
                                         HandoffStage.first_contact_scheduled)
        if self._contact is None and self._booking is not None and starting:
            # Booked but its contact routine not yet started: the reply belongs to it.
            await workflow.wait_condition(
                lambda: self._contact is not None or self._booking is None
                or self._closing is not None or self._on_hold())
        if self._contact is not None:
            await self._contact.signal(Contact.person_reply, reply)
            return
        await workflow.wait_condition(lambda: self._recorded is not None)
        await self._set_stage(self._state.stage, "person.replied", {"message_id": reply.message_id})
        if classify_reply(reply.text, opted_out=False).kind not in (ReplyKind.yes, ReplyKind.help,
                                                                    ReplyKind.opt_in, ReplyKind.opt_out):
            await self._task(self._key("reply"), TaskKind.read_reply,
                             "The person replied: read it and respond", due=workflow.now()
                             + self._policy.supervisor_decision_due)

    @workflow.signal
    async def encounter_event(self, event: EncounterEvent) -> None:
        """A hospital event for this encounter (HL7 ADT, FHIR): each message applied once."""
        if event.message_id in self._encounter_messages:
            return
        self._encounter_messages.add(event.message_id)
        pathway_running = self._episode > 0 and not self._on_hold()
        self._where = apply_encounter_event(self._where, event, pathway_started=self._episode > 0)
        if self._where.registration_cancelled and self._closing is None:
            self._closing = (CloseTransition(reason=f"registration cancelled: {event.reason}"), None)
        await workflow.wait_condition(lambda: self._recorded is not None)
        if event.kind == EncounterEventKind.update:
            person = event.notification.person
            await workflow.execute_activity_method(
                RecordActivities.record_person_details,
                PersonDetailsUpdate(transition_id=self._state.transition_id,
                                    person_id=self._state.person_id, key=self._key("demographics"),
                                    at=workflow.now(), actor_id=None, consent_to_messages=None,
                                    phone=person.phone, time_zone=person.time_zone), **STORE)
        await self._set_stage(self._state.stage, f"encounter.{event.kind.value}",
                              {"trigger": event.trigger, "reason": event.reason,
                               "occurred_at": event.occurred_at.isoformat(),
                               "pathway_was_running": pathway_running})

    @workflow.signal
    async def delivery_failed(self, failure: DeliveryFailure) -> None:
        if self._contact is not None:
            await self._contact.signal(Contact.delivery_failed, failure)

    @workflow.signal
    async def re_presented(self, event: RePresentation) -> None:
        await workflow.wait_condition(lambda: self._recorded is not None)
        if any(r.transition_id == event.transition_id for r in self._state.re_presentations):
            return
        self._state.re_presentations.append(event)
        await self._set_stage(self._state.stage, "handoff.re_presentation",
                              {"new_transition_id": event.transition_id,
                               "event_time": event.event_time.isoformat(),
                               "count": len(self._state.re_presentations)})
        await self._task(f"re-presentation-{event.transition_id}", TaskKind.re_presentation_review,
                         "Re-presented in crisis: review the plan",
                         due=workflow.now() + self._policy.consent_confirmation_due, priority="urgent")

    @workflow.query
    def status(self) -> HandoffState:
        return self._state

    # --- effects ------------------------------------------------------------------------
