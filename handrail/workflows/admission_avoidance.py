"""`AdmissionAvoidance`: intensive support at home instead of a bed, for a limited time.

1. The episode is recorded; a senior (clinical lead or on-call senior) decides, with the
   rationale, the documented thresholds that would mean admission, and any dissent with how it
   was resolved. No decision in time: up the escalation ladder.
2. Approved: contacts at the policy's intensity (out-of-hours check-ins where risk peaks), each
   chased by the contact routine; the carer, with the person's consent, is told it started.
3. A senior review on the policy's cadence: continue, step down, end, or admit.
4. A threshold crossed (risk rating, missed contacts in a row, a severe early warning sign)
   goes at once to the senior on call: continue or admit; no answer in time climbs the ladder.
5. Closed "admission avoided" (with the episode's length) or "admitted" (with the reason); the
   carer is told it ended, and the person is asked for their feedback.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from ..activities.admission_avoidance import AvoidanceActivities
    from ..activities.avoidance_contracts import (
        CarerRecord,
        RecordAvoidance,
        RecordedAvoidance,
    )
    from ..activities.contracts import CancelOpenTasks
    from ..activities.records import RecordActivities
    from ..domain.admission_avoidance import (
        AdmissionThresholds,
        AvoidanceDecision,
        AvoidanceDecisionKind,
        AvoidanceInput,
        AvoidanceOutcome,
        AvoidanceReview,
        AvoidanceReviewKind,
        AvoidanceStage,
        AvoidanceState,
        CarerDetails,
        RiskReport,
        WarningFromStepDown,
        WithdrawCarerConsent,
        dissent_unresolved,
        person_rating_is_warning,
        risk_at_or_above,
        warning_is_severe,
    )
    from ..domain.consent import ReplyKind, classify_reply
    from ..domain.contact import DeliveryFailure, OutcomeReport, PersonReply
    from ..domain.handoff import Actor, CompleteTask
    from ..domain.policy import CarerMoment
    from ..domain.step_down import EarlyWarning
    from ..domain.tasks import Role, TaskKind
    from .avoidance_episode import EpisodeContacts, EpisodeEffects
    from .closure_feedback import ClosureFeedback
    from .common import STORE, UNSUBSCRIBED_CODES, task_is_open, task_may_be_open, task_not_open, wait_until
    from .contact import Contact

# Tasks answered by an action of their own, which records the reason.
_ACTION_TASKS = {TaskKind.avoidance_decision.value, TaskKind.avoidance_escalation.value,
                 TaskKind.avoidance_review.value, TaskKind.avoidance_threshold.value}
_RUNNING = (AvoidanceStage.intensive, AvoidanceStage.awaiting_review, AvoidanceStage.threshold_crossed)


@workflow.defn
class AdmissionAvoidance:
    @workflow.init
    def __init__(self, inp: AvoidanceInput) -> None:
        self._input = inp
        self._policy = inp.policy.admission_avoidance
        self._state = AvoidanceState(transition_id=inp.transition_id, requested_at=inp.requested_at)
        self._recorded: RecordedAvoidance | None = None
        self._warnings_heard: set[str] = set()
        self._decision: AvoidanceDecision | None = None
        self._asking: str | None = None  # "review" or "threshold" while a senior is asked
        self._answer: AvoidanceReview | None = None
        self._crossing: str | None = None  # a threshold crossed, not yet answered
        self._ending = False
        self._effects = EpisodeEffects(self)
        self._contacts = EpisodeContacts(self)
        self._feedback = ClosureFeedback()

    @workflow.run
    async def run(self, inp: AvoidanceInput) -> AvoidanceState:
        await self._record()  # step 1
        decision = await self._senior_decision()
        if decision.decision == AvoidanceDecisionKind.admit:
            return await self._close(AvoidanceOutcome.admitted,
                                     f"admission avoidance not approved: {decision.rationale}")
        await self._start_episode()  # step 2
        contacts = asyncio.create_task(self._contacts.run())
        outcome, reason, step_down = await self._watch()  # steps 3 and 4
        self._ending = True
        await self._contacts.stop()
        await workflow.wait_condition(contacts.done)
        contacts.result()
        return await self._close(outcome, reason, step_down=step_down)  # step 5

    # --- steps ----------------------------------------------------------------------------

    async def _record(self) -> None:
        recorded = await workflow.execute_activity_method(
            AvoidanceActivities.record_avoidance, RecordAvoidance(input=self._input), **STORE)
        state = self._state
        state.person_id, state.team_id, state.owner_id = (
            recorded.person_id, recorded.team_id, recorded.owner_id)
        self._recorded = recorded

    async def _senior_decision(self) -> AvoidanceDecision:
        state, policy = self._state, self._policy
        started = workflow.now()
        state.decision_due = due = started + policy.decision_due
        await self._effects.stage(AvoidanceStage.awaiting_decision, "admission_avoidance.requested",
                                  {"decision_due": due.isoformat()}, next_due_at=due)
        await self._effects.task("decision", TaskKind.avoidance_decision,
                                 "Admission avoidance: approve support at home (with the admission "
                                 "thresholds) or admit", role=policy.decision_role, due=due,
                                 priority="urgent")
        await self._senior_ladder(lambda: self._decision is not None, due, started)
        return self._decision

    async def _senior_ladder(self, answered, due: datetime, started: datetime) -> None:
        """Wait for the senior's answer; none in time climbs the ladder, each rung a task and
        every wait measured, then waits for as long as it takes."""
        if await wait_until(answered, due):
            return
        for level, rung in enumerate(self._policy.escalation_ladder, start=1):
            rung_due = workflow.now() + rung.wait
            await self._effects.task(
                f"escalation-{len(self._state.escalations) + 1}", TaskKind.avoidance_escalation,
                f"Admission avoidance decision overdue: decide (escalation level {level})",
                role=rung.role, due=rung_due, priority="urgent")
            await self._effects.escalated(level, rung.role, started)
            if await wait_until(answered, rung_due):
                return
        await wait_until(answered, None)

    async def _start_episode(self) -> None:
        state = self._state
        now = workflow.now()
        state.started_at, state.ends_at = now, now + self._policy.period
        await self._effects.episode(started_at=now)
        await self._effects.stage(AvoidanceStage.intensive, "admission_avoidance.started",
                                  {"ends_at": state.ends_at.isoformat()}, next_due_at=state.ends_at)
        await self._effects.tell_carer(CarerMoment.episode_started)

    async def _watch(self) -> tuple[AvoidanceOutcome, str, bool]:
        """Reviews on the cadence and thresholds at once, until a senior ends the episode."""
        state, policy = self._state, self._policy
        next_review = state.started_at + policy.review_every
        while True:
            await wait_until(lambda: self._crossing is not None, min(next_review, state.ends_at))
            kind = "threshold" if self._crossing is not None else "review"
            answer = await self._ask_senior(kind)
            if answer is None:
                continue  # a review overtaken by a threshold: the threshold is asked now
            if kind == "review":
                next_review = workflow.now() + policy.review_every
            else:
                self._crossing = None
                self._contacts.missed_since_decision.clear()  # the senior has seen those misses
            if answer.decision == AvoidanceReviewKind.admit:
                return AvoidanceOutcome.admitted, answer.reason, False
            if answer.decision != AvoidanceReviewKind.continue_:
                return (AvoidanceOutcome.admission_avoided, answer.reason,
                        answer.decision == AvoidanceReviewKind.step_down)
            if workflow.now() >= state.ends_at:  # continuing past the period is another period
                state.ends_at = workflow.now() + policy.period
            await self._effects.stage(AvoidanceStage.intensive, "admission_avoidance.continued",
                                      {"ends_at": state.ends_at.isoformat()},
                                      next_due_at=min(next_review, state.ends_at))

    async def _ask_senior(self, kind: str) -> AvoidanceReview | None:
        state, policy = self._state, self._policy
        asked = workflow.now()
        self._answer, self._asking = None, kind
        if kind == "threshold":
            due = asked + policy.threshold_decision_due
            await self._effects.stage(AvoidanceStage.threshold_crossed,
                                      "admission_avoidance.threshold_escalated",
                                      {"crossed": self._crossing, "to_role": policy.threshold_role.value},
                                      next_due_at=due)
            await self._effects.task(f"threshold-{len(state.crossings)}", TaskKind.avoidance_threshold,
                                     f"Admission threshold crossed ({self._crossing}): continue at "
                                     "home or admit", role=policy.threshold_role, due=due,
                                     priority="urgent")
        else:
            due = asked + policy.review_due
            await self._effects.stage(AvoidanceStage.awaiting_review, "admission_avoidance.review_due",
                                      {"review": len(state.reviews) + 1}, next_due_at=due)
            await self._effects.task(f"review-{len(state.reviews) + 1}", TaskKind.avoidance_review,
                                     "Review admission avoidance: continue, step down, end or admit",
                                     role=policy.decision_role, due=due)
        overtaken = lambda: kind == "review" and self._crossing is not None  # noqa: E731
        await self._senior_ladder(lambda: self._answer is not None or overtaken(), due, asked)
        self._asking = None
        if self._answer is None:
            await self._effects.finish_tasks({TaskKind.avoidance_review, TaskKind.avoidance_escalation},
                                             "cancelled", None, "a threshold was crossed: asked instead")
        return self._answer

    async def _close(self, outcome: AvoidanceOutcome, reason: str, *, step_down: bool = False
                     ) -> AvoidanceState:
        state, now = self._state, workflow.now()
        state.outcome, state.outcome_reason = outcome, reason
        # The crisis episode runs from the request (the crisis) to its end.
        state.episode_seconds = (now - state.requested_at).total_seconds()
        for workflow_id in [workflow.info().workflow_id, *state.contact_ids]:
            await workflow.execute_activity_method(
                RecordActivities.cancel_open_tasks,
                CancelOpenTasks(workflow_id=workflow_id, at=now,
                                business_status=f"admission avoidance {outcome.value}"), **STORE)
        state.open_tasks.clear()
        await self._effects.episode(ended_at=now, episode_seconds=state.episode_seconds,
                                    outcome=outcome.value, outcome_reason=reason)
        await self._effects.stage(AvoidanceStage.closed, "transition.closed",
                                  {"outcome": outcome.value, "reason": reason,
                                   "episode_seconds": state.episode_seconds},
                                  status="closed", outcome=outcome.value, closed_at=now,
                                  next_due_at=None)
        if step_down:  # the step-down taper starts from the lead's task (StepDown's own route)
            await self._effects.task("start-step-down", TaskKind.start_step_down,
                                     "Start the step-down taper", owner_id=state.owner_id,
                                     role=Role.clinician, due=now + self._policy.review_due)
        if state.started_at is not None:
            await self._effects.tell_carer(CarerMoment.episode_ended)
        await self._effects.carers_told()
        state.feedback_rating = await self._feedback.ask(
            policy=self._input.policy, pathway="admission_avoidance",
            transition_id=state.transition_id, person_id=state.person_id, team_id=state.team_id,
            owner_id=state.owner_id, time_zone=self._recorded.time_zone,
            open_tasks=state.open_tasks)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return state

    # --- staff actions (updates) --------------------------------------------------------

    def _require_senior(self, actor: Actor, what: str) -> None:
        roles = self._policy.decision_roles
        if actor.role not in roles:
            raise ApplicationError(f"only {', '.join(r.value for r in roles)} may {what}",
                                   type="Forbidden")

    def _require_running(self, what: str) -> None:
        if self._state.stage not in _RUNNING or self._ending:
            raise ApplicationError(f"no episode is running to {what} (it is {self._state.stage.value})",
                                   type="StageConflict")

    @workflow.update
    async def decide(self, command: AvoidanceDecision, actor: Actor) -> AvoidanceState:
        state, now = self._state, workflow.now()
        thresholds = command.thresholds or self._input.proposed_thresholds or AdmissionThresholds(
            **self._policy.thresholds.model_dump())
        state.decision, state.decided_at, state.decided_by_id = command.decision, now, actor.id
        state.thresholds, state.dissent = thresholds, command.dissent
        if command.lead_id is not None:
            state.owner_id = command.lead_id
            await self._effects.fields(owner_id=command.lead_id)
        detail = {"thresholds": thresholds.model_dump(mode="json"),
                  "dissent": [d.model_dump(mode="json") for d in command.dissent],
                  "decision_wait_seconds": (now - state.requested_at).total_seconds(),
                  "escalation_level": len(state.escalations)}
        await self._effects.episode(decision=command.decision.value, decided_at=now,
                                    decided_by_id=actor.id, rationale=command.rationale,
                                    thresholds=detail["thresholds"], dissent=detail["dissent"])
        self._decision = command
        await self._effects.decided("admission_avoidance", command.decision.value,
                                    command.rationale, actor, TaskKind.avoidance_decision,
                                    TaskKind.avoidance_escalation, detail=detail)
        return state

    @decide.validator
    def _validate_decide(self, command: AvoidanceDecision, actor: Actor) -> None:
        if self._decision is not None:
            raise ApplicationError("this admission avoidance was already decided", type="StageConflict")
        if self._state.stage != AvoidanceStage.awaiting_decision:
            raise ApplicationError(f"no decision is pending (it is {self._state.stage.value})",
                                   type="StageConflict")
        self._require_senior(actor, "decide admission avoidance")
        unresolved = dissent_unresolved(command.dissent)
        if unresolved:
            raise ApplicationError(f"dissent without a resolution ({', '.join(unresolved)}): "
                                   "record how it was resolved", type="InvalidAction")

    @workflow.update
    async def review(self, command: AvoidanceReview, actor: Actor) -> AvoidanceState:
        kind = self._asking
        self._state.reviews.append(command.decision)
        task_kinds = ((TaskKind.avoidance_threshold,) if kind == "threshold"
                      else (TaskKind.avoidance_review,))
        await self._effects.decided(f"admission_avoidance_{kind}", command.decision.value,
                                    command.reason, actor, *task_kinds,
                                    TaskKind.avoidance_escalation,
                                    detail={"crossed": self._crossing})
        self._answer = command
        return self._state

    @review.validator
    def _validate_review(self, command: AvoidanceReview, actor: Actor) -> None:
        if self._asking is None or self._answer is not None:
            raise ApplicationError("no review or threshold decision is pending", type="StageConflict")
        self._require_senior(actor, "review admission avoidance")
        if self._asking == "threshold" and command.decision not in (
                AvoidanceReviewKind.continue_, AvoidanceReviewKind.admit):
            raise ApplicationError("a crossed threshold is answered continue or admit",
                                   type="InvalidAction")

    @workflow.update
    async def record_contact(self, command: OutcomeReport, actor: Actor) -> AvoidanceState:
        await self._contacts.report(command, actor)
        return self._state

    @record_contact.validator
    def _validate_record_contact(self, command: OutcomeReport, actor: Actor) -> None:
        if self._contacts.active is None:
            raise ApplicationError("no contact is in progress", type="StageConflict")

    @workflow.update
    async def report_risk(self, command: RiskReport, actor: Actor) -> AvoidanceState:
        self._state.latest_risk_rating = command.rating
        await self._effects.event("admission_avoidance.risk_reported", {"rating": command.rating},
                                  actor_id=actor.id)
        if risk_at_or_above(command.rating, self._state.thresholds):
            await self.cross(f"risk rating {command.rating} at or above "
                             f"{self._state.thresholds.risk_rating_at_or_above}")
        return self._state

    @report_risk.validator
    def _validate_report_risk(self, command: RiskReport, actor: Actor) -> None:
        self._require_running("report a risk rating on")

    @workflow.update
    async def early_warning(self, command: EarlyWarning, actor: Actor) -> AvoidanceState:
        await self._effects.event("admission_avoidance.early_warning",
                                  {"severity": command.severity.value}, actor_id=actor.id)
        if warning_is_severe(command.severity, self._state.thresholds):
            await self.cross(f"early warning sign of {command.severity.value} severity")
        return self._state

    @early_warning.validator
    def _validate_early_warning(self, command: EarlyWarning, actor: Actor) -> None:
        self._require_running("record an early warning sign on")

    @workflow.update
    async def record_carer(self, command: CarerDetails, actor: Actor) -> AvoidanceState:
        await self._carer(command, actor)
        return self._state

    @record_carer.validator
    def _validate_record_carer(self, command: CarerDetails, actor: Actor) -> None:
        if self._state.stage == AvoidanceStage.closed:
            raise ApplicationError("this episode is closed", type="StageConflict")

    @workflow.update
    async def withdraw_carer_consent(self, command: WithdrawCarerConsent, actor: Actor) -> AvoidanceState:
        await self._carer(None, actor)
        return self._state

    @withdraw_carer_consent.validator
    def _validate_withdraw(self, command: WithdrawCarerConsent, actor: Actor) -> None:
        pass  # consent can be withdrawn at any time, even after closure

    @workflow.update
    async def complete_task(self, command: CompleteTask, actor: Actor) -> AvoidanceState:
        if not await task_is_open(self._state.open_tasks, command.task_id):
            raise task_not_open(command.task_id, "episode")
        self._validate_complete_task(command, actor)  # what the validator could not check yet
        await self._effects.finish_task(command.task_id, "completed", actor.id, command.note)
        return self._state

    @complete_task.validator
    def _validate_complete_task(self, command: CompleteTask, actor: Actor) -> None:
        if not task_may_be_open(self._state.open_tasks, command.task_id):
            raise task_not_open(command.task_id, "episode")
        kind = self._state.open_tasks.get(command.task_id)
        if kind in _ACTION_TASKS:
            raise ApplicationError("answer this task with its action (decide or review), which "
                                   "records the reason", type="InvalidAction")

    # --- events from outside (signals) and the query --------------------------------------

    @workflow.signal
    async def person_reply(self, reply: PersonReply) -> None:
        await workflow.wait_condition(lambda: self._recorded is not None)
        answer = classify_reply(reply.text, opted_out=False)
        if answer.kind in (ReplyKind.help, ReplyKind.opt_in, ReplyKind.opt_out):
            return  # consent keywords are the messaging layer's
        if self._feedback.offer(reply.text):
            return
        if answer.kind == ReplyKind.rating and self._state.stage in _RUNNING:
            # The person's own 1–5 (higher is better): low is an early warning sign from them.
            await self._effects.event("person.rated", {"rating": answer.rating})
            if person_rating_is_warning(answer.rating, self._policy.person_rating_warning_at_or_below):
                await self.cross(f"the person rated {answer.rating} of 5")
            return
        if self._contacts.active is not None:
            await self._contacts.active.signal(Contact.person_reply, reply)
        elif answer.kind != ReplyKind.yes:
            await self._effects.task(f"reply-{reply.message_id}-{reply.received_at.isoformat()}",
                                     TaskKind.read_reply, "The person replied: read it and respond",
                                     owner_id=self._state.owner_id,
                                     due=workflow.now() + self._policy.review_due)

    @workflow.signal
    async def step_down_warning(self, warning: WarningFromStepDown) -> None:
        """An early warning sign on the person's step-down taper, passed here instead of a
        step-up beside this episode: on the timeline, and a threshold crossed when it is as
        severe as the documented one."""
        await workflow.wait_condition(lambda: self._recorded is not None)
        if warning.key in self._warnings_heard:
            return
        self._warnings_heard.add(warning.key)
        await self._effects.event("admission_avoidance.early_warning",
                                  {"severity": warning.severity.value,
                                   "step_down_id": warning.step_down_id})
        if (self._state.thresholds is not None
                and warning_is_severe(warning.severity, self._state.thresholds)):
            await self.cross(f"early warning sign of {warning.severity.value} severity "
                             "on the step-down")

    @workflow.signal
    async def delivery_failed(self, failure: DeliveryFailure) -> None:
        """A carer's update that Twilio accepted and then could not deliver (the status
        callback): 21610 is the carer's STOP. The contacts take their own failures."""
        if (failure.message_id in self._effects.carer_attempt_ids
                and failure.error_code in UNSUBSCRIBED_CODES):
            await self._effects.carer_unsubscribed(failure.error_code)

    @workflow.query
    def status(self) -> AvoidanceState:
        return self._state

    # --- shared with the episode's helpers -------------------------------------------------

    async def cross(self, reason: str) -> None:
        """A documented threshold crossed: the watch asks the senior on call at once."""
        if self._ending or self._state.stage not in _RUNNING:
            return
        self._state.crossings.append(reason)
        await self._effects.event("admission_avoidance.threshold_crossed", {"crossed": reason})
        if self._crossing is None:
            self._crossing = reason

    async def _carer(self, details: CarerDetails | None, actor: Actor) -> None:
        await workflow.wait_condition(lambda: self._recorded is not None)
        await workflow.execute_activity_method(
            AvoidanceActivities.record_carer,
            CarerRecord(key=self._effects.key("carer"), transition_id=self._state.transition_id,
                        person_id=self._state.person_id, details=details, actor_id=actor.id,
                        at=workflow.now()), **STORE)
