"""Accounts and the audit trail from the command line: `handrail teams|users|audit ...`.

Registered by cli/main.py with `app.add_typer(teams_app, name="teams")` and the same for
`users_app`, `audit_app` and `keys_app`. A refusal (unknown role or team, ambiguous name) prints why and
exits 2; `audit verify` exits 1 when the chain is broken. Every change is audited.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlmodel import Session, col, select

from ..config import get_settings
from ..domain.tasks import Role
from ..security.audit import append_audit, export_csv, verify_chain
from ..security.codec import CodecKeyError, keyring_from_settings, new_key_entry
from ..security.passwords import PasswordTooWeak, hash_password
from ..store.db import make_engine, session_scope
from ..store.models import ApiToken, Staff, StaffTeam, Team
from ..store.tokens import hash_token, new_token
from ..store.types import utcnow

teams_app = typer.Typer(no_args_is_help=True, help="Teams: who sees which people and transitions.")
users_app = typer.Typer(no_args_is_help=True, help="Staff accounts, API tokens and passwords.")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit trail.")
keys_app = typer.Typer(no_args_is_help=True, help="Payload encryption keys (rotation).")

REFUSED = 2
CLI_SOURCE = "cli"


def _refuse(message: str, code: int = REFUSED) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)


@contextmanager
def _store() -> Iterator[Session]:
    engine = make_engine(get_settings().resolved_database_url)
    try:
        with session_scope(engine) as session:
            yield session
    except (OperationalError, ProgrammingError) as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise _refuse(f"the store is not ready ({reason}); run `handrail db upgrade`", 1) from None
    finally:
        engine.dispose()


def _audit(session: Session, action: str, detail: dict) -> None:
    append_audit(session=session, action=action, actor_id=None, transition_id=None,
                 person_id=None, source=CLI_SOURCE, detail=detail, at=utcnow())


def _find_staff(session: Session, name_or_id: str) -> Staff:
    if name_or_id.isdigit():
        staff = session.get(Staff, int(name_or_id))
        if staff is None:
            raise _refuse(f"no user with id {name_or_id}")
        return staff
    matches = session.exec(
        select(Staff).where((Staff.name == name_or_id) | (Staff.email == name_or_id))
    ).all()
    if not matches:
        raise _refuse(f"no user named {name_or_id!r}")
    if len(matches) > 1:
        ids = ", ".join(str(staff.id) for staff in matches)
        raise _refuse(f"{len(matches)} users are named {name_or_id!r} (ids {ids}); give the id")
    return matches[0]


def _issue_token(session: Session, staff: Staff, label: str) -> str:
    token = new_token()
    session.add(ApiToken(staff_id=staff.id, token_hash=hash_token(token), label=label))
    _audit(session, "admin.token_issued", {"staff_id": staff.id, "label": label})
    return token


# --- teams -------------------------------------------------------------------------------


@teams_app.command("add")
def teams_add(
    code: Annotated[str, typer.Argument(help="Short code, e.g. north-crisis")],
    name: Annotated[str, typer.Option("--name", help="Display name")] = "",
) -> None:
    """Create a team."""
    code = code.strip()
    if not code or len(code) > 100 or any(ch.isspace() for ch in code):
        raise _refuse("team code: 1-100 characters without spaces")
    with _store() as session:
        if session.exec(select(Team).where(Team.code == code)).first() is not None:
            raise _refuse(f"team {code!r} already exists")
        team = Team(code=code, name=name.strip() or code)
        session.add(team)
        session.flush()
        _audit(session, "admin.team_added", {"team_id": team.id, "code": code})
    typer.echo(f"team {code} added (id {team.id})")


@teams_app.command("list")
def teams_list() -> None:
    """List the teams."""
    with _store() as session:
        for team in session.exec(select(Team).order_by(Team.code)):
            typer.echo(f"{team.id}\t{team.code}\t{team.name}")


# --- users -------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The person's name as colleagues know it")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(r.value for r in Role)}")],
    team: Annotated[list[str], typer.Option("--team", help="Team code; repeat for several")],
    email: Annotated[str | None, typer.Option("--email", help="Login name for the console")] = None,
) -> None:
    """Create a user in one or more teams; the last line printed is their API token (shown once)."""
    if role not in {r.value for r in Role}:
        raise _refuse(f"unknown role {role!r}; choose one of: {', '.join(r.value for r in Role)}")
    if not name.strip():
        raise _refuse("name must not be empty")
    with _store() as session:
        teams = []
        for code in dict.fromkeys(team):
            found = session.exec(select(Team).where(Team.code == code)).first()
            if found is None:
                raise _refuse(f"unknown team {code!r}; create it with `handrail teams add {code}`")
            teams.append(found)
        if email and session.exec(select(Staff).where(Staff.email == email)).first() is not None:
            raise _refuse(f"email {email!r} already belongs to a user")
        staff = Staff(name=name.strip(), role=role, email=email or None)
        session.add(staff)
        session.flush()
        session.add_all([StaffTeam(staff_id=staff.id, team_id=t.id) for t in teams])
        _audit(session, "admin.user_added",
               {"staff_id": staff.id, "role": role, "teams": [t.code for t in teams]})
        token = _issue_token(session, staff, "cli")
    typer.echo(f"user {staff.name} added (id {staff.id}, role {role}, "
               f"teams {', '.join(t.code for t in teams)})")
    typer.echo("API token (shown once, store it now):")
    typer.echo(token)


@users_app.command("list")
def users_list() -> None:
    """List users with their role, teams and whether they are active."""
    with _store() as session:
        for staff in session.exec(select(Staff).order_by(Staff.id)):
            codes = session.exec(
                select(Team.code).join(StaffTeam, col(StaffTeam.team_id) == Team.id)
                .where(StaffTeam.staff_id == staff.id).order_by(Team.code)
            ).all()
            state = "active" if staff.active else "inactive"
            typer.echo(f"{staff.id}\t{staff.name}\t{staff.role}\t{','.join(codes)}\t{state}")


@users_app.command("token")
def users_token(name_or_id: Annotated[str, typer.Argument(help="Name, email or id")]) -> None:
    """Issue a new API token for a user; the last line printed is the token (shown once)."""
    with _store() as session:
        staff = _find_staff(session, name_or_id)
        if not staff.active:
            raise _refuse(f"user {staff.id} is inactive")
        token = _issue_token(session, staff, "cli")
    typer.echo(f"new API token for {staff.name} (id {staff.id}), shown once:")
    typer.echo(token)


@users_app.command("revoke-tokens")
def users_revoke_tokens(name_or_id: Annotated[str, typer.Argument(help="Name, email or id")]) -> None:
    """Revoke every API token of a user at once."""
    with _store() as session:
        staff = _find_staff(session, name_or_id)
        tokens = session.exec(
            select(ApiToken).where(ApiToken.staff_id == staff.id, col(ApiToken.revoked_at).is_(None))
        ).all()
        now = utcnow()
        for token in tokens:
            token.revoked_at = now
            session.add(token)
        _audit(session, "admin.tokens_revoked", {"staff_id": staff.id, "count": len(tokens)})
    typer.echo(f"revoked {len(tokens)} token(s) of {staff.name} (id {staff.id})")


@users_app.command("set-password")
def users_set_password(
    name_or_id: Annotated[str, typer.Argument(help="Name, email or id")],
    password: Annotated[str, typer.Option(
        prompt=True, hide_input=True, confirmation_prompt=True,
        help="Prompted and not echoed when left out",
    )],
) -> None:
    """Set a user's console password (argon2); their open console sessions end."""
    try:
        password_hash = hash_password(password)
    except PasswordTooWeak as weak:
        raise _refuse(str(weak)) from None
    with _store() as session:
        staff = _find_staff(session, name_or_id)
        if not staff.email:
            raise _refuse(f"user {staff.id} has no email to log in with; add one first")
        staff.password_hash = password_hash
        session.add(staff)
        _audit(session, "admin.password_set", {"staff_id": staff.id})
    typer.echo(f"password set for {staff.name} (id {staff.id}); log in as {staff.email}")


@users_app.command("deactivate")
def users_deactivate(name_or_id: Annotated[str, typer.Argument(help="Name, email or id")]) -> None:
    """Stop a user from signing in or using any token (their history stays)."""
    with _store() as session:
        staff = _find_staff(session, name_or_id)
        staff.active = False
        session.add(staff)
        _audit(session, "admin.user_deactivated", {"staff_id": staff.id})
    typer.echo(f"user {staff.name} (id {staff.id}) deactivated")


# --- audit -------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[str | None, typer.Option(
        "--anchor", help="A head hash printed by an earlier verify: it must still be in the chain",
    )] = None,
) -> None:
    """Check the hash chain; exit 1 naming the first entry that does not fit."""
    with _store() as session:
        result = verify_chain(session, anchor=anchor)
    if result.ok:
        typer.echo(f"audit chain intact: {result.checked} entries checked")
        typer.echo(f"head {result.head or '(empty)'}")
        return
    where = f"at entry id {result.first_broken_id}" if result.first_broken_id else "at its end"
    raise _refuse(
        f"audit chain BROKEN {where}: {result.reason} "
        f"({result.checked} entries before it are intact)", 1,
    )


def _parse_when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _refuse(f"{option}: {value!r} is not an ISO 8601 date or time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@audit_app.command("export")
def audit_export(
    person: Annotated[int | None, typer.Option("--person", help="Person id")] = None,
    start: Annotated[str | None, typer.Option("--from", help="From (inclusive), ISO 8601")] = None,
    end: Annotated[str | None, typer.Option("--to", help="To (exclusive), ISO 8601")] = None,
) -> None:
    """Write the trail for a person and/or a period to stdout as CSV (times in UTC)."""
    if person is None and start is None and end is None:
        raise _refuse("give --person ID, or --from/--to, or both")
    start_at, end_at = _parse_when(start, "--from"), _parse_when(end, "--to")
    if start_at and end_at and end_at <= start_at:
        raise _refuse("--to must be after --from")
    with _store() as session:
        text = export_csv(session, person_id=person, start=start_at, end=end_at)
        _audit(session, "audit.exported", {
            "person_id": person, "from": start_at.isoformat() if start_at else None,
            "to": end_at.isoformat() if end_at else None, "rows": text.count("\n") - 1,
        })
    sys.stdout.write(text)


# --- payload keys --------------------------------------------------------------------------


@keys_app.command("new")
def keys_new(key_id: Annotated[str, typer.Argument(help="A new key id, e.g. k3")]) -> None:
    """Print a fresh "id:base64key" payload key entry.

    To rotate, put it FIRST in HANDRAIL_CODEC_KEYS (it encrypts from then on) and keep the older
    keys after it (they still decrypt what they sealed)."""
    try:
        typer.echo(new_key_entry(key_id))
    except CodecKeyError as bad:
        raise _refuse(str(bad)) from None


@keys_app.command("check")
def keys_check() -> None:
    """Load the configured payload keys and name them (never the key material)."""
    try:
        keyring = keyring_from_settings(get_settings())
    except CodecKeyError as bad:
        raise _refuse(str(bad), 1) from None
    ids = [key_id for key_id, _ in keyring.keys]
    typer.echo(f"payload keys OK: {ids[0]} encrypts; {', '.join(ids)} decrypt")
