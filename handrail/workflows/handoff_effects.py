"""How the warm handoff's steps stop and hold, and its side of the store: a mixin of
`PostCrisisHandoff` (workflows/handoff.py), so that its `run` reads as the pathway.

Every step waits through `_until`, which ends at once when staff close the transition, the
hospital puts it on hold (re-admitted, a discharge cancelled) or the pathway beside a side track
has ended. The pathway and its side tracks stop by those flags, each after the store step in
flight, never cancelled mid-activity (SETTLE_BEFORE_CLEARING).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ..activities.contracts import CancelOpenTasks, SendChannel, SendToPerson, TransitionUpdate
    from ..activities.records import RecordActivities
    from ..domain.handoff import Booking, HandoffStage
    from ..domain.messaging import render
    from ..domain.tasks import Role, TaskKind
    from .common import STORE, finish_task, open_task, send_to_person, wait_until
    from .contact import Contact
    from .metrics import escalated


class _Closed(Exception):
    """Staff closed the transition: every step stops where it stands."""


class _Suspended(Exception):
    """The hospital put the handoff on hold (re-admitted, discharge cancelled)."""


class _Stopped(Exception):
    """The pathway ended: the side tracks beside it stop at their next step."""


# Stop the pathway and its side tracks by flag, letting a store step in flight finish, rather
# than by cancelling them: a cancelled `create_task` still committed its task, and when it
# committed after the hold had cleared the open tasks, an urgent task stayed open on a person
# who was back in hospital. Runs begun before this patch keep cancelling (replay).
SETTLE_BEFORE_CLEARING = "settle-before-clearing"
# Longest a stopping pathway may take before it is cancelled after all (a store step that
# keeps failing must not hold the hold itself back).
STOP_GRACE = timedelta(minutes=10)


class HandoffEffects:
    # --- stopping and holding ---------------------------------------------------------------

    async def _until_discharged(self) -> None:
        while self._on_hold():
            stage = self._hold_stage()
            await self._set_stage(stage, f"handoff.{stage.value}", {}, next_due_at=None)
            # Admitted from the ED, or an admission cancelled: the stage follows the hospital.
            await self._until(
                lambda held=stage: not self._on_hold() or self._hold_stage() != held, None)

    def _hold_stage(self) -> HandoffStage:
        return HandoffStage.inpatient_hold if self._where.inpatient else HandoffStage.awaiting_discharge

    def _on_hold(self) -> bool:
        return self._where.on_hold

    async def _suspend(self, pathway: asyncio.Task) -> None:
        """Stop the running pathway where it stands: its contact and its open tasks end.

        Every step checks `_suspending` and stops at its next wait; the store step in flight
        finishes first, so clearing the open tasks below comes after any task it opened."""
        settle = workflow.patched(SETTLE_BEFORE_CLEARING)
        self._suspending = True
        if self._contact is not None:
            await self._contact.signal(Contact.stop)
        if settle:
            try:
                await workflow.wait_condition(pathway.done, timeout=STOP_GRACE)
            except TimeoutError:
                pathway.cancel()
        else:
            pathway.cancel()
        await workflow.wait_condition(pathway.done)
        if not pathway.cancelled() and pathway.exception() is not None:
            error = pathway.exception()
            if not isinstance(error, (_Suspended, _Closed)):
                raise error
        self._suspending = False
        now = workflow.now()
        for workflow_id in [workflow.info().workflow_id, *self._state.contact_ids]:
            await workflow.execute_activity_method(
                RecordActivities.cancel_open_tasks,
                CancelOpenTasks(workflow_id=workflow_id, at=now,
                                business_status="on hold: awaiting discharge"), **STORE)
        self._state.open_tasks.clear()
        self._contact = None
        self._state.active_contact_id = None

    async def _side_track(self, step) -> None:
        """Consent and medication reconciliation run beside the main line and stop with it."""
        try:
            await step()
        except (_Closed, _Suspended, _Stopped, asyncio.CancelledError):
            return

    async def _stop_side_tracks(self, tracks: list[asyncio.Task]) -> None:
        """Stop them at their next step, after the store step in flight (SETTLE_BEFORE_CLEARING)."""
        if workflow.patched(SETTLE_BEFORE_CLEARING):
            self._stopping_tracks = True
            try:
                await workflow.wait_condition(lambda: all(t.done() for t in tracks), timeout=STOP_GRACE)
            except (TimeoutError, asyncio.CancelledError):
                pass  # cancelled below, as before the patch
            finally:
                self._stopping_tracks = False
        for track in tracks:
            track.cancel()

    async def _until(self, condition, deadline: datetime | None) -> bool:
        met = await wait_until(
            lambda: condition() or self._closing is not None or self._suspending
            or self._stopping_tracks, deadline)
        if self._closing is not None:
            raise _Closed()
        if self._suspending:
            raise _Suspended()
        if self._stopping_tracks:
            raise _Stopped()
        return met

    # --- its side of the store --------------------------------------------------------------

    def _key(self, name: str) -> str:
        self._event_count += 1
        return f"{self._state.transition_id}:{name}:{self._event_count}"

    def _episode_suffix(self) -> str:
        return "" if self._episode <= 1 else f"-e{self._episode}"

    def _time_zone(self) -> str:
        return self._recorded.time_zone if self._recorded else self._input.notification.person.time_zone

    async def _task(self, key: str, kind: TaskKind, title: str, *, due: datetime,
                    owner_id: int | None = None, role: Role | None = None,
                    priority: str = "routine") -> int:
        state = self._state
        if self._suspending:
            raise _Suspended()
        if self._stopping_tracks:
            raise _Stopped()
        if owner_id is None and role is None:
            owner_id = state.owner_id
        return await open_task(
            state.open_tasks, key=f"{state.transition_id}:{key}{self._episode_suffix()}",
            transition_id=state.transition_id, team_id=state.team_id, kind=kind, title=title,
            due=due, owner_id=owner_id, role=role, priority=priority)

    async def _finish_task(self, task_id: int, status: str, actor_id: int | None, note: str) -> None:
        await finish_task(self._state.open_tasks, task_id, status, actor_id, note)

    async def _escalate(self, key: str, title: str, was_due: datetime, *,
                        role: Role = Role.supervisor) -> None:
        await self._task(f"escalation-{key}", TaskKind.supervisor_escalation, title,
                         role=role, due=workflow.now() + self._policy.supervisor_decision_due,
                         priority="urgent")
        escalated(key.rstrip("0123456789").rstrip("-"))  # "booking-2" counts as "booking"
        await self._set_stage(self._state.stage, "handoff.escalated",
                              {"what": key, "was_due": was_due.isoformat(), "to_role": role.value})

    async def _send_booking_confirmation(self, booking: Booking) -> None:
        policy, state = self._input.policy, self._state
        body = render(policy.messages.booking_confirmation, service=policy.service_name,
                      phone=policy.service_phone, at=booking.appointment_at,
                      time_zone=self._time_zone())
        # A confirmation still waiting for the morning is dropped if the booking changes.
        await send_to_person(
            SendToPerson(key=self._key("booking-confirmation"), transition_id=state.transition_id,
                         contact_id=None, workflow_id=workflow.info().workflow_id,
                         person_id=state.person_id, channel=SendChannel.sms,
                         step="booking_confirmation", body=body, at=workflow.now(),
                         frequency_cap=policy.messaging.frequency_cap),
            time_zone=self._time_zone(), quiet_hours=policy.quiet_hours,
            interrupted=lambda: self._booking is not booking or self._closing is not None,
            deadline=booking.appointment_at)

    async def _set_fields(self, name: str, value: object) -> None:
        await self._set_stage(self._state.stage, None, {}, **{name: value})

    async def _set_stage(self, stage: HandoffStage, action: str | None, detail: dict, *,
                         actor_id: int | None = None, **fields: object) -> None:
        self._state.stage = stage
        await workflow.execute_activity_method(
            RecordActivities.update_transition,
            TransitionUpdate(transition_id=self._state.transition_id,
                             key=self._key(action or "fields"), at=workflow.now(),
                             action=action or "transition.updated", actor_id=actor_id,
                             detail=detail, fields={"stage": stage.value, **fields}), **STORE)
