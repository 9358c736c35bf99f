"""Activities of the step-up: its rows, its slot, and the indicators that may propose one."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from ..domain.ids import STEP_DOWN_PREFIX, step_up_workflow_id
from ..domain.indicators import Observation, crossed_rules
from ..domain.policy import Policy
from ..domain.step_up import StepUpIndicators, StepUpInput, StepUpOrigin, Urgency
from ..domain.tasks import Role
from ..store import capacity, records
from ..store.db import session_scope
from ..store.models import Indicator, StepUpRequest, Team, Transition
from .step_up_contracts import (
    IndicatorNote,
    IndicatorNoted,
    RecordedStepUp,
    RecordStepUp,
    SlotClaim,
    SlotRelease,
    SlotRequest,
    StepUpRequestUpdate,
)

STEP_UP_WORKFLOW = "StepUp"
# A proposal's workflow id comes from the indicator that crossed the threshold, so a retried
# activity reaches the same workflow instead of proposing twice.
_PROPOSAL_NAMESPACE = uuid.UUID("6f1c2a4e-8d0b-4c55-9a51-3e2f5b7d9c10")


# Open transitions that already are intensive support: no step-up is proposed beside them.
INTENSIVE_KINDS = ("step_up", "admission_avoidance")

class StepUpActivities:
    def __init__(self, engine: Engine, *, client: Client | None = None, policy: Policy | None = None,
                 task_queue: str = "handrail") -> None:
        self._engine = engine
        self._client = client  # for proposals: a new transition starts on the current policy
        self._policy = policy
        self._task_queue = task_queue

    @activity.defn
    def record_step_up(self, request: RecordStepUp) -> RecordedStepUp:
        inp = request.input
        with session_scope(self._engine) as session:
            team, person = records.team_and_person(session=session, team_code=inp.team_code,
                                                   person_id=inp.person_id)
            transition = session.get(Transition, inp.transition_id)
            if transition is None:
                clinician_id = inp.requested_by_id or self._clinician_of(session, inp, team.id)
                transition = Transition(
                    id=inp.transition_id, kind="step_up", stage="recorded", person_id=person.id,
                    team_id=team.id, owner_id=clinician_id, clinician_id=clinician_id,
                    event_time=inp.requested_at, policy_version=inp.policy.fingerprint,
                    source=inp.origin.value,
                    # The fast track of a step-down: the two transitions point at each other.
                    follows_step_down_id=(inp.source_transition_id if inp.source_transition_id
                                          and inp.source_transition_id.startswith(STEP_DOWN_PREFIX)
                                          else None),
                    summary={"reason": inp.reason, "urgency": inp.urgency.value,
                             "indicators": inp.indicators.model_dump(mode="json"),
                             "crossed_rules": inp.crossed_rules,
                             "source_transition_id": inp.source_transition_id},
                )
                records.add_transition(
                    session=session, transition=transition, at=inp.requested_at,
                    actor_id=inp.requested_by_id,
                    detail={"origin": inp.origin.value, "urgency": inp.urgency.value,
                            "crossed_rules": inp.crossed_rules})
                session.add(StepUpRequest(
                    transition_id=transition.id, team_id=team.id, person_id=person.id,
                    origin=inp.origin.value, urgency=inp.urgency.value, reason=inp.reason,
                    indicators=inp.indicators.model_dump(mode="json"),
                    requested_by_id=inp.requested_by_id, requested_at=inp.requested_at))
            return RecordedStepUp(person_id=person.id, team_id=team.id, owner_id=transition.owner_id,
                                  clinician_id=transition.clinician_id, time_zone=person.time_zone)

    @staticmethod
    def _clinician_of(session, inp: StepUpInput, team_id: int) -> int | None:
        """A proposal goes to the clinician of the transition that raised it, else the team's."""
        if inp.source_transition_id:
            source = session.get(Transition, inp.source_transition_id)
            if source is not None and source.clinician_id is not None:
                return source.clinician_id
        staff = records.pick_staff(session=session, team_id=team_id, role=Role.clinician.value)
        return staff.id if staff else None

    @activity.defn
    def update_step_up_request(self, update: StepUpRequestUpdate) -> None:
        with session_scope(self._engine) as session:
            row = session.get(StepUpRequest, update.transition_id)
            if row is None:
                raise RuntimeError(f"step-up {update.transition_id} not recorded yet")
            for name, value in update.fields.model_dump(exclude_none=True).items():
                setattr(row, name, value)
            session.add(row)

    @activity.defn
    def claim_step_up_slot(self, request: SlotRequest) -> SlotClaim:
        with session_scope(self._engine) as session:
            claim = capacity.claim_slot(session=session, transition_id=request.transition_id,
                                        at=request.at)
            return SlotClaim(slot_id=claim.slot_id, label=claim.label, claimed_at=claim.claimed_at,
                             waiting_since=claim.waiting_since)

    @activity.defn
    def release_step_up_slot(self, request: SlotRequest) -> SlotRelease:
        with session_scope(self._engine) as session:
            released = capacity.release_slot(session=session, transition_id=request.transition_id,
                                             at=request.at)
            return SlotRelease(slot_id=released.slot_id, handed_to=released.handed_to)

    @activity.defn
    async def note_indicator(self, note: IndicatorNote) -> IndicatorNoted:
        """Record the observation; when the person's indicators now cross a threshold of the
        policy and no step-up or admission-avoidance episode is open for them, propose a
        step-up for their clinician to confirm."""
        step_up = self._policy.step_up if self._policy else None
        rules = step_up.proposal_rules if step_up else []  # no policy: recorded, never proposed
        crossed, team_code = await asyncio.to_thread(self._note_and_evaluate, note, rules)
        if not crossed or team_code is None or self._client is None:
            return IndicatorNoted(crossed_rules=crossed)
        transition_id = step_up_workflow_id(uuid.uuid5(_PROPOSAL_NAMESPACE, note.key))
        proposal = StepUpInput(
            transition_id=transition_id, person_id=note.person_id, team_code=team_code,
            origin=StepUpOrigin.proposed, urgency=Urgency.routine,
            reason="Proposed by Handrail: " + "; ".join(crossed),
            indicators=StepUpIndicators(), requested_by_id=None, requested_at=note.observed_at,
            policy=self._policy, crossed_rules=crossed, source_transition_id=note.transition_id)
        await self._client.start_workflow(
            STEP_UP_WORKFLOW, proposal, id=transition_id, task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        return IndicatorNoted(crossed_rules=crossed, proposed_transition_id=transition_id)

    def _note_and_evaluate(self, note: IndicatorNote, rules) -> tuple[list[str], str | None]:
        longest = max((rule.window for rule in rules), default=timedelta(0))
        with session_scope(self._engine) as session:
            if session.exec(select(Indicator).where(Indicator.key == note.key)).first() is None:
                session.add(Indicator(
                    key=note.key, person_id=note.person_id, team_id=note.team_id, kind=note.kind.value,
                    observed_at=note.observed_at, transition_id=note.transition_id,
                    recorded_by_id=note.recorded_by_id))
                session.flush()
            seen = session.exec(select(Indicator).where(
                Indicator.person_id == note.person_id,
                col(Indicator.observed_at) >= note.observed_at - longest)).all()
            observations = [Observation(kind=row.kind, observed_at=row.observed_at) for row in seen]
            crossed = crossed_rules(rules, observations, now=note.observed_at)
            # Already in intensive support (a step-up, or an admission-avoidance episode with
            # its own thresholds and senior on call): the observation counts, nothing is proposed.
            intensive = session.exec(select(Transition.id).where(
                Transition.person_id == note.person_id,
                col(Transition.kind).in_(INTENSIVE_KINDS), Transition.status == "open")).first()
            if not crossed or intensive is not None:
                return crossed, None
            team = session.get(Team, note.team_id)
            return crossed, team.code if team else None
