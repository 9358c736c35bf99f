"""Console sessions: a signed, expiring cookie plus a CSRF token per session.

The cookie holds `staff id | issued | expires | csrf token | password fingerprint`, signed with
HMAC-SHA256 under `HANDRAIL_SESSION_SECRET` (a dev secret under the data dir when unset). It is
HttpOnly, SameSite=Lax, Secure and `__Host-` prefixed when the public URL is https. A session
ends when it expires, on logout (the cookie is cleared), when the account is deactivated, or
when the password changes (the fingerprint no longer matches), which is also how an
administrator ends every session of a user at once.

Forms send the session's CSRF token back (field `csrf_token` or header `X-CSRF-Token`);
`check_csrf` refuses an unsafe request whose token is missing or wrong.

How it joins the API: `api/deps.get_current_user` asks `staff_for_session_cookie` when no
bearer token came, and calls `check_csrf` for unsafe methods authenticated by the cookie.
OpenID Connect (security/oidc.py, optional) ends in `issue_session` exactly as password login
does, so everything past login is the same.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request, Response, status
from sqlmodel import Session

from ..store.models import Staff

if TYPE_CHECKING:
    from ..config import Settings

SESSION_LIFETIME = timedelta(hours=8)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEV_SECRET_FILE = "session.key"


@dataclass(frozen=True)
class ConsoleSession:
    staff_id: int
    issued_at: int
    expires_at: int
    csrf_token: str
    password_fingerprint: str


def uses_https(settings: Settings) -> bool:
    return settings.public_base_url.lower().startswith("https://")


def cookie_name(settings: Settings) -> str:
    # The __Host- prefix makes browsers refuse the cookie unless Secure, Path=/ and host-only.
    return "__Host-handrail_session" if uses_https(settings) else "handrail_session"


def session_secret(settings: Settings) -> bytes:
    if settings.session_secret is not None:
        secret = settings.session_secret.get_secret_value().encode()
        if len(secret) < 32:
            raise ValueError("HANDRAIL_SESSION_SECRET: at least 32 characters")
        return secret
    path = Path(settings.data_dir) / _DEV_SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it a moment ago
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def password_fingerprint(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, b"handrail-session:" + body.encode(), hashlib.sha256).digest())


def issue_session(settings: Settings, staff: Staff, now: datetime) -> tuple[str, ConsoleSession]:
    """A new session (and a fresh CSRF token) for a staff member who has just proved who they are."""
    issued = int(now.timestamp())
    data = ConsoleSession(
        staff_id=staff.id, issued_at=issued, expires_at=issued + int(SESSION_LIFETIME.total_seconds()),
        csrf_token=secrets.token_urlsafe(32), password_fingerprint=password_fingerprint(staff.password_hash),
    )
    body = _b64(json.dumps([data.staff_id, data.issued_at, data.expires_at, data.csrf_token,
                            data.password_fingerprint]).encode())
    return f"{body}.{_sign(session_secret(settings), body)}", data


def read_session(settings: Settings, cookie_value: str | None, now: datetime) -> ConsoleSession | None:
    """The session in a cookie, or None when it is missing, forged, altered or expired."""
    if not cookie_value or cookie_value.count(".") != 1:
        return None
    body, signature = cookie_value.split(".")
    if not hmac.compare_digest(signature, _sign(session_secret(settings), body)):
        return None
    try:
        staff_id, issued, expires, csrf, fingerprint = json.loads(_unb64(body))
    except (ValueError, TypeError):
        return None
    if now.timestamp() >= expires:
        return None
    return ConsoleSession(int(staff_id), int(issued), int(expires), str(csrf), str(fingerprint))


def staff_for_session(db: Session, data: ConsoleSession | None) -> Staff | None:
    """The active staff member a session belongs to, unless their password changed since."""
    if data is None:
        return None
    staff = db.get(Staff, data.staff_id)
    if staff is None or not staff.active:
        return None
    if not hmac.compare_digest(password_fingerprint(staff.password_hash), data.password_fingerprint):
        return None
    return staff


def session_from_request(request: Request, settings: Settings, now: datetime) -> ConsoleSession | None:
    return read_session(settings, request.cookies.get(cookie_name(settings)), now)


def staff_for_session_cookie(
    request: Request, settings: Settings, db: Session, now: datetime
) -> tuple[Staff, ConsoleSession] | None:
    data = session_from_request(request, settings, now)
    staff = staff_for_session(db, data)
    return (staff, data) if staff is not None and data is not None else None


def set_session_cookie(response: Response, settings: Settings, value: str) -> None:
    response.set_cookie(
        cookie_name(settings), value, max_age=int(SESSION_LIFETIME.total_seconds()), path="/",
        httponly=True, secure=uses_https(settings), samesite="lax",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        cookie_name(settings), path="/", httponly=True, secure=uses_https(settings), samesite="lax"
    )


async def submitted_csrf_token(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def check_csrf(request: Request, data: ConsoleSession) -> None:
    """403 for an unsafe request authenticated by the session cookie without its CSRF token."""
    if request.method in SAFE_METHODS:
        return
    submitted = await submitted_csrf_token(request)
    if not submitted or not hmac.compare_digest(submitted, data.csrf_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="missing or wrong CSRF token")
