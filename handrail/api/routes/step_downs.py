"""Start a step-down taper for a stabilized person on the team's caseload."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from ...domain.handoff import Actor, CompleteTask
from ...domain.ids import STEP_UP_PREFIX, requested_step_down_workflow_id
from ...domain.step_down import ContingencyPlan, Stabilization, StepDownInput
from ...domain.taper import missing_criteria, unknown_criteria
from ...domain.tasks import OPEN_TASK_STATUSES, TaskKind
from ...store.models import Staff, StaffTeam, Task, Transition
from ...store.types import utcnow
from ..deps import (
    MAX_ROW_ID,
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

log = logging.getLogger(__name__)
STEP_DOWN_WORKFLOW = "StepDown"
router = APIRouter(tags=["step-downs"])


class StepDownRequestIn(PersonOnCaseloadIn):
    monitoring_owner_id: int | None = Field(
        default=None, ge=1, le=MAX_ROW_ID,
        description="Who monitors the taper (a member of the team); the requesting clinician "
                    "when not given")
    stabilization: Stabilization = Field(
        description="Each criterion of the policy's stabilization definition confirmed, or "
                    "overridden with a reason")
    contingency: ContingencyPlan
    step_up_id: str | None = Field(default=None, max_length=80, pattern=r"^stepup-[0-9a-f-]{36}$",
                                   description="The step-up this taper follows, if any")


class StepDownStarted(BaseModel):
    transition_id: str
    status_url: str


def _check_stabilization(request: StepDownRequestIn, policy) -> None:
    criteria = policy.step_down.stabilization_criteria
    named = [*request.stabilization.confirmed, *request.stabilization.overrides]
    unknown = unknown_criteria(criteria, named)
    if unknown:
        raise StartRefused("stabilization", f"not criteria of the policy: {', '.join(unknown)}; "
                                            f"known: {', '.join(c.name for c in criteria)}")
    missing = missing_criteria(criteria, request.stabilization.confirmed,
                               request.stabilization.overrides)
    if missing:
        raise StartRefused("stabilization", "not stabilized by the policy's definition: confirm "
                                            "or override with a reason: " + ", ".join(missing))


def _monitoring_owner(session: Session, request: StepDownRequestIn, user: Principal,
                      team_id: int) -> int:
    owner_id = request.monitoring_owner_id or user.staff_id
    member = session.exec(select(Staff.id).join(StaffTeam, StaffTeam.staff_id == Staff.id).where(
        Staff.id == owner_id, StaffTeam.team_id == team_id, Staff.active == True)).first()  # noqa: E712
    if member is None:
        raise StartRefused("monitoring_owner_id", "not an active member of the team")
    return owner_id


def _followed_step_up(session: Session, request: StepDownRequestIn, team_id: int) -> Transition | None:
    if request.step_up_id is None:
        return None
    step_up = session.get(Transition, request.step_up_id)
    if (step_up is None or step_up.kind != "step_up" or step_up.team_id != team_id
            or step_up.person_id != request.person_id):
        raise StartRefused("step_up_id", "not a step-up of this person on this team")
    return step_up


@router.post("/api/step-downs", status_code=status.HTTP_202_ACCEPTED, response_model=StepDownStarted,
             responses={200: {"model": StepDownStarted,
                              "description": "A step-down is already open for this person"}})
async def start_step_down(
    request: StepDownRequestIn,
    response: Response,
    user: Annotated[Principal, Depends(require("stepdowns:create"))],
    session: SessionDep,
    settings: SettingsDep,
    policy: PolicyDep,
    temporal: TemporalConnectionDep,
) -> StepDownStarted:
    team = requesting_team(session=session, team_ids=user.team_ids, code=request.team)
    if not on_caseload(session=session, person_id=request.person_id, team_id=team.id):
        raise StartRefused("person_id", f"not on the caseload of team {team.code}")
    _check_stabilization(request, policy)
    owner_id = _monitoring_owner(session, request, user, team.id)
    step_up = _followed_step_up(session, request, team.id)
    already = open_transition_of(session=session, person_id=request.person_id, kind="step_down")
    if already is not None:
        response.status_code = status.HTTP_200_OK
        return StepDownStarted(transition_id=already, status_url=f"/api/transitions/{already}")
    client = await temporal.client()  # after the input checks: bad input is 422 even now
    earlier = earlier_transitions(session=session, person_id=request.person_id, kind="step_down")
    transition_id = requested_step_down_workflow_id(
        key=settings.handoff_id_key(), person_id=request.person_id, earlier_step_downs=earlier)
    try:
        await client.start_workflow(
            STEP_DOWN_WORKFLOW,
            StepDownInput(transition_id=transition_id, person_id=request.person_id,
                          team_code=team.code, requested_by_id=user.staff_id,
                          requested_at=utcnow(), monitoring_owner_id=owner_id,
                          stabilization=request.stabilization, contingency=request.contingency,
                          step_up_id=step_up.id if step_up else None, policy=policy),
            id=transition_id, task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL)
    except WorkflowAlreadyStartedError:  # asked twice before the first one was recorded
        response.status_code = status.HTTP_200_OK
    if step_up is not None:
        await _close_the_step_ups_hook(session, client, step_up.id, transition_id, user)
    return StepDownStarted(transition_id=transition_id, status_url=f"/api/transitions/{transition_id}")


async def _close_the_step_ups_hook(session: Session, client, step_up_id: str, transition_id: str,
                                   user: Principal) -> None:
    """The step-up waits on its `start_step_down` task: completing it through the step-up's
    own update closes that step-up (a failure leaves the task on the lead's list)."""
    assert step_up_id.startswith(STEP_UP_PREFIX)
    hook = session.exec(select(Task.id).where(
        Task.transition_id == step_up_id, Task.kind == TaskKind.start_step_down.value,
        col(Task.status).in_([s.value for s in OPEN_TASK_STATUSES]))).first()
    if hook is None:
        return
    try:
        await client.get_workflow_handle(step_up_id).execute_update(
            "complete_task", args=[CompleteTask(task_id=hook, note=f"Taper started: {transition_id}"),
                                   Actor(id=user.staff_id, role=user.role, name=user.name)])
    except Exception as err:  # noqa: BLE001 - the step-down has started; the task stays open
        log.warning("could not complete the step-up's start_step_down task: %s", type(err).__name__)
