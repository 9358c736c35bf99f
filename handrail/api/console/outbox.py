"""The embedded channel's outbox: every message that would have gone out, and a box to type the
person's reply, delivered exactly as POST /api/outbox/{id}/reply delivers it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from ...store import queries
from ..deps import PolicyDep, RowId, SessionDep, TemporalConnectionDep
from ..errors import TemporalUnavailable
from ..routes.outbox import deliver_reply
from .people import people_of
from .web import Refused, Viewer, refusal, render, require, see_other

router = APIRouter()
Reader = Annotated[Viewer, Depends(require("outbox:read"))]
Replier = Annotated[Viewer, Depends(require("outbox:reply"))]
MAX_REPLY = 1000


@router.get("/console/outbox", include_in_schema=False)
def outbox_page(request: Request, viewer: Reader, session: SessionDep, done: str | None = None,
                error: str | None = None, error_status: int | None = None) -> Response:
    messages = queries.list_outbox(session=session, team_ids=viewer.team_ids, limit=200)
    return render(request, "outbox.html", viewer, messages=messages,
                  people=people_of(session, (m.transition_id for m in messages), viewer.team_ids),
                  done="Reply delivered." if done == "replied" else None,
                  error=error, error_status=error_status)


@router.post("/console/outbox/{message_id}/reply", include_in_schema=False)
async def reply(message_id: RowId, request: Request, viewer: Replier, session: SessionDep,
                policy: PolicyDep, temporal: TemporalConnectionDep) -> Response:
    text = str((await request.form()).get("text") or "").strip()
    try:
        if not text or len(text) > MAX_REPLY:
            raise Refused(422, f"text: type the reply (1 to {MAX_REPLY} characters)")
        await deliver_reply(session=session, temporal=temporal, policy=policy,
                            user=viewer.principal, message_id=message_id, text=text)
    except Refused as err:
        status_code, reason = err.status_code, err.reason
    except (HTTPException, RequestValidationError, TemporalUnavailable) as err:
        status_code, reason = refusal(err)
    else:
        return see_other("/console/outbox", "replied")
    if status_code == 404:
        raise Refused(404, reason)
    response = outbox_page(request, viewer, session, error=reason, error_status=status_code)
    response.status_code = status_code
    return response
