"""Tasks: my list, my team's list, and completing one through the workflow that made it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from ...domain.handoff import CompleteTask
from ...domain.tasks import OPEN_TASK_STATUSES, TaskKind
from ...store import queries, records
from ...store.models import Transition
from ...store.types import utcnow
from ..deps import (
    Principal,
    RowId,
    SessionDep,
    TemporalConnection,
    TemporalConnectionDep,
    client_ip,
    require,
)
from .transitions import actor_of, send_update

router = APIRouter(prefix="/api/tasks", tags=["tasks"])


class TaskView(StrEnum):
    mine = "mine"
    team = "team"


class TaskPublic(BaseModel):
    id: int
    transition_id: str | None
    kind: str
    title: str
    status: str
    business_status: str | None
    priority: str
    team_id: int
    owner_id: int | None
    role: str | None
    not_before: datetime | None
    due_at: datetime | None
    created_at: datetime
    overdue: bool


class TaskCompletion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=2000)


@router.get("", response_model=list[TaskPublic])
def list_tasks(
    user: Annotated[Principal, Depends(require("tasks:read"))],
    session: SessionDep,
    view: TaskView = TaskView.mine,
    overdue: bool = False,
) -> list[TaskPublic]:
    now = utcnow()
    tasks = queries.list_tasks(
        session=session, team_ids=user.team_ids,
        mine_staff_id=user.staff_id if view == TaskView.mine else None,
        overdue=True if overdue else None, now=now,
    )
    return [
        TaskPublic(**task.model_dump(), overdue=bool(task.due_at and task.due_at < now))
        for task in tasks
    ]


@router.post("/{task_id}/complete")
async def complete_task(
    task_id: RowId,
    user: Annotated[Principal, Depends(require("tasks:complete"))],
    session: SessionDep,
    temporal: TemporalConnectionDep,
    completion: TaskCompletion | None = None,
) -> Any:
    return await complete_task_for(session=session, temporal=temporal, user=user, task_id=task_id,
                                   note=(completion or TaskCompletion()).note)


async def complete_task_for(
    *, session: Session, temporal: TemporalConnection, user: Principal, task_id: int, note: str
) -> Any:
    """Completing a task, for the API and the console alike: through the workflow that made it,
    or in the store when no workflow waits on it any more."""
    task = queries.get_task(session=session, task_id=task_id, team_ids=user.team_ids)
    if task is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="task not found")
    if task.status not in OPEN_TASK_STATUSES:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"the task is {task.status}, not open")

    def in_the_store() -> Any:
        return records.complete_unwatched_task(session=session, task_id=task_id,
                                               actor_id=user.staff_id, note=note,
                                               at=utcnow()).model_dump()

    # No workflow waits on a weekly finding, a message no pathway heard, or a task opened after
    # its transition closed (a low feedback score, a reply while the question was open).
    transition = session.get(Transition, task.transition_id) if task.transition_id else None
    closed = transition is not None and transition.status == "closed"
    if task.kind == TaskKind.assurance_finding.value or not task.workflow_id or closed:
        return in_the_store()
    client = await temporal.client()  # after the input checks: bad input is 422 even now
    command = CompleteTask(task_id=task_id, note=note)
    return await send_update(client, task.workflow_id, "complete_task", command, actor_of(user),
                             when_closed=in_the_store)


@router.post("/{task_id}/take", response_model=TaskPublic, responses={403: {}, 404: {}, 409: {}})
def take_task(
    task_id: RowId,
    request: Request,
    user: Annotated[Principal, Depends(require("tasks:complete"))],
    session: SessionDep,
) -> TaskPublic:
    """Take an open task of your team: from the unowned queue, or to cover a colleague's. A task
    meant for a role (e.g. a supervisor's decision) can be taken only by that role."""
    task = queries.get_task(session=session, task_id=task_id, team_ids=user.team_ids)
    if task is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="task not found")
    if task.role is not None and task.role != user.role.value:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"this task is for the {task.role} role, not {user.role.value}")
    if task.owner_id == user.staff_id:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="the task is already yours")
    now = utcnow()
    taken = records.take_task(session=session, task_id=task_id, staff_id=user.staff_id,
                              seen_owner_id=task.owner_id, source=client_ip(request), at=now)
    if taken is None:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail="the task is no longer open, or someone else has just taken it")
    session.commit()
    return TaskPublic(**taken.model_dump(), overdue=bool(taken.due_at and taken.due_at < now))
