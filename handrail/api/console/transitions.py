"""Transitions: the filtered list, and one transition — its timeline, tasks, messages and the
actions its pathway accepts now, each sent through the API's own action dispatch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlmodel import Session, col, select

from ...domain.handoff import HandoffStage, SupervisorDecisionKind
from ...domain.step_up import StepUpDecisionKind, StepUpReviewKind, StepUpStage
from ...store import queries
from ...store.models import OutboxMessage, Person, Transition
from ...store.types import utcnow
from ..deps import SessionDep, SettingsDep, TemporalConnectionDep, WorkflowId
from ..errors import TemporalUnavailable
from ..routes.transitions import _client_or_none, actions_of, dispatch_action, scoped
from .forms import available_actions, command_body, generic_fields
from .people import staff_names, team_staff, teams_of
from .web import Refused, Viewer, audit_read, refusal, render, require, see_other

router = APIRouter()
Reader = Annotated[Viewer, Depends(require("transitions:read"))]
Actor = Annotated[Viewer, Depends(require("transitions:act"))]
KINDS = ["handoff", "step_up", "step_down", "admission_avoidance"]
STAGES = sorted({s.value for s in HandoffStage} | {s.value for s in StepUpStage})
DONE = {
    "confirm-details": "Details confirmed.", "book": "Booked.", "record-contact": "Contact recorded.",
    "reassign": "Reassigned.", "decide": "Decision recorded.", "close": "Closing.",
    "confirm-proposal": "Proposal answered.", "review": "Review recorded.",
    "completed": "Task completed.", "taken": "Task taken: it is yours now.",
}
Code = Annotated[str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9._-]*$")]


@router.get("/console/transitions", include_in_schema=False)
def transition_list(
    request: Request, viewer: Reader, session: SessionDep,
    kind: Code = None, stage: Code = None, team: Code = None,
    owner: Annotated[str | None, Query(max_length=12)] = None,
    overdue: Annotated[str | None, Query(max_length=3)] = None,
    status: Annotated[str | None, Query(max_length=10, pattern=r"^(open|closed|all)?$")] = None,
) -> Response:
    owner_id = int(owner) if owner and owner.isdigit() else None
    chosen = status or "open"
    rows = queries.list_transitions(
        session=session, team_ids=viewer.team_ids, kind=kind or None, stage=stage or None,
        status=None if chosen == "all" else chosen, owner_id=owner_id, team_code=team or None,
        overdue=True if overdue == "yes" else None, now=utcnow(), limit=200,
    )
    return render(request, "transitions.html", viewer, rows=rows, kinds=KINDS, stages=STAGES,
                  teams=teams_of(session, viewer.team_ids), staff=team_staff(session, viewer.team_ids),
                  chosen={"kind": kind or "", "stage": stage or "", "team": team or "",
                          "owner": owner_id, "overdue": overdue == "yes", "status": chosen})


async def _page(request: Request, viewer: Viewer, session: Session, settings, temporal,
                transition_id: str, **extra: Any) -> Response:
    client = await _client_or_none(temporal)
    try:
        row, state = await scoped(session=session, client=client, user=viewer.principal,
                                  transition_id=transition_id)
    except HTTPException as missing:
        raise Refused(missing.status_code, str(missing.detail)) from None
    now = utcnow()
    if row is None:  # started, not yet recorded: nothing personal to show yet
        return render(request, "transition_pending.html", viewer, transition_id=transition_id)
    detail = queries.get_transition_detail(session=session, transition_id=row.id,
                                           team_ids=viewer.team_ids, now=now)
    if detail is None:
        raise Refused(404, "transition not found")
    audit_read(session, request, viewer, row, now)
    messages = session.exec(select(OutboxMessage).where(OutboxMessage.transition_id == row.id)
                            .order_by(col(OutboxMessage.created_at), col(OutboxMessage.id))).all()
    contact_in_progress = (bool(getattr(state, "active_contact_id", None)) if state is not None
                           else any(c["outcome"] is None for c in detail["contacts"]))
    actions = available_actions(row.id, row.kind, state.stage.value if state else row.stage,
                                row.status, viewer.principal.role.value, contact_in_progress)
    generic = ({} if row.kind in ("handoff", "step_up") else
               {action: generic_fields(actions_of(row.id)[action][1]) for action in actions})
    ui = f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{settings.temporal_namespace}/workflows/{row.id}"
    return render(
        request, "transition.html", viewer, t=detail, state=state, messages=messages,
        actions=actions, temporal_ui=ui, staff=team_staff(session, {row.team_id}),
        open_tasks=[t for t in detail["tasks"] if t["status"] in queries.OPEN_TASKS],
        owners=staff_names(session, (t["owner_id"] for t in detail["tasks"])),
        handoff_decisions=[d.value for d in SupervisorDecisionKind],
        step_up_decisions=[d.value for d in StepUpDecisionKind],
        reviews=[d.value for d in StepUpReviewKind], generic=generic, **extra,
    )


@router.get("/console/transitions/{transition_id}", include_in_schema=False)
async def transition_page(transition_id: WorkflowId, request: Request, viewer: Reader,
                          session: SessionDep, settings: SettingsDep, temporal: TemporalConnectionDep,
                          done: str | None = None) -> Response:
    return await _page(request, viewer, session, settings, temporal, transition_id,
                       done=DONE.get(done or ""))


@router.post("/console/transitions/{transition_id}/actions/{action}", include_in_schema=False)
async def act(transition_id: WorkflowId, action: Annotated[str, Path(max_length=40)],
              request: Request, viewer: Actor, session: SessionDep, settings: SettingsDep,
              temporal: TemporalConnectionDep) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    row = session.get(Transition, transition_id)
    try:
        body = command_body(action, form, transition_id=transition_id,
                            kind=row.kind if row is not None else "handoff",
                            time_zone=_time_zone(session, viewer, transition_id))
        await dispatch_action(session=session, temporal=temporal, user=viewer.principal,
                              transition_id=transition_id, action=action, body=body)
    except Refused as err:
        return await _refused(request, viewer, session, settings, temporal, transition_id,
                              err.status_code, err.reason)
    except (HTTPException, RequestValidationError, TemporalUnavailable) as err:
        status_code, reason = refusal(err)
        if status_code == 404:
            raise Refused(404, reason) from None
        return await _refused(request, viewer, session, settings, temporal, transition_id,
                              status_code, reason)
    back = str(form.get("back") or "")
    if back == "/console/approvals":  # decided from the approvals page: back there
        return see_other(back, action)
    return see_other(f"/console/transitions/{transition_id}", action)


async def _refused(request, viewer, session, settings, temporal, transition_id, status_code, reason):
    response = await _page(request, viewer, session, settings, temporal, transition_id,
                           error=reason, error_status=status_code)
    response.status_code = status_code
    return response


def _time_zone(session: Session, viewer: Viewer, transition_id: str) -> str:
    # Times typed into a form are the person's local times: appointments are with them.
    row = session.get(Transition, transition_id)
    person = session.get(Person, row.person_id) if row and row.team_id in viewer.team_ids else None
    return person.time_zone if person is not None else "Europe/London"
