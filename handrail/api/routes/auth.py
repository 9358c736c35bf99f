"""Console login and logout: a password (argon2) for a signed session cookie, rate limited.

POST /auth/login takes JSON `{"email", "password"}` or a form (`email`, `password`, optional
`next`, a path to go to afterwards). Five failures for one account from one address within
15 minutes answer 429 until the window passes. Every attempt is audited; no password, token or
email is written to a log line. With an identity provider configured (security/oidc.py),
GET /auth/oidc/login starts an OpenID Connect login that ends in the same session.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field, ValidationError
from sqlmodel import Session, select

from ...config import Settings
from ...security.audit import append_audit
from ...security.oidc import (
    FLOW_COOKIE,
    FLOW_LIFETIME_SECONDS,
    OidcError,
    OidcProvider,
    OidcSettings,
    new_flow,
    open_flow,
    seal_flow,
)
from ...security.passwords import MAX_LENGTH, verify_password
from ...security.ratelimit import LoginRateLimiter
from ...security.sessions import (
    check_csrf,
    clear_session_cookie,
    issue_session,
    session_from_request,
    session_secret,
    set_session_cookie,
    staff_for_session,
    uses_https,
)
from ...store.models import Staff
from ...store.types import utcnow
from ..deps import SessionDep, SettingsDep, client_ip

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginRequest(BaseModel):
    email: Annotated[str, Field(min_length=3, max_length=200)]
    password: Annotated[str, Field(min_length=1, max_length=MAX_LENGTH)]
    next: str | None = None


class SessionPublic(BaseModel):
    staff_id: int
    name: str
    role: str
    csrf_token: str
    expires_at: int


def login_limiter(request: Request) -> LoginRateLimiter:
    limiter = getattr(request.app.state, "login_limiter", None)
    if limiter is None:
        limiter = request.app.state.login_limiter = LoginRateLimiter()
    return limiter


def _safe_next(target: str | None) -> str | None:
    # Only a path on this site: never an absolute URL, which would make login an open redirect.
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _same_origin(request: Request, public_base_url: str) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser's cross-site form post (those carry Origin)
    public = urlsplit(public_base_url)
    return origin.rstrip("/") == f"{public.scheme}://{public.netloc}"


async def _login_request(request: Request) -> LoginRequest:
    content_type = request.headers.get("content-type", "")
    raw: Any
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        raw = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    else:
        try:
            raw = await request.json()
        except ValueError:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                detail=[{"loc": ["body"], "msg": "expected JSON or a form"}]) from None
    try:
        return LoginRequest.model_validate(raw)
    except ValidationError as invalid:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in invalid.errors()],
        ) from None


def _audit(db: Session, action: str, actor_id: int | None, source: str | None, **detail: Any) -> None:
    append_audit(session=db, action=action, actor_id=actor_id, transition_id=None, person_id=None,
                 source=source, detail=detail, at=utcnow())
    db.commit()


def _session_response(settings: Settings, staff: Staff, target: str | None) -> Response:
    cookie, data = issue_session(settings, staff, utcnow())
    response: Response
    if target is not None:
        response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    else:
        body = SessionPublic(staff_id=staff.id, name=staff.name, role=staff.role,
                             csrf_token=data.csrf_token, expires_at=data.expires_at)
        response = JSONResponse(body.model_dump())
    set_session_cookie(response, settings, cookie)
    return response


def _password_login(
    db: Session, settings: Settings, limiter: LoginRateLimiter, form: LoginRequest, address: str
) -> Response:
    # Blocking work (the database, argon2's deliberate cost) runs here, in a worker thread.
    wait = limiter.retry_after(form.email, address)
    if wait is not None:
        _audit(db, "auth.login_throttled", None, address)
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            detail="too many failed logins; try again later",
                            headers={"Retry-After": str(wait)})
    staff = db.exec(select(Staff).where(Staff.email == form.email.strip())).first()
    password_hash = staff.password_hash if staff is not None and staff.active else None
    if not verify_password(password_hash, form.password):
        limiter.record_failure(form.email, address)
        _audit(db, "auth.login_failed", staff.id if staff is not None else None, address)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="email or password is wrong")
    limiter.reset(form.email, address)
    _audit(db, "auth.login", staff.id, address, method="password")
    return _session_response(settings, staff, _safe_next(form.next))


@router.post("/login", response_model=SessionPublic, responses={401: {}, 403: {}, 422: {}, 429: {}})
async def login(request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    # Login CSRF: a browser posting from another site says so in Origin.
    if not _same_origin(request, settings.public_base_url):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="login from another origin refused")
    form = await _login_request(request)
    address = client_ip(request) or "unknown"
    return await run_in_threadpool(_password_login, db, settings, login_limiter(request), form, address)


@router.get("/session", response_model=SessionPublic, responses={401: {}})
def current_session(request: Request, db: SessionDep, settings: SettingsDep) -> SessionPublic:
    """Who the session cookie belongs to, and the CSRF token its forms must send."""
    data = session_from_request(request, settings, utcnow())
    staff = staff_for_session(db, data)
    if staff is None or data is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="no console session")
    return SessionPublic(staff_id=staff.id, name=staff.name, role=staff.role,
                         csrf_token=data.csrf_token, expires_at=data.expires_at)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses={403: {}})
async def logout(request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    data = session_from_request(request, settings, utcnow())
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    if data is not None:
        await check_csrf(request, data)
        await run_in_threadpool(_audit, db, "auth.logout", data.staff_id, client_ip(request))
    clear_session_cookie(response, settings)
    return response


# --- OpenID Connect (optional: only when HANDRAIL_OIDC_ISSUER and _CLIENT_ID are set) ---------


def oidc_provider(request: Request) -> OidcProvider:
    provider = getattr(request.app.state, "oidc_provider", None)
    if provider is None:
        oidc_settings = OidcSettings()
        if not oidc_settings.enabled:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="OpenID Connect is not configured")
        provider = request.app.state.oidc_provider = OidcProvider(oidc_settings, httpx.AsyncClient())
    return provider


def _redirect_uri(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/") + "/auth/oidc/callback"


@router.get("/oidc/login", status_code=status.HTTP_302_FOUND, responses={404: {}, 502: {}})
async def oidc_login(request: Request, settings: SettingsDep, next: str | None = None) -> Response:
    """Send the browser to the identity provider."""
    provider = oidc_provider(request)
    flow = new_flow(_safe_next(next))
    try:
        target = await provider.authorization_url(flow, _redirect_uri(settings))
    except OidcError as failed:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=str(failed)) from None
    response = RedirectResponse(target, status_code=status.HTTP_302_FOUND)
    response.set_cookie(FLOW_COOKIE, seal_flow(session_secret(settings), flow),
                        max_age=FLOW_LIFETIME_SECONDS, path="/auth/oidc", httponly=True,
                        secure=uses_https(settings), samesite="lax")
    return response


def _oidc_staff(db: Session, email: str, address: str | None) -> Staff:
    staff = db.exec(select(Staff).where(Staff.email == email)).first()
    if staff is None or not staff.active:
        _audit(db, "auth.login_failed", staff.id if staff else None, address, method="oidc")
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail="this identity has no active Handrail account; ask an admin")
    _audit(db, "auth.login", staff.id, address, method="oidc")
    return staff


@router.get("/oidc/callback", responses={400: {}, 401: {}, 403: {}, 404: {}})
async def oidc_callback(
    request: Request, db: SessionDep, settings: SettingsDep,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    state: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Where the identity provider sends the browser back: check everything, then log in."""
    provider = oidc_provider(request)
    flow = open_flow(session_secret(settings), request.cookies.get(FLOW_COOKIE))
    if flow is None or state is None or not hmac.compare_digest(state, flow.state):
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            detail="this login was not started here or took too long; start again")
    if error is not None or code is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            detail=f"the identity provider did not log you in ({error or 'no code'})")
    try:
        email = await provider.email_for_code(code, flow, _redirect_uri(settings))
    except OidcError as failed:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=str(failed)) from None
    staff = await run_in_threadpool(_oidc_staff, db, email, client_ip(request))
    response = _session_response(settings, staff, flow.next or "/")
    response.delete_cookie(FLOW_COOKIE, path="/auth/oidc")
    return response
