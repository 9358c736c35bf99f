"""Demo data for the embedded stack: two teams, synthetic staff in every role, step-up slots,
an API token per demo user, and one console password shared by the demo users (a demo, so one
password to type; made fresh per data dir). Idempotent: a second run finds everything and adds
nothing.

Every name here is invented; the e-mail domain is the reserved `handrail.example`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sqlmodel import Session, select

from ..domain.tasks import Role
from ..security.passwords import hash_password
from .models import ApiToken, Staff, StaffTeam, StepUpSlot, Team
from .tokens import hash_token, new_token

DEMO_EMAIL_DOMAIN = "handrail.example"
TOKEN_LABEL = "demo"
# The logins file's line for the console password (a comment, so token parsers skip it).
CONSOLE_PASSWORD_PREFIX = "# console password of every demo login (/console/login):"

DEMO_TEAMS: dict[str, str] = {
    "crisis-north": "Crisis Team North",  # the default policy's default_team
    "community-east": "Community Team East",
}

# (name, role, team code or None) — synthetic people only.
DEMO_STAFF: list[tuple[str, Role, str | None]] = [
    ("Morgan Tate", Role.transition_coordinator, "crisis-north"),
    ("Riley Okafor", Role.transition_coordinator, "crisis-north"),
    ("Sam Lindqvist", Role.clinician, "crisis-north"),
    ("Jordan Achterberg", Role.clinician, "crisis-north"),
    ("Casey Moreau", Role.care_coordinator, "crisis-north"),
    ("Avery Quinlan", Role.supervisor, "crisis-north"),
    ("Dr Robin Hale", Role.clinical_lead, "crisis-north"),
    ("Dr Sasha Ingram", Role.on_call_senior, "crisis-north"),  # the step-up ladder's last rung
    ("Toni Varga", Role.crisis_worker, "crisis-north"),
    ("Alex Brennan", Role.transition_coordinator, "community-east"),
    ("Kit Osei", Role.clinician, "community-east"),
    ("Jamie Fairweather", Role.care_coordinator, "community-east"),
    ("Drew Castellano", Role.supervisor, "community-east"),
    ("Pat Admin", Role.admin, None),  # admins manage users and teams, and belong to none
]

DEMO_SLOTS: dict[str, int] = {"crisis-north": 3, "community-east": 2}


@dataclass(frozen=True)
class DemoLogin:
    name: str
    email: str
    role: str
    team: str | None
    token: str


@dataclass
class DemoLogins:
    """The logins seed_demo created this time; the tokens exist nowhere else once dropped."""

    logins: list[DemoLogin] = field(default_factory=list)
    password: str | None = None  # the console password set this time on demo users without one

    def __len__(self) -> int:
        return len(self.logins)

    def __iter__(self):
        return iter(self.logins)

    def as_text(self) -> str:
        """One line per login, for printing once and for <data_dir>/demo-logins.txt."""
        lines = ["# Handrail demo logins (synthetic staff). API: Authorization: Bearer <token>"]
        for login in self.logins:
            lines.append(
                f"{login.role:<24} {login.team or '-':<16} {login.email:<40} {login.token}"
            )
        if self.password:
            lines.append(f"{CONSOLE_PASSWORD_PREFIX} {self.password}")
        return "\n".join(lines) + "\n"


def demo_email(name: str) -> str:
    local = "".join(ch for ch in name.lower().replace(" ", ".") if ch.isalnum() or ch == ".")
    return f"{local.removeprefix('dr.')}@{DEMO_EMAIL_DOMAIN}"


def seed_demo(session: Session) -> DemoLogins:
    """Create what is missing of the demo data; the caller commits. Returns the new logins."""
    teams = {code: _team(session, code, name) for code, name in DEMO_TEAMS.items()}
    for code, count in DEMO_SLOTS.items():
        _slots(session, teams[code], count)
    created = DemoLogins()
    password_hash: str | None = None  # hashed once: argon2 is slow on purpose
    for name, role, team_code in DEMO_STAFF:
        email = demo_email(name)
        staff = session.exec(select(Staff).where(Staff.email == email)).first()
        if staff is None:
            staff = Staff(name=name, role=role.value, email=email)
            session.add(staff)
            session.flush()
            token = new_token()
            session.add(ApiToken(staff_id=staff.id, token_hash=hash_token(token), label=TOKEN_LABEL))
            created.logins.append(DemoLogin(name, email, role.value, team_code, token))
        if staff.password_hash is None:
            if password_hash is None:
                created.password = secrets.token_urlsafe(12)
                password_hash = hash_password(created.password)
            staff.password_hash = password_hash
            session.add(staff)
        if team_code is not None and session.get(StaffTeam, (staff.id, teams[team_code].id)) is None:
            session.add(StaffTeam(staff_id=staff.id, team_id=teams[team_code].id))
    session.flush()
    return created


def _team(session: Session, code: str, name: str) -> Team:
    team = session.exec(select(Team).where(Team.code == code)).first()
    if team is None:
        team = Team(code=code, name=name)
        session.add(team)
        session.flush()
    return team


def _slots(session: Session, team: Team, count: int) -> None:
    labels = {
        slot.label for slot in session.exec(select(StepUpSlot).where(StepUpSlot.team_id == team.id))
    }
    for number in range(1, count + 1):
        label = f"{team.code} slot {number}"
        if label not in labels:
            session.add(StepUpSlot(team_id=team.id, label=label))
    session.flush()
