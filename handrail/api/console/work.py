"""My work: my open tasks and my team's unowned queue, overdue first, then by due time; each
opened, completed or taken in one click (completing goes through the task's workflow)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from ...store import queries
from ...store.types import utcnow
from ..deps import RowId, SessionDep, TemporalConnectionDep
from ..errors import TemporalUnavailable
from ..routes.tasks import complete_task_for, take_task
from .people import people_of, staff_names
from .web import Viewer, back_to, refusal, render, require, see_other

router = APIRouter()
Reader = Annotated[Viewer, Depends(require("tasks:read"))]
Doer = Annotated[Viewer, Depends(require("tasks:complete"))]
DONE = {"completed": "Task completed.", "taken": "Task taken: it is yours now."}


def _my_work(session, viewer: Viewer):
    now = utcnow()
    mine = queries.list_tasks(session=session, team_ids=viewer.team_ids,
                              mine_staff_id=viewer.staff_id, now=now)
    queue = [t for t in queries.list_tasks(session=session, team_ids=viewer.team_ids, now=now)
             if t.owner_id is None]
    # One list, overdue first and then by due time (no due time last), as the issue asks.
    tasks = sorted(mine + queue, key=lambda t: (not (t.due_at and t.due_at < now),
                                                t.due_at is None, t.due_at or now, t.id))
    return tasks, now


@router.get("/console/work", include_in_schema=False)
def my_work(request: Request, viewer: Reader, session: SessionDep, done: str | None = None,
            error: str | None = None, error_status: int | None = None) -> Response:
    tasks, now = _my_work(session, viewer)
    return render(request, "work.html", viewer, tasks=tasks, now=now,
                  people=people_of(session, (t.transition_id for t in tasks), viewer.team_ids),
                  owners=staff_names(session, (t.owner_id for t in tasks)),
                  done=DONE.get(done or ""), error=error, error_status=error_status)


@router.post("/console/tasks/{task_id}/complete", include_in_schema=False)
async def complete(task_id: RowId, request: Request, viewer: Doer, session: SessionDep,
                   temporal: TemporalConnectionDep) -> Response:
    note = str((await request.form()).get("note") or "")[:2000]
    try:
        await complete_task_for(session=session, temporal=temporal, user=viewer.principal,
                                task_id=task_id, note=note)
    except (HTTPException, RequestValidationError, TemporalUnavailable) as err:
        return _refused(request, viewer, session, err)
    return see_other(await back_to(request), "completed")


@router.post("/console/tasks/{task_id}/take", include_in_schema=False)
async def take(task_id: RowId, request: Request, viewer: Doer, session: SessionDep) -> Response:
    try:
        await run_in_threadpool(take_task, task_id=task_id, request=request, user=viewer.principal,
                                session=session)
    except HTTPException as err:
        return _refused(request, viewer, session, err)
    return see_other(await back_to(request), "taken")


def _refused(request: Request, viewer: Viewer, session, err: Exception) -> Response:
    status_code, reason = refusal(err)
    response = my_work(request, viewer, session, error=reason, error_status=status_code)
    response.status_code = status_code
    return response
