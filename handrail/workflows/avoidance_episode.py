"""The admission-avoidance episode's contacts and its effects on the record.

`EpisodeContacts` runs the contacts one after another (each a `Contact` child chased up the
ladder) and notices a miss at the moment it happens (the window passed with no attended
contact, or staff recorded it missed), not when the ladder ends: two misses in a row are a
threshold, and the carer hears of a miss while it is being followed up.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from ..activities.admission_avoidance import AvoidanceActivities
    from ..activities.avoidance_contracts import (
        AvoidanceEpisodeFields,
        AvoidanceEpisodeUpdate,
        CarerRecord,
    )
    from ..activities.contracts import (
        SendChannel,
        SendStatus,
        SendToPerson,
    )
    from ..domain.admission_avoidance import (
        contact_times,
        episode_contact,
        missed_in_a_row,
    )
    from ..domain.contact import ContactOutcome, ContactResult, ContactResultKind, OutcomeReport
    from ..domain.handoff import Actor
    from ..domain.ids import contact_workflow_id
    from ..domain.messaging import render
    from ..domain.policy import CarerMoment
    from ..domain.step_up import Escalation
    from ..domain.tasks import Role
    from .common import STORE, UNSUBSCRIBED_CODES, send_to_person, wait_until
    from .contact import Contact
    from .transition_record import TransitionRecord

if TYPE_CHECKING:
    from .admission_avoidance import AdmissionAvoidance


class EpisodeContacts:
    def __init__(self, episode: AdmissionAvoidance) -> None:
        self._episode = episode
        self.active: workflow.ChildWorkflowHandle | None = None
        self.missed_since_decision: list[bool] = []
        self._reported: ContactOutcome | None = None
        self._due: datetime | None = None
        self._grace = None
        self._last: datetime | None = None
        self._missed_ids: set[str] = set()

    async def run(self) -> None:
        episode = self._episode
        state, policy = episode._state, episode._policy
        while not episode._ending:
            upcoming = [(at, purpose) for at, purpose in contact_times(
                state.started_at, state.ends_at, first_within=policy.first_contact_within,
                every=policy.contact_frequency, check_ins=policy.out_of_hours_check_ins,
                time_zone=episode._recorded.time_zone)
                if at > workflow.now() and (self._last is None or at > self._last)]
            if not upcoming:  # none left in the period: wait for the review to extend or end it
                ends = state.ends_at
                await workflow.wait_condition(lambda ends=ends: episode._ending or state.ends_at != ends)
                continue
            appointment, purpose = upcoming[0]
            self._last = appointment
            await self._chase(appointment, purpose)

    async def stop(self) -> None:
        if self.active is not None:
            await self.active.signal(Contact.stop)

    async def report(self, command: OutcomeReport, actor: Actor) -> None:
        await self.active.signal(Contact.report_outcome, args=[command, actor])
        if command.outcome == ContactOutcome.rescheduled and command.new_appointment_at:
            self._due = command.new_appointment_at + self._grace
        else:
            self._reported = command.outcome

    async def _chase(self, appointment: datetime, purpose: str) -> None:
        episode = self._episode
        state, recorded = episode._state, episode._recorded
        sequence = len(state.contact_ids) + 1
        contact_id = contact_workflow_id(state.transition_id, sequence)
        spec = episode_contact(
            episode._input.policy, contact_id=contact_id, transition_id=state.transition_id,
            sequence=sequence, person_id=recorded.person_id, team_id=recorded.team_id,
            owner_id=state.owner_id, time_zone=recorded.time_zone, appointment_at=appointment,
            purpose=purpose)
        state.contact_ids.append(contact_id)
        self._reported, self._due, self._grace = None, spec.due_at, spec.due_at - spec.appointment_at
        self.active = await workflow.start_child_workflow(Contact.run, spec, id=contact_id)
        state.active_contact_id = contact_id
        if episode._ending:
            await self.active.signal(Contact.stop)
        result = asyncio.create_task(self._result(self.active, contact_id))
        while True:  # until the contact is known attended or missed
            await wait_until(lambda: result.done() or self._reported is not None, self._due)
            reported, self._reported = self._reported, None
            if result.done() or reported in (ContactOutcome.attended, ContactOutcome.cancelled):
                break
            if reported == ContactOutcome.missed or workflow.now() >= self._due:
                await self._missed(contact_id)
                break
        await workflow.wait_condition(result.done)
        outcome: ContactResult = result.result()
        if outcome.kind == ContactResultKind.made and not self._was_missed(contact_id):
            self.missed_since_decision.append(False)
        self.active, state.active_contact_id = None, None
        if outcome.supervisor_task_id is not None:
            await episode._effects.adopt_supervisor_task(outcome.supervisor_task_id)

    @staticmethod
    async def _result(handle: workflow.ChildWorkflowHandle, contact_id: str) -> ContactResult:
        try:
            return await handle
        except ChildWorkflowError:  # the routine failed: the next contact and the reviews go on
            return ContactResult(contact_id=contact_id, kind=ContactResultKind.ladder_exhausted)

    def _was_missed(self, contact_id: str) -> bool:
        return contact_id in self._missed_ids

    async def _missed(self, contact_id: str) -> None:
        episode = self._episode
        state = episode._state
        self._missed_ids.add(contact_id)
        self.missed_since_decision.append(True)
        state.missed_in_a_row = _run_of_misses(self.missed_since_decision)
        await episode._effects.event("admission_avoidance.contact_missed",
                                     {"contact_id": contact_id, "in_a_row": state.missed_in_a_row})
        episode._effects.tell_carer_soon(CarerMoment.contact_missed)
        if missed_in_a_row(self.missed_since_decision, state.thresholds):
            await episode.cross(f"{state.missed_in_a_row} missed contacts in a row")


def _run_of_misses(missed: list[bool]) -> int:
    run = 0
    for was_missed in reversed(missed):
        if not was_missed:
            break
        run += 1
    return run


class EpisodeEffects(TransitionRecord):
    """Everything the episode writes: its transition, tasks and decisions (as every pathway
    does), and its own row and the carer's updates."""

    def __init__(self, episode: AdmissionAvoidance) -> None:
        super().__init__(episode._state)
        self._episode = episode
        self._carer_sends: list[asyncio.Task] = []
        self._carer_count = 0
        self.carer_attempt_ids: set[int] = set()  # a later delivery failure names one of these

    async def episode(self, **fields: object) -> None:
        await workflow.execute_activity_method(
            AvoidanceActivities.update_avoidance_episode,
            AvoidanceEpisodeUpdate(transition_id=self._episode._state.transition_id,
                                   fields=AvoidanceEpisodeFields(**fields)), **STORE)

    async def escalated(self, level: int, role: Role, started: datetime) -> None:
        state, now = self._episode._state, workflow.now()
        waited = (now - started).total_seconds()
        state.escalations.append(Escalation(level=level, role=role.value, at=now, waited_seconds=waited))
        await self.event("admission_avoidance.escalated",
                         {"level": level, "to_role": role.value, "waited_seconds": waited})
        await self.episode(escalation_level=len(state.escalations))

    def tell_carer_soon(self, moment: CarerMoment) -> None:
        """In the background: a carer's update waiting for the morning holds up no contact."""
        self._carer_sends.append(asyncio.create_task(self.tell_carer(moment)))

    async def carers_told(self) -> None:
        await workflow.wait_condition(lambda: all(t.done() for t in self._carer_sends))

    async def tell_carer(self, moment: CarerMoment) -> None:
        """A minimum-necessary update to the named carer; the send itself checks the person's
        consent as it stands now, so nothing goes without it or after it is withdrawn."""
        episode = self._episode
        policy, state = episode._input.policy, episode._state
        carers = policy.carers
        if carers is None or moment not in carers.updates_at:
            return
        zone = episode._recorded.time_zone
        self._carer_count += 1  # before any await: two updates at once get two keys
        step = f"carer-{moment.value}-{self._carer_count}"
        sent = await send_to_person(
            SendToPerson(key=f"{state.transition_id}:{step}", transition_id=state.transition_id,
                         contact_id=None, workflow_id=workflow.info().workflow_id,
                         person_id=state.person_id, channel=SendChannel.sms, step=step[:60],
                         body=render(carers.messages[moment], service=policy.service_name,
                                     phone=policy.service_phone, at=None, time_zone=zone),
                         at=workflow.now(), to_carer=True,
                         frequency_cap=policy.messaging.frequency_cap),
            time_zone=zone, quiet_hours=policy.quiet_hours, interrupted=lambda: False)
        if sent is not None and sent.status == SendStatus.sent:
            state.carer_updates.append(moment.value)
            if sent.attempt_id is not None:
                self.carer_attempt_ids.add(sent.attempt_id)
        elif sent is not None and sent.error_code in UNSUBSCRIBED_CODES:
            await self.carer_unsubscribed(sent.error_code)

    async def carer_unsubscribed(self, error_code: str) -> None:
        """The carer texted STOP (Twilio refuses with 21610): their word withdraws the consent
        to carer updates, recorded as a withdrawal that no staff member made."""
        if not workflow.patched("carer-opt-out"):
            return
        state = self._episode._state
        await workflow.execute_activity_method(
            AvoidanceActivities.record_carer,
            CarerRecord(key=self.key("carer-unsubscribed"), transition_id=state.transition_id,
                        person_id=state.person_id, details=None, actor_id=None, at=workflow.now(),
                        source=f"twilio-{error_code}"), **STORE)
