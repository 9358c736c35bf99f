"""Activities of the step-down taper: its rows, and the fast-track step-up it may start."""

from __future__ import annotations

import asyncio
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from ..domain.admission_avoidance import WarningFromStepDown
from ..domain.policy import Policy, WarningSeverity
from ..domain.step_down import StepDownInput
from ..domain.step_up import StepUpIndicators, StepUpInput, StepUpOrigin, Urgency
from ..store import records
from ..store.db import session_scope
from ..store.models import StepDownPlan, StepUpRequest, Transition

STEP_UP_WORKFLOW = "StepUp"
EPISODE_WARNING_SIGNAL = "step_down_warning"  # AdmissionAvoidance.step_down_warning


class RecordStepDown(BaseModel):
    input: StepDownInput
    taper_dates: list[datetime]


class RecordedStepDown(BaseModel):
    person_id: int
    team_id: int
    owner_id: int | None
    time_zone: str


class StepDownPlanFields(BaseModel):
    """Fields of the step-down's own row; None leaves a field as it is."""

    model_config = {"extra": "forbid"}
    monitoring_owner_id: int | None = None
    re_escalation_id: str | None = None
    taper_dates: list[datetime] | None = None
    adjustments: int | None = None
    exit_plan: dict | None = None
    discharged_at: datetime | None = None
    outcome: str | None = None


class StepDownPlanUpdate(BaseModel):
    transition_id: str
    fields: StepDownPlanFields


class FastTrack(BaseModel):
    """Start the step-up of an early warning sign; `step_up_id` is derived, so a retry
    reaches the same workflow."""

    step_up_id: str
    step_down_id: str
    person_id: int
    team_code: str
    sign: str
    severity: str
    reported_by_id: int | None
    at: datetime
    policy: Policy  # the step-down's own: a running transition keeps the policy it started with


class StepDownActivities:
    def __init__(self, engine: Engine, *, client: Client | None = None,
                 task_queue: str = "handrail") -> None:
        self._engine = engine
        self._client = client
        self._task_queue = task_queue

    @activity.defn
    def record_step_down(self, request: RecordStepDown) -> RecordedStepDown:
        inp = request.input
        with session_scope(self._engine) as session:
            team, person = records.team_and_person(session=session, team_code=inp.team_code,
                                                   person_id=inp.person_id)
            transition = session.get(Transition, inp.transition_id)
            if transition is None:
                # event_time is the step-down's start: what the repeat-crisis checks count from.
                transition = Transition(
                    id=inp.transition_id, kind="step_down", stage="recorded", person_id=person.id,
                    team_id=team.id, owner_id=inp.monitoring_owner_id,
                    clinician_id=inp.requested_by_id, event_time=inp.requested_at,
                    policy_version=inp.policy.fingerprint, source="clinician",
                    summary={"step_up_id": inp.step_up_id,
                             "contingency": inp.contingency.model_dump(mode="json")})
                records.add_transition(
                    session=session, transition=transition, at=inp.requested_at,
                    actor_id=inp.requested_by_id,
                    detail={"step_up_id": inp.step_up_id, "overrides": inp.stabilization.overrides})
                session.add(StepDownPlan(
                    transition_id=transition.id, team_id=team.id, person_id=person.id,
                    monitoring_owner_id=inp.monitoring_owner_id, step_up_id=inp.step_up_id,
                    stabilization=inp.stabilization.model_dump(mode="json"),
                    contingency=inp.contingency.model_dump(mode="json"),
                    taper_dates=[d.isoformat() for d in request.taper_dates],
                    started_at=inp.requested_at))
                if inp.step_up_id and session.get(Transition, inp.step_up_id) is not None:
                    records.append_event(
                        session=session, key=f"{inp.transition_id}:follows", at=inp.requested_at,
                        action="step_up.stepped_down_to", transition_id=inp.step_up_id,
                        person_id=person.id, actor_id=inp.requested_by_id,
                        detail={"step_down_id": inp.transition_id})
            return RecordedStepDown(person_id=person.id, team_id=team.id,
                                    owner_id=transition.owner_id, time_zone=person.time_zone)

    @activity.defn
    def update_step_down_plan(self, update: StepDownPlanUpdate) -> None:
        with session_scope(self._engine) as session:
            row = session.get(StepDownPlan, update.transition_id)
            if row is None:
                raise RuntimeError(f"step-down {update.transition_id} not recorded yet")
            for name, value in update.fields.model_dump(exclude_none=True, mode="json").items():
                if name == "discharged_at":
                    value = update.fields.discharged_at
                setattr(row, name, value)
            session.add(row)

    @activity.defn
    async def start_fast_track_step_up(self, request: FastTrack) -> str:
        """The step-up starts at once, straight to the urgent huddle; it records its own link
        back to this step-down (`source_transition_id`)."""
        if self._client is None:
            raise RuntimeError("no Temporal client: the worker must pass one")
        inp = StepUpInput(
            transition_id=request.step_up_id, person_id=request.person_id,
            team_code=request.team_code, origin=StepUpOrigin.early_warning,
            urgency=Urgency.urgent,
            reason=f"Early warning sign during the step-down ({request.severity}): {request.sign}",
            indicators=StepUpIndicators(risk_indicators=[request.sign[:200]]),
            requested_by_id=request.reported_by_id, requested_at=request.at,
            policy=request.policy, source_transition_id=request.step_down_id)
        await self._client.start_workflow(
            STEP_UP_WORKFLOW, inp, id=request.step_up_id, task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        return request.step_up_id

    @activity.defn
    async def pass_warning_to_episode(self, request: FastTrack) -> str | None:
        """An admission-avoidance episode open for the person takes a fast-track warning
        instead of a step-up beside it: the most intensive support there is already runs, and
        its senior on call decides (the warning crosses its threshold when severe enough).
        The episode's id, or None when there is none and the step-up should start."""
        episode_id = await asyncio.to_thread(self._open_episode, request.person_id)
        if episode_id is None:
            return None
        if self._client is None:
            raise RuntimeError("no Temporal client: the worker must pass one")
        try:
            await self._client.get_workflow_handle(episode_id).signal(
                EPISODE_WARNING_SIGNAL, WarningFromStepDown(
                    key=request.step_up_id, step_down_id=request.step_down_id,
                    severity=WarningSeverity(request.severity)))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return None  # the episode ended a moment ago: the step-up starts as ever
        return episode_id

    def _open_episode(self, person_id: int) -> str | None:
        with session_scope(self._engine) as session:
            return session.exec(select(Transition.id).where(
                Transition.person_id == person_id, Transition.kind == "admission_avoidance",
                Transition.status == "open")).first()

    @activity.defn
    def step_up_decision(self, step_up_id: str) -> str | None:
        """The huddle's decision on the fast-track step-up, once it has one (from its row,
        which the step-up writes when it decides)."""
        with session_scope(self._engine) as session:
            row = session.get(StepUpRequest, step_up_id)
            return row.decision if row is not None else None
