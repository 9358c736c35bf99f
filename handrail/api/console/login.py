"""Login and logout for the console: the same password check, rate limit and audit as
POST /auth/login (routes/auth.py), answered with pages instead of JSON."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from ...security.oidc import OidcSettings
from ...security.sessions import (
    clear_session_cookie,
    session_from_request,
    staff_for_session_cookie,
    submitted_csrf_token,
)
from ...store.types import utcnow
from ..deps import SessionDep, SettingsDep, client_ip, principal_for_staff
from ..routes.auth import LoginRequest, _audit, _password_login, _safe_next, _same_origin, login_limiter
from .web import LOGIN_PATH, home_path, render

router = APIRouter()


@router.get("/console/", include_in_schema=False)
def start(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Each role's start page: My work for clinical staff, Admin for admins."""
    found = staff_for_session_cookie(request, settings, session, utcnow())
    principal = principal_for_staff(session=session, staff=found[0]) if found else None
    return RedirectResponse(home_path(principal) if principal else LOGIN_PATH, status_code=303)


@router.get("/console/login", include_in_schema=False)
def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", None, next=_safe_next(next), oidc=OidcSettings().enabled)


@router.post("/console/login", include_in_schema=False)
async def login(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    target = _safe_next(form.get("next")) or "/console/"
    if not _same_origin(request, settings.public_base_url):
        return render(request, "login.html", None, status_code=403, error_status=403,
                      error="login from another origin refused", next=target)
    try:
        credentials = LoginRequest(email=form.get("email", ""), password=form.get("password", ""),
                                   next=target)
        return await run_in_threadpool(_password_login, session, settings, login_limiter(request),
                                       credentials, client_ip(request) or "unknown")
    except ValidationError:
        status_code, reason = 422, "enter your e-mail and password"
    except HTTPException as refused:
        status_code, reason = refused.status_code, str(refused.detail)
    return render(request, "login.html", None, status_code=status_code, error_status=status_code,
                  error=reason, next=target, email=form.get("email", ""), oidc=OidcSettings().enabled)


@router.post("/console/logout", include_in_schema=False)
async def logout(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    data = session_from_request(request, settings, utcnow())
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    if data is not None:
        submitted = await submitted_csrf_token(request)
        if submitted != data.csrf_token:  # a cross-site logout form is refused, not obeyed
            return render(request, "error.html", None, status_code=403,
                          reason="missing or wrong CSRF token: reload the page and try again")
        await run_in_threadpool(_audit, session, "auth.logout", data.staff_id, client_ip(request))
    clear_session_cookie(response, settings)
    return response
