"""What every console page shares: who is looking, the templates, and how refusals look.

Pages authenticate with the console's session cookie only (security/sessions.py), never a
bearer token; without a session they redirect to /console/login. Every unsafe request must
carry the session's CSRF token (the `csrf_token` field every form holds). Roles and teams are
checked exactly as the API checks them: `require(permission)` here names the same permission
from security/permissions.py, and the data come from the same team-scoped store queries.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, pass_environment
from sqlmodel import Session, select

from ...domain.tasks import answered_by_action
from ...security.audit import append_audit
from ...security.sessions import SAFE_METHODS, staff_for_session_cookie, submitted_csrf_token
from ...store.models import AuditEvent, Transition
from ...store.types import utcnow
from ..deps import Principal, SessionDep, SettingsDep, client_ip, principal_for_staff
from ..errors import TemporalUnavailable

HERE = Path(__file__).parent
LOGIN_PATH = "/console/login"
# A page refreshing itself every few seconds is one reading of the record, not hundreds.
READ_AUDITED_FOR = timedelta(minutes=10)

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["answered_by_action"] = answered_by_action
TIME_ZONE_GLOBAL = "console_time_zone"


@pass_environment
def _when(environment: Environment, value: datetime | None) -> str:
    """In the console's zone (HANDRAIL_CONSOLE_TIME_ZONE, set by `install`), named:
    "14 Jul 10:30:00 BST"."""
    if not value:
        return "—"
    local = value.astimezone(ZoneInfo(environment.globals.get(TIME_ZONE_GLOBAL, "UTC")))
    return f"{local:%-d %b %H:%M:%S} {local.tzname()}"


@pass_environment
def _detail_value(environment: Environment, value: Any) -> str:
    """A timeline entry's detail value: a time as `when` shows it, other values as they are."""
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and "T" in value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is not None:
            return _when(environment, moment)
    return value if isinstance(value, str | int | float) else json.dumps(value)


def _duration(seconds: float | None) -> str:
    span = abs(int(seconds or 0))
    return (f"{span} s" if span < 120 else f"{span // 60} min" if span < 7200
            else f"{span // 3600} h" if span < 172800 else f"{span // 86400} days")


def _relative(value: datetime | None) -> str:
    if value is None:
        return ""
    seconds = (value - utcnow()).total_seconds()
    return f"in {_duration(seconds)}" if seconds > 0 else f"{_duration(seconds)} ago"


def _label(value: str | None) -> str:
    # "awaiting_supervisor_decision" / "contact.booked" → words a person reads.
    return (value or "").replace(".", " ").replace("_", " ").replace("-", " ").strip().capitalize()


templates.env.filters.update(when=_when, relative=_relative, label=_label, duration=_duration,
                             detail_value=_detail_value)


@dataclass(frozen=True)
class Viewer:
    """The member of staff looking at a page, and the CSRF token their forms carry."""

    principal: Principal
    csrf_token: str

    @property
    def staff_id(self) -> int:
        return self.principal.staff_id

    @property
    def team_ids(self) -> frozenset[int]:
        return self.principal.team_ids

    def can(self, permission: str) -> bool:
        return self.principal.can(permission)


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class Refused(Exception):
    """A page or form the viewer may not have: rendered as a page with the reason."""

    def __init__(self, status_code: int, reason: str) -> None:
        self.status_code = status_code
        self.reason = reason


async def console_viewer(request: Request, session: SessionDep, settings: SettingsDep) -> Viewer:
    found = await run_in_threadpool(staff_for_session_cookie, request, settings, session, utcnow())
    principal = None
    if found is not None:
        principal = await run_in_threadpool(principal_for_staff, session=session, staff=found[0])
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target if request.method in SAFE_METHODS else request.url.path)
    console_session = found[1]
    if request.method not in SAFE_METHODS:
        submitted = await submitted_csrf_token(request)
        if not submitted or not hmac.compare_digest(submitted, console_session.csrf_token):
            raise Refused(403, "missing or wrong CSRF token: reload the page and try again")
    return Viewer(principal, console_session.csrf_token)


def require(permission: str):
    """A page's permission, named like api/deps.require so the route matrix reads it the same."""

    def _check(viewer: Annotated[Viewer, Depends(console_viewer)]) -> Viewer:
        if not viewer.can(permission):
            raise Refused(403, f"the {viewer.principal.role.value} role may not open this ({permission})")
        return viewer

    _check.__name__ = f"require_{permission.replace(':', '_')}"
    return _check


NAV = [  # (path, label, permission)
    ("/console/work", "My work", "tasks:read"),
    ("/console/transitions", "Transitions", "transitions:read"),
    ("/console/approvals", "Approvals", "approvals:read"),
    ("/console/reports", "Assurance and outcomes", "reports:read"),
    ("/console/outbox", "Outbox", "outbox:read"),
    ("/console/admin", "Admin", "admin:manage"),
]


# Filled by console.install: pages not in this build stay out of the menu.
INSTALLED_PAGES: set[str] = set()


def home_path(principal: Principal) -> str:
    return next((path for path, _, permission in NAV
                 if principal.can(permission) and path in INSTALLED_PAGES), LOGIN_PATH)


def render(request: Request, template: str, viewer: Viewer | None, *, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    nav = [] if viewer is None else [
        (path, label) for path, label, permission in NAV
        if viewer.can(permission) and path in INSTALLED_PAGES
    ]
    response = templates.TemplateResponse(
        request, template, {"viewer": viewer, "nav": nav, "now": utcnow(), **context},
        status_code=status_code,
    )
    # With no-referrer (the app's default) Chromium sends `Origin: null` on a form post, which
    # the login's same-origin check must refuse; same-origin still tells other sites nothing.
    response.headers["Referrer-Policy"] = "same-origin"
    # Pages carry personal data and a CSRF token: never kept in a shared or browser cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def refusal(err: Exception) -> tuple[int, str]:
    """The API's answer to a refused action, as a status code and a sentence."""
    if isinstance(err, HTTPException):
        return err.status_code, _sentence(err.detail)
    if isinstance(err, RequestValidationError):
        return 422, _sentence(err.errors())
    if isinstance(err, TemporalUnavailable):
        return 503, "Temporal is not reachable; try again shortly"
    raise err


def _sentence(detail: Any) -> str:
    if isinstance(detail, list):
        parts = []
        for item in detail:
            location = [str(p) for p in item.get("loc", []) if p != "body"]
            parts.append(f"{'.'.join(location)}: {item.get('msg')}" if location else str(item.get("msg")))
        return "; ".join(parts)
    return str(detail)


async def back_to(request: Request, default: str = "/console/work") -> str:
    """Where a form goes back to: its `back` field when that is a console page (the
    Referer is never sent: Referrer-Policy is no-referrer), else `default`."""
    back = str((await request.form()).get("back") or "")
    if back.startswith("/console/") and "//" not in back and "\\" not in back:
        return back.split("?", 1)[0]
    return default


def see_other(path: str, done: str | None = None) -> RedirectResponse:
    target = f"{path}?done={quote(done)}" if done else path
    return RedirectResponse(target, status_code=303)


def audit_read(session: Session, request: Request, viewer: Viewer, row: Transition, now: datetime) -> None:
    """Reading a person's record is on the record, as in the API; a page that refreshes itself
    counts as one read per READ_AUDITED_FOR, not one per refresh."""
    recent = session.exec(select(AuditEvent.id).where(
        AuditEvent.transition_id == row.id, AuditEvent.actor_id == viewer.staff_id,
        AuditEvent.action == "read", AuditEvent.at >= now - READ_AUDITED_FOR,
    )).first()
    if recent is None:
        append_audit(session=session, action="read", actor_id=viewer.staff_id, transition_id=row.id,
                     person_id=row.person_id, source=client_ip(request), detail={"via": "console"},
                     at=now)
        session.commit()


ViewerOf = Annotated[Viewer, Depends(console_viewer)]
