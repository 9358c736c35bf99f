"""What a route can ask for: the session, Temporal, the settings, the policy, and who is asking."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from temporalio.client import Client

from ..config import Settings
from ..domain.policy import Policy
from ..domain.tasks import Role
from ..security.permissions import allowed
from ..security.sessions import check_csrf, staff_for_session_cookie
from ..store.models import ApiToken, Staff, StaffTeam
from ..store.tokens import hash_token
from ..store.types import utcnow
from ..temporal_client import connect
from .errors import TemporalUnavailable

log = logging.getLogger(__name__)

TEMPORAL_TIMEOUT_SECONDS = 2.0


class TemporalConnection:
    """The one Temporal client of the process, connected lazily: the API starts (and /readyz
    says why it is not ready) while Temporal is down, and connects on the next request."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(
                        connect(self._settings), timeout=TEMPORAL_TIMEOUT_SECONDS
                    )
                except Exception as err:  # any failure to connect means "not reachable yet"
                    log.warning("Temporal at %s not reachable: %s", self._settings.temporal_address,
                                type(err).__name__)
                    raise TemporalUnavailable(str(err)) from err
        return self._client

    async def ping(self) -> None:
        """A cheap round trip to the frontend's health service; raises when Temporal is down."""
        client = await self.client()
        try:
            await asyncio.wait_for(
                client.service_client.check_health(timeout=timedelta(seconds=TEMPORAL_TIMEOUT_SECONDS)),
                timeout=TEMPORAL_TIMEOUT_SECONDS + 0.5,
            )
        except Exception as err:
            raise TemporalUnavailable(str(err)) from err


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_policy(request: Request) -> Policy:
    return request.app.state.policy


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


async def get_temporal(request: Request) -> Client:
    return await request.app.state.temporal.client()


SettingsDep = Annotated[Settings, Depends(get_settings)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
SessionDep = Annotated[Session, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]


@dataclass(frozen=True)
class Principal:
    """The authenticated staff member a request acts for."""

    staff_id: int
    name: str
    role: Role
    team_ids: frozenset[int]

    def can(self, permission: str) -> bool:
        return allowed(self.role, permission)


_bearer = HTTPBearer(auto_error=False, description="An API token (`hr_…`) made with the CLI")


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=reason, headers={"WWW-Authenticate": "Bearer"}
    )


def principal_for_staff(*, session: Session, staff: Staff) -> Principal | None:
    """The staff member with their role and teams; None for a role this version does not know."""
    if staff.id is None or not staff.active:
        return None
    try:
        role = Role(staff.role)
    except ValueError:
        return None  # a role this version does not know grants nothing
    teams = session.exec(select(StaffTeam.team_id).where(StaffTeam.staff_id == staff.id)).all()
    return Principal(staff_id=staff.id, name=staff.name, role=role, team_ids=frozenset(teams))


def principal_for_token(*, session: Session, token: str) -> Principal | None:
    staff = session.exec(
        select(Staff)
        .join(ApiToken, col(ApiToken.staff_id) == Staff.id)
        .where(
            ApiToken.token_hash == hash_token(token),
            col(ApiToken.revoked_at).is_(None),
            Staff.active == True,  # noqa: E712
        )
    ).first()
    return None if staff is None else principal_for_staff(session=session, staff=staff)


async def get_current_user(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The single place a request becomes a Principal: an API bearer token, or else the
    console's session cookie (whose unsafe requests must carry the session's CSRF token)."""
    if credentials is not None and credentials.credentials:
        principal = await run_in_threadpool(
            principal_for_token, session=session, token=credentials.credentials
        )
        if principal is None:
            raise _unauthorized("invalid or revoked token")
        return principal
    found = await run_in_threadpool(staff_for_session_cookie, request, settings, session, utcnow())
    if found is not None:
        staff, console_session = found
        principal = await run_in_threadpool(principal_for_staff, session=session, staff=staff)
        if principal is not None:
            await check_csrf(request, console_session)
            return principal
    raise _unauthorized("not authenticated: send Authorization: Bearer <token>, or log in")


CurrentUser = Annotated[Principal, Depends(get_current_user)]


def require(permission: str) -> Callable[[Principal], Principal]:
    """A dependency that answers 403 unless the user's role holds `permission`."""

    def _check(user: CurrentUser) -> Principal:
        if not user.can(permission):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"the {user.role.value} role may not do this ({permission})",
            )
        return user

    _check.__name__ = f"require_{permission.replace(':', '_')}"
    return _check


def in_scope(user: Principal, team_id: int | None) -> bool:
    return team_id is not None and team_id in user.team_ids


# Ids from the URL, bounded so a silly value is a 422 and never reaches the database as one
# (an out-of-range integer or a NUL byte is an error inside SQLite or PostgreSQL, not a miss).
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
WorkflowId = Annotated[str, Path(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9._:-]+$")]
StaffIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID, description="A staff id")]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def get_temporal_connection(request: Request) -> TemporalConnection:
    return request.app.state.temporal


# For routes that still answer from the store while Temporal is down (the transition detail).
TemporalConnectionDep = Annotated[TemporalConnection, Depends(get_temporal_connection)]
