"""Ask for a step-up for a person on the team's caseload, and see the team's step-up capacity."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response, status
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from ...domain.ids import requested_step_up_workflow_id
from ...domain.step_up import StepUpIndicators, StepUpInput, StepUpOrigin, Urgency
from ...store.capacity import capacity_board
from ...store.types import utcnow
from ..deps import (
    PolicyDep,
    Principal,
    SessionDep,
    SettingsDep,
    TemporalConnectionDep,
    require,
)
from ..errors import StartRefused
from ..starting import (
    PersonOnCaseloadIn,
    earlier_transitions,
    on_caseload,
    open_transition_of,
    requesting_team,
)

STEP_UP_WORKFLOW = "StepUp"
router = APIRouter(tags=["step-ups"])


class StepUpRequestIn(PersonOnCaseloadIn):
    urgency: Urgency = Urgency.routine
    reason: str = Field(min_length=1, max_length=2000)
    indicators: StepUpIndicators = Field(default_factory=StepUpIndicators)


class StepUpStarted(BaseModel):
    transition_id: str
    status_url: str


@router.post("/api/step-ups", status_code=status.HTTP_202_ACCEPTED, response_model=StepUpStarted,
             responses={200: {"model": StepUpStarted,
                              "description": "A step-up is already open for this person"},
                        409: {"description": "An admission-avoidance episode is open for this person"}})
async def request_step_up(
    request: StepUpRequestIn,
    response: Response,
    user: Annotated[Principal, Depends(require("stepups:create"))],
    session: SessionDep,
    settings: SettingsDep,
    policy: PolicyDep,
    temporal: TemporalConnectionDep,
) -> StepUpStarted:
    team = requesting_team(session=session, team_ids=user.team_ids, code=request.team)
    if not on_caseload(session=session, person_id=request.person_id, team_id=team.id):
        raise StartRefused("person_id", f"not on the caseload of team {team.code}")
    already = open_transition_of(session=session, person_id=request.person_id, kind="step_up")
    if already is not None:
        response.status_code = status.HTTP_200_OK
        return StepUpStarted(transition_id=already, status_url=f"/api/transitions/{already}")
    episode = open_transition_of(session=session, person_id=request.person_id,
                                 kind="admission_avoidance")
    if episode is not None:
        # The most intensive support there is already runs: its senior review decides what
        # comes next (continue, step down into a taper, or admit).
        raise HTTPException(status.HTTP_409_CONFLICT, detail={
            "msg": "an admission-avoidance episode is open for this person: its senior review "
                   "decides what comes next", "transition_id": episode,
            "status_url": f"/api/transitions/{episode}"})
    client = await temporal.client()  # after the input checks: bad input is 422 even now
    earlier = earlier_transitions(session=session, person_id=request.person_id, kind="step_up")
    transition_id = requested_step_up_workflow_id(
        key=settings.handoff_id_key(), person_id=request.person_id, earlier_step_ups=earlier)
    started = StepUpStarted(transition_id=transition_id, status_url=f"/api/transitions/{transition_id}")
    try:
        await client.start_workflow(
            STEP_UP_WORKFLOW,
            StepUpInput(transition_id=transition_id, person_id=request.person_id,
                        team_code=team.code, origin=StepUpOrigin.clinician,
                        urgency=request.urgency, reason=request.reason,
                        indicators=request.indicators, requested_by_id=user.staff_id,
                        requested_at=utcnow(), policy=policy),
            id=transition_id, task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL)
    except WorkflowAlreadyStartedError:  # asked twice before the first one was recorded
        response.status_code = status.HTTP_200_OK
    return started


@router.get("/api/capacity")
def get_capacity(
    user: Annotated[Principal, Depends(require("capacity:read"))],
    session: SessionDep,
) -> list[dict[str, Any]]:
    """Each of the user's teams: its step-up slots and holders, and the waitlist in the order
    it is served (urgent first, then the longest waiting) with how long each has waited."""
    return jsonable_encoder(capacity_board(session=session, team_ids=user.team_ids, now=utcnow()))
