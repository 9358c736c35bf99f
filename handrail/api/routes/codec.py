"""The Temporal UI's remote codec endpoint: staff read encrypted histories in the Temporal UI.

Configure the UI's codec endpoint as `<public URL>/codec` (Temporal UI → settings, or
TEMPORAL_CODEC_ENDPOINT in its server config); it POSTs `{"payloads": [...]}` (protobuf JSON,
base64 `data` and metadata values) to `/codec/decode` and `/codec/encode`. Login is required:
a bearer token, or the console session cookie when the UI is set to include credentials. Only
roles holding "codec:use" may decode (admins may not), every decode is audited, and CORS is
answered only for `HANDRAIL_TEMPORAL_UI_URL`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from google.protobuf import json_format
from sqlmodel import Session
from temporalio.api.common.v1 import Payloads

from ...config import Settings
from ...security.audit import append_audit
from ...security.codec import CodecKeyError, EncryptionCodec, PayloadTamperedError, codec_from_settings
from ...security.sessions import staff_for_session_cookie
from ...store.types import utcnow
from ..deps import (
    Principal,
    SessionDep,
    SettingsDep,
    client_ip,
    principal_for_staff,
    principal_for_token,
)

PERMISSION = "codec:use"
ALLOWED_HEADERS = "authorization, content-type, x-namespace, x-csrf-token"
MAX_PAYLOADS = 1000
_bearer = HTTPBearer(auto_error=False, description="An API token (`hr_…`) made with the CLI")


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=reason,
                         headers={"WWW-Authenticate": "Bearer"})


def _ui_origin(settings: Settings) -> str:
    return settings.temporal_ui_url.rstrip("/")


def _cors_headers(request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    if origin is None or origin.rstrip("/") != _ui_origin(request.app.state.settings):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


class CorsForTemporalUI(APIRoute):
    """Adds the UI's CORS headers to every answer, refusals (401/403/422) included, so the UI
    shows the reason instead of an opaque CORS failure."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_cors(request: Request) -> Response:
            try:
                response = await handler(request)
            except HTTPException as refused:
                response = JSONResponse({"detail": refused.detail}, refused.status_code,
                                        headers=refused.headers)
            response.headers.update(_cors_headers(request))
            return response

        return with_cors


router = APIRouter(prefix="/codec", tags=["codec"], route_class=CorsForTemporalUI)


def codec_user(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """A bearer token, or the console session cookie when the UI is set to include credentials.

    No CSRF token here: the Temporal UI cannot send one, and none is needed, since the codec
    changes nothing and only the UI origin may read its answers (CORS); SameSite=Lax keeps the
    cookie off other sites' requests."""
    principal: Principal | None = None
    if credentials is not None and credentials.credentials:
        principal = principal_for_token(session=db, token=credentials.credentials)
        if principal is None:
            raise _unauthorized("invalid or revoked token")
    else:
        found = staff_for_session_cookie(request, settings, db, utcnow())
        if found is not None:
            principal = principal_for_staff(session=db, staff=found[0])
    if principal is None:
        raise _unauthorized("not authenticated: send Authorization: Bearer <token>")
    if not principal.can(PERMISSION):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"the {principal.role.value} role may not read payloads ({PERMISSION})")
    return principal


CodecUser = Annotated[Principal, Depends(codec_user)]


def payload_codec(request: Request) -> EncryptionCodec:
    codec = getattr(request.app.state, "payload_codec", None)
    if codec is None:
        codec = request.app.state.payload_codec = codec_from_settings(request.app.state.settings)
    return codec


CodecDep = Annotated[EncryptionCodec, Depends(payload_codec)]


async def _payloads(request: Request) -> Payloads:
    body = await request.body()
    try:
        payloads = json_format.Parse(body or b"{}", Payloads())
    except json_format.ParseError as bad:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": ["body", "payloads"], "msg": f"not Temporal payloads JSON: {bad}"}],
        ) from None
    if len(payloads.payloads) > MAX_PAYLOADS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=[{"loc": ["body", "payloads"], "msg": f"at most {MAX_PAYLOADS}"}])
    return payloads


def _answer(payloads: list) -> Response:
    return Response(json_format.MessageToJson(Payloads(payloads=payloads)),
                    media_type="application/json")


def _audit_decode(
    db: Session, user: Principal, source: str | None, count: int, namespace: str | None
) -> None:
    append_audit(session=db, action="codec.decode", actor_id=user.staff_id, transition_id=None,
                 person_id=None, source=source, at=utcnow(),
                 detail={"payloads": count, "namespace": namespace})
    db.commit()


@router.post("/decode", responses={401: {}, 403: {}, 422: {}})
async def decode(request: Request, user: CodecUser, codec: CodecDep, db: SessionDep) -> Response:
    """Decrypt payloads for the Temporal UI (audited as a read)."""
    payloads = await _payloads(request)
    try:
        decoded = await codec.decode(payloads.payloads)
    except (CodecKeyError, PayloadTamperedError) as unreadable:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(unreadable)) from None
    namespace = (request.headers.get("x-namespace") or "")[:100] or None
    await run_in_threadpool(_audit_decode, db, user, client_ip(request), len(decoded), namespace)
    return _answer(decoded)


@router.post("/encode", responses={401: {}, 403: {}, 422: {}})
async def encode(request: Request, user: CodecUser, codec: CodecDep) -> Response:
    """Encrypt payloads the UI sends to a workflow (a signal or an update typed in the UI)."""
    payloads = await _payloads(request)
    return _answer(await codec.encode(payloads.payloads))


@router.options("/decode", include_in_schema=False)
@router.options("/encode", include_in_schema=False)
async def preflight(request: Request) -> Response:
    headers = _cors_headers(request)
    if not headers:
        return Response(status_code=status.HTTP_403_FORBIDDEN)
    headers.update({
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": "600",
    })
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)
