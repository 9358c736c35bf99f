"""Demo data for the embedded stack: the store seeded, the demo logins kept, and three synthetic
discharges posted through the public API on a first start, one of them then waiting for a
step-up decision.

Synthetic people only: invented names, phone numbers from Ofcom's drama range (07700 900xxx),
identifiers in a demo namespace.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func
from sqlmodel import select

from ..config import Settings

log = logging.getLogger("handrail.dev")
LOGINS_FILE = "demo-logins.txt"
DEMO_SYSTEM = "urn:handrail:demo-mrn"
STARTING_ROLES = ("transition_coordinator", "crisis_worker", "supervisor")
STEP_UP_ROLES = ("clinician", "supervisor")  # who may ask for the demo's step-up
# One of the demo people also waits for a step-up decision, so the console's Approvals page and
# the capacity board have something to show on a first start.
DEMO_STEP_UP_PERSON = 2
DEMO_STEP_UP = {
    "urgency": "routine",
    "reason": "Two missed sessions since the crisis visit; sleeping badly, not working.",
    "indicators": {"missed_sessions": 2, "functional_decline": True, "housing_instability": True},
}
RECORDED_WITHIN = 15.0  # seconds for the demo handoff to be recorded (supervision waits meanwhile)

DEMO_PEOPLE = [
    ("emergency_department", "demo-ed", "Robin", "Example", "+447700900101", "Sleep loss; argument at home"),
    ("crisis_stabilization", "demo-crisis-unit", "Sam", "Sample", "+447700900102", "Job loss last month"),
    ("crisis_line", "demo-crisis-line", "Jordan", "Placeholder", "+447700900103", "Housing uncertain"),
]


def demo_notification(index: int, *, now: datetime, team: str | None = None) -> dict:
    source, system, given, family, phone, stressor = DEMO_PEOPLE[index]
    notification = {
        "source": source,
        "source_system": system,
        "encounter_id": f"demo-encounter-{index + 1}",
        "event_time": (now - timedelta(hours=index + 1)).isoformat(),
        "person": {
            "identifiers": [{"system": DEMO_SYSTEM, "value": f"DEMO-{index + 1:04d}"}],
            "given_name": given,
            "family_name": family,
            "birth_date": f"199{index}-0{index + 1}-15",
            "phone": phone,
            "time_zone": "Europe/London",
        },
        "summary": {
            "risk_factors": ["previous self-harm"] if index == 0 else [],
            "current_medications": ["sertraline 50 mg"] if index != 2 else [],
            "immediate_stressors": [stressor],
            "safety_plan": "Call the crisis line; stay with a friend tonight.",
            "next_step_recommendation": "Follow-up with the community team within 72 hours.",
        },
    }
    if team:
        notification["team"] = team
    return notification


def transitions_in_store(settings: Settings) -> int:
    from ..store.db import make_engine, session_scope
    from ..store.models import Transition

    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(engine) as session:
            return session.exec(select(func.count()).select_from(Transition)).one()
    finally:
        engine.dispose()


def starting_token(settings: Settings, roles: tuple[str, ...] = STARTING_ROLES) -> str | None:
    """A saved demo token of someone in one of `roles` (in that order) on the default team."""
    logins = read_logins(settings.data_dir)
    default_team = settings.load_policy().default_team
    for role in roles:
        for login in logins:
            if login["role"] == role and login["team"] == default_team:
                return login["token"]
    return None


async def post_demo_notifications(settings: Settings, api_url: str) -> int:
    """Post the three demo notifications when the store has no transition yet."""
    if transitions_in_store(settings):
        return 0
    token = starting_token(settings)
    if token is None:
        raise RuntimeError("no demo login that may start a handoff was found")
    now = datetime.now(UTC)
    posted = 0
    async with httpx.AsyncClient(
        base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        for index in range(len(DEMO_PEOPLE)):
            response = await http.post("/api/handoffs", json=demo_notification(index, now=now))
            if response.status_code not in (200, 202):
                raise RuntimeError(
                    f"POST /api/handoffs answered {response.status_code}: {response.text[:200]}"
                )
            posted += 1
    try:
        await _post_demo_step_up(settings, api_url)
    except Exception as err:  # noqa: BLE001 - the discharges are the demo; the step-up a bonus
        log.warning("could not ask for the demo step-up: %s", err)
    return posted


async def _post_demo_step_up(settings: Settings, api_url: str) -> None:
    """Ask for a step-up for one demo person, once their handoff is recorded (its caseload)."""
    token = starting_token(settings, STEP_UP_ROLES)
    if token is None:
        raise RuntimeError("no demo login that may ask for a step-up was found")
    person = DEMO_PEOPLE[DEMO_STEP_UP_PERSON]
    name = f"{person[2]} {person[3]}"
    async with httpx.AsyncClient(
        base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        deadline = asyncio.get_running_loop().time() + RECORDED_WITHIN
        while True:
            listed = await http.get("/api/transitions", params={"kind": "handoff"})
            found = [t for t in listed.json() if t.get("person_name") == name] if listed.is_success else []
            if found:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"the demo handoff of {name} was not recorded in time")
            await asyncio.sleep(0.5)
        response = await http.post("/api/step-ups",
                                   json={"person_id": found[0]["person_id"], **DEMO_STEP_UP})
        if response.status_code not in (200, 202):
            raise RuntimeError(f"POST /api/step-ups answered {response.status_code}: {response.text[:200]}")


def prepare_store(settings: Settings) -> str:
    """Migrations, then demo data; returns the demo logins made this time (printed once)."""
    from ..store.migrate import upgrade

    upgrade(settings.resolved_database_url)
    _, made = seed_and_save_logins(settings)
    return made


def seed_and_save_logins(settings: Settings) -> tuple[Path, str]:
    """Seed the demo data; append logins made this time to <data_dir>/demo-logins.txt."""
    from ..store.db import make_engine, session_scope
    from ..store.demo import seed_demo

    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(engine) as session:
            logins = seed_demo(session)
    finally:
        engine.dispose()
    text = format_logins(logins)
    logins_file = settings.data_dir / LOGINS_FILE
    if text:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(logins_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            out.write(text)
    return logins_file, text


def format_logins(logins) -> str:
    """One line per login made this time: role, team, e-mail, token (the store's layout), and
    the console password when one was set this time."""
    if not len(logins) and not getattr(logins, "password", None):
        return ""
    return logins.as_text()


def read_logins(data_dir: Path) -> list[dict[str, str]]:
    """The demo logins saved by `handrail dev` / `handrail seed`: role, team, email, token."""
    path = data_dir / LOGINS_FILE
    if not path.exists():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) != 4 or line.startswith("#"):
            continue
        role, team, email, token = parts
        found.append({"role": role, "team": team, "email": email, "token": token})
    return found
