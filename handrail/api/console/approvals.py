"""Approvals (the step-up huddle): pending step-up decisions with their indicators and how long
each has waited, the teams' step-up capacity at a glance, and approve / modify / decline with a
reason — sent as the step-up's `decide` action through the API's dispatch (transitions.act)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import col, select

from ...domain.step_up import StepUpDecisionKind
from ...store.capacity import capacity_board
from ...store.models import Person, StepUpRequest, Transition
from ...store.queries import display_name
from ...store.types import utcnow
from ..deps import SessionDep
from .people import team_staff
from .web import Viewer, render, require

router = APIRouter()
Senior = Annotated[Viewer, Depends(require("approvals:read"))]
DONE = {"decide": "Decision recorded."}


@router.get("/console/approvals", include_in_schema=False)
def approvals_page(request: Request, viewer: Senior, session: SessionDep,
                   done: str | None = None) -> Response:
    now = utcnow()
    rows = session.exec(
        select(StepUpRequest, Transition, Person)
        .join(Transition, col(Transition.id) == StepUpRequest.transition_id)
        .join(Person, col(Person.id) == StepUpRequest.person_id)
        .where(col(StepUpRequest.team_id).in_(list(viewer.team_ids)),
               col(StepUpRequest.decision).is_(None), Transition.status == "open",
               Transition.stage == "awaiting_decision")
        .order_by(col(StepUpRequest.urgency).desc(), col(StepUpRequest.requested_at))
    ).all()
    pending = [{
        "id": transition.id, "person": display_name(person), "urgency": request_row.urgency,
        "reason": request_row.reason, "origin": request_row.origin,
        "indicators": {k: v for k, v in request_row.indicators.items() if v},
        "requested_at": request_row.requested_at,
        "waited_seconds": (now - request_row.requested_at).total_seconds(),
        "escalation_level": request_row.escalation_level, "due": transition.next_due_at,
    } for request_row, transition, person in rows]
    return render(request, "approvals.html", viewer, pending=pending,
                  board=capacity_board(session=session, team_ids=viewer.team_ids, now=now),
                  staff=team_staff(session, viewer.team_ids),
                  decisions=[d.value for d in StepUpDecisionKind], done=DONE.get(done or ""))
