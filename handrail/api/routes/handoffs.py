"""Start a warm handoff from a JSON notification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel

from ...domain.notification import HandoffNotification
from ..deps import (
    PolicyDep,
    Principal,
    SessionDep,
    SettingsDep,
    TemporalConnectionDep,
    require,
)
from ..starting import start_handoff

router = APIRouter(prefix="/api/handoffs", tags=["handoffs"])


class HandoffStarted(BaseModel):
    transition_id: str
    status_url: str


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=HandoffStarted,
    responses={200: {"model": HandoffStarted, "description": "Already started for this encounter"}},
)
async def create_handoff(
    notification: HandoffNotification,
    response: Response,
    _user: Annotated[Principal, Depends(require("handoffs:create"))],
    session: SessionDep,
    settings: SettingsDep,
    policy: PolicyDep,
    temporal: TemporalConnectionDep,
) -> HandoffStarted:
    # Asked for here, after the body validated, so bad input is a 422 even while Temporal is away.
    client = await temporal.client()
    transition_id, started = await start_handoff(
        client=client, settings=settings, policy=policy, notification=notification, session=session
    )
    if not started:
        response.status_code = status.HTTP_200_OK
    return HandoffStarted(transition_id=transition_id, status_url=f"/api/transitions/{transition_id}")
