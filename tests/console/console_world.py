"""The console tests' world: a store with two teams and staff in each role (with console passwords),
a handoff with tasks and an outbox message per team, and the app on a Temporal stand-in.

The browser tests (test_console_browser.py) use their own fixtures: the real `handrail dev`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlmodel import Session
from temporalio.service import RPCError, RPCStatusCode

from handrail.api.app import create_app
from handrail.config import Settings
from handrail.domain.tasks import Role
from handrail.security import passwords
from handrail.security.sessions import cookie_name, issue_session
from handrail.store.models import OutboxMessage, Person, Staff, StaffTeam, Task, Team, Transition
from handrail.store.types import utcnow

PASSWORD = "console-test-password"


@pytest.fixture(autouse=True)
def quick_argon2(monkeypatch):
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", cheap)
    monkeypatch.setattr(passwords, "_DUMMY_HASH", cheap.hash("no-such-account"))


class FakeHandle:
    def __init__(self, temporal: FakeTemporal, workflow_id: str) -> None:
        self.temporal, self.workflow_id = temporal, workflow_id

    async def execute_update(self, update: str, *, args: Any = (), **_: Any) -> Any:
        self.temporal.calls.append(("update", self.workflow_id, update, list(args)))
        if self.temporal.update_error is not None:
            raise self.temporal.update_error
        return {"update": update}

    async def signal(self, name: str, arg: Any = None, **_: Any) -> None:
        self.temporal.calls.append(("signal", self.workflow_id, name, arg))

    async def query(self, *_: Any, **__: Any) -> Any:
        raise RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")


@dataclass
class FakeTemporal:
    calls: list = field(default_factory=list)
    update_error: BaseException | None = None

    def get_workflow_handle(self, workflow_id: str, **_: Any) -> FakeHandle:
        return FakeHandle(self, workflow_id)


@dataclass
class World:
    engine: Any
    staff: dict[str, int]  # role (north) or "south_coordinator" -> staff id
    emails: dict[str, str]
    transitions: dict[str, str]  # north / south
    tasks: dict[str, int]  # mine (the coordinator's), queue (unowned), south
    messages: dict[str, int]


@pytest.fixture
def world(sqlite_engine) -> World:
    now = datetime.now(UTC)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        teams = {"north": Team(code="crisis-north", name="Crisis North"),
                 "south": Team(code="crisis-south", name="Crisis South")}
        session.add_all(teams.values())
        session.flush()
        staff, emails = {}, {}
        members = [(role.value, role, "north") for role in Role]
        members.append(("south_coordinator", Role.transition_coordinator, "south"))
        password_hash = passwords.hash_password(PASSWORD)
        for key, role, side in members:
            email = f"{key}@console.test"
            row = Staff(name=f"Test {key}", role=role.value, email=email, password_hash=password_hash)
            session.add(row)
            session.flush()
            if role != Role.admin:
                session.add(StaffTeam(staff_id=row.id, team_id=teams[side].id))
            staff[key], emails[key] = row.id, email
        transitions, tasks, messages = {}, {}, {}
        for side, team in teams.items():
            person = Person(given_name="Robin" if side == "north" else "Sasha",
                            family_name=f"Console{side.title()}", phone="+447700900321")
            session.add(person)
            session.flush()
            transitions[side] = f"handoff-console-{side}"
            session.add(Transition(id=transitions[side], kind="handoff", stage="awaiting_booking",
                                   person_id=person.id, team_id=team.id, policy_version="test",
                                   owner_id=staff["transition_coordinator"] if side == "north" else None,
                                   event_time=now - timedelta(hours=2),
                                   next_due_at=now + timedelta(hours=3)))
            session.flush()
            message = OutboxMessage(key=f"{side}-m", kind="sms", to="+447700900321",
                                    body="Your appointment is on Monday. Reply YES.", person_id=person.id,
                                    transition_id=transitions[side], workflow_id=transitions[side])
            session.add(message)
            session.flush()
            messages[side] = message.id
        for name, owner, due in [("mine", staff["transition_coordinator"], now + timedelta(hours=5)),
                                 ("queue", None, now - timedelta(minutes=30))]:
            task = Task(key=f"north-{name}", transition_id=transitions["north"],
                        workflow_id=transitions["north"], kind="book_first_contact",
                        title=f"Book first contact ({name})", team_id=teams["north"].id,
                        owner_id=owner, due_at=due)
            session.add(task)
            session.flush()
            tasks[name] = task.id
        south_task = Task(key="south-task", transition_id=transitions["south"],
                          workflow_id=transitions["south"], kind="book_first_contact",
                          title="Book first contact (south)", team_id=teams["south"].id)
        session.add(south_task)
        session.commit()
        tasks["south"] = south_task.id
    return World(sqlite_engine, staff, emails, transitions, tasks, messages)


@pytest.fixture
def temporal() -> FakeTemporal:
    return FakeTemporal()


@pytest.fixture
def client(world, temporal, tmp_path):
    settings = Settings(data_dir=tmp_path, id_key="test-key", policy="seconds",
                        temporal_address="127.0.0.1:1", public_base_url="http://testserver",
                        session_secret="c" * 40)
    app = create_app(settings, engine=world.engine, temporal_client=temporal)
    with TestClient(app, client=("198.51.100.7", 5000), follow_redirects=False) as test_client:
        yield test_client


def log_in_as(client: TestClient, world: World, who: str) -> str:
    """A console session for `who` (cookie set on the client); returns its CSRF token."""
    settings = client.app.state.settings
    with Session(world.engine) as session:
        cookie, data = issue_session(settings, session.get(Staff, world.staff[who]), utcnow())
    client.cookies.set(cookie_name(settings), cookie)
    return data.csrf_token
