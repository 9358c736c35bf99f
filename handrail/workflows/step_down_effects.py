"""The step-down's side of the store and its fast track: tasks, timeline, its plan row, and the
step-up an early warning sign starts. A mixin of `StepDown`, so its `run` reads as the pathway.

The fast-track step-up is started by an activity with the client, not as a child workflow: the
taper continues as new runs while a step-up may outlive them, and a child's handle would not
survive the new run. The taper waits for the huddle's decision by re-reading the step-up's row
on a timer (deterministic: each reading is an activity result in the history).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ..activities.contracts import CancelOpenTasks
    from ..activities.records import RecordActivities
    from ..activities.step_down import FastTrack, StepDownActivities, StepDownPlanFields, StepDownPlanUpdate
    from ..domain.ids import fast_track_step_up_id
    from ..domain.step_down import (
        EarlyWarning,
        StepDownOutcome,
        StepDownStage,
        WarningRecord,
    )
    from ..domain.taper import anchor_after_pause, at_or_above, taper_dates
    from ..domain.tasks import Role, TaskKind
    from .common import STORE, wait_until
    from .contact import Contact

_APPROVED = {"approve", "modify"}
# An admission-avoidance episode open for the person takes a fast-track warning, not a step-up.
WARNING_TO_EPISODE = "warning-to-open-episode"


class StepDownEffects:
    # --- step 5: the fast track -----------------------------------------------------------

    async def _fast_track(self, warning: EarlyWarning, *, source: str, actor_id: int | None) -> None:
        """An urgent task for the owner at once; at or above the policy's severity, a step-up
        that starts now and holds the taper until its huddle has decided."""
        state, policy, now = self._state, self._policy, workflow.now()
        number = len(state.warnings) + 1
        starts_step_up = (at_or_above(warning.severity, policy.fast_track_severity)
                          and state.re_escalation_id is None)
        record = WarningRecord(sign=warning.sign, severity=warning.severity, at=now, source=source)
        state.warnings.append(record)
        await self._transition.stage(state.stage, "step_down.early_warning",
                              {"sign": warning.sign, "severity": warning.severity.value,
                               "source": source, "fast_track": starts_step_up, "note": warning.note},
                              actor_id=actor_id)
        await self._transition.task(f"warning-{number}", TaskKind.early_warning,
                         f"Early warning sign ({warning.severity.value}): act on the contingency plan",
                         owner_id=state.owner_id, role=Role.clinician,
                         due=now + policy.fast_track_task_due, priority="urgent")
        if not starts_step_up:
            return
        step_up_id = fast_track_step_up_id(state.transition_id, number)
        fast_track = FastTrack(step_up_id=step_up_id, step_down_id=state.transition_id,
                               person_id=state.person_id, team_code=self._input.team_code,
                               sign=warning.sign, severity=warning.severity.value,
                               reported_by_id=actor_id, at=now, policy=self._input.policy)
        if workflow.patched(WARNING_TO_EPISODE):
            episode_id = await workflow.execute_activity_method(
                StepDownActivities.pass_warning_to_episode, fast_track, **STORE)
            if episode_id is not None:  # its senior on call decides; the taper goes on
                await self._transition.event("step_down.warning_passed_to_episode",
                                             {"episode_id": episode_id})
                return
        record.step_up_id = step_up_id
        state.re_escalation_id = step_up_id
        state.re_escalation_ids.append(step_up_id)
        self._plan_changed = True
        await self._stop_contact()  # the taper holds until the huddle decides
        await workflow.execute_activity_method(
            StepDownActivities.start_fast_track_step_up, fast_track, **STORE)
        await self._update_plan(re_escalation_id=step_up_id)
        await self._transition.event("step_down.re_escalated", {"step_up_id": step_up_id})

    async def _await_re_escalation(self, resume_stage: StepDownStage) -> None:
        """Held until the fast-track step-up is decided: approved, the step-down ends
        re-escalated; declined, the taper (or the check-ins) carry on from now."""
        state = self._state
        step_up_id = state.re_escalation_id
        await self._transition.stage(StepDownStage.awaiting_re_escalation, None, {}, next_due_at=None)
        while True:
            decision = await workflow.execute_activity_method(
                StepDownActivities.step_up_decision, step_up_id, **STORE)
            if decision is not None or self._closing is not None:
                break
            await wait_until(lambda: self._closing is not None,
                             workflow.now() + self._policy.re_escalation_recheck)
        if decision in _APPROVED:
            state.outcome = StepDownOutcome.re_escalated
            await self._transition.event("step_down.re_escalation_approved",
                              {"step_up_id": step_up_id, "decision": decision})
            return
        state.re_escalation_id = None
        state.anchor = anchor_after_pause(state.anchor, workflow.now())
        await self._transition.stage(resume_stage, "step_down.re_escalation_declined",
                              {"step_up_id": step_up_id, "decision": decision})

    async def _stop_contact(self) -> None:
        """Stop the contact in progress; one that finished a moment ago needs no stopping."""
        if self._contact is None:
            return
        try:
            await self._contact.signal(Contact.stop)
        except Exception:  # noqa: BLE001 - the child closed before the signal reached it
            workflow.logger.info("contact already finished; nothing to stop")

    # --- closing ----------------------------------------------------------------------------

    async def _close(self, outcome: StepDownOutcome):
        state, now = self._state, workflow.now()
        state.outcome = outcome
        for workflow_id in [workflow.info().workflow_id, *state.contact_ids]:
            await workflow.execute_activity_method(
                RecordActivities.cancel_open_tasks,
                CancelOpenTasks(workflow_id=workflow_id, at=now,
                                business_status=f"step-down {outcome.value}"), **STORE)
        state.open_tasks.clear()
        await self._update_plan(outcome=outcome.value)
        await self._transition.stage(StepDownStage.closed, "transition.closed",
                              {"outcome": outcome.value, "re_escalation_ids": state.re_escalation_ids},
                              status="closed", outcome=outcome.value, closed_at=now, next_due_at=None)
        # Only the last run closes, after the check-ins: this is the taper's real end.
        if workflow.patched("closure-feedback"):
            state.feedback_rating = await self._feedback.ask(
                policy=self._input.policy, pathway="step_down", transition_id=state.transition_id,
                person_id=state.person_id, team_id=state.team_id, owner_id=state.owner_id,
                time_zone=state.time_zone, open_tasks=state.open_tasks)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return state

    # --- effects ----------------------------------------------------------------------------

    async def _update_plan(self, **fields: object) -> None:
        await workflow.execute_activity_method(
            StepDownActivities.update_step_down_plan,
            StepDownPlanUpdate(transition_id=self._state.transition_id,
                               fields=StepDownPlanFields(**fields)), **STORE)

    async def _plan_dates(self) -> None:
        """The taper as it now stands, on its row: what the console and the person see."""
        state = self._state
        await self._update_plan(taper_dates=taper_dates(state.anchor, state.remaining),
                                adjustments=len(state.adjustments))
        await self._transition.fields(next_due_at=(taper_dates(state.anchor, state.remaining) or [None])[0])
