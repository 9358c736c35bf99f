"""Notifications from hospitals: HL7 v2 ADT answered with an ACK, FHIR R4 answered with JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import AwareDatetime, BaseModel

from ...intake import receipts
from ...intake.dispatch import receive_fhir, receive_hl7
from ...intake.events import IntakeError
from ..deps import PolicyDep, Principal, SessionDep, SettingsDep, TemporalConnectionDep, client_ip, require

router = APIRouter(prefix="/api/intake", tags=["intake"])

HL7_MEDIA_TYPE = "x-application/hl7-v2+er7"
MAX_BODY_BYTES = 1_000_000


class IntakeAccepted(BaseModel):
    outcome: str  # started | existing | signalled | ignored
    event: str
    transition_id: str | None = None
    status_url: str | None = None
    reason: str = ""


class IntakeCount(BaseModel):
    format: str
    outcome: str
    reason: str
    count: int


@router.post(
    "/hl7",
    response_class=PlainTextResponse,
    responses={200: {"content": {HL7_MEDIA_TYPE: {}}, "description": "The HL7 ACK: AA, AE or AR"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "text/plain": {"schema": {"type": "string"}}, HL7_MEDIA_TYPE: {"schema": {"type": "string"}},
    }}},
)
async def submit_hl7(
    request: Request,
    user: Annotated[Principal, Depends(require("intake:submit"))],
    session: SessionDep,
    settings: SettingsDep,
    policy: PolicyDep,
    temporal: TemporalConnectionDep,
) -> Response:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raw = b"message too large"  # answered AR, like anything that is not HL7
    ack = await receive_hl7(raw, get_client=temporal.client, settings=settings, policy=policy,
                            session=session, actor_id=user.staff_id, source=client_ip(request))
    return PlainTextResponse(ack, media_type=HL7_MEDIA_TYPE)


@router.post(
    "/fhir",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IntakeAccepted,
    responses={200: {"model": IntakeAccepted, "description": "Already started, or ignored"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/fhir+json": {"schema": {"type": "object"}},
        "application/json": {"schema": {"type": "object"}},
    }}},
)
async def submit_fhir(
    request: Request,
    response: Response,
    user: Annotated[Principal, Depends(require("intake:submit"))],
    session: SessionDep,
    settings: SettingsDep,
    policy: PolicyDep,
    temporal: TemporalConnectionDep,
) -> IntakeAccepted | JSONResponse:
    try:
        event, applied = await receive_fhir(
            await request.body(), get_client=temporal.client, settings=settings, policy=policy,
            session=session, actor_id=user.staff_id, source=client_ip(request),
        )
    except IntakeError as err:
        detail = [{"type": "value_error", "loc": ["body", err.field], "msg": err.reason}]
        return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail})
    if applied.outcome in ("existing", "ignored"):
        response.status_code = status.HTTP_200_OK
    tid = applied.transition_id
    return IntakeAccepted(
        outcome=applied.outcome, event=event.kind.value, transition_id=tid,
        status_url=f"/api/transitions/{tid}" if tid else None, reason=applied.reason,
    )


@router.get("/counts", response_model=list[IntakeCount])
async def intake_counts(
    _user: Annotated[Principal, Depends(require("reports:read"))],
    session: SessionDep,
    since: Annotated[AwareDatetime | None, Query(description="Default: the last 7 days")] = None,
) -> list[IntakeCount]:
    """Notifications received but not acted on (ignored: out of scope, no open transition; or
    rejected, by the field at fault), counted from the audit trail."""
    since = since or datetime.now(UTC) - timedelta(days=7)
    totals = receipts.counts(session, since=since)
    return [
        IntakeCount(format=fmt, outcome=outcome, reason=reason, count=n)
        for (fmt, outcome, reason), n in sorted(totals.items())
    ]
