"""API fixtures: a migrated SQLite store with two teams and their staff, the Temporal
stand-in, and a TestClient on the app built with both injected."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_world import FakeTemporal, World
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from handrail.api.app import create_app
from handrail.config import Settings
from handrail.store import migrate
from handrail.store.db import make_engine
from handrail.store.models import ApiToken, Person, Staff, StaffTeam, Team
from handrail.store.tokens import hash_token, new_token

STAFF = {
    # name: (role, team)
    "coordinator": ("transition_coordinator", "north"),
    "clinician": ("clinician", "north"),
    "supervisor": ("supervisor", "north"),
    "admin": ("admin", "north"),
    "south_coordinator": ("transition_coordinator", "south"),
}


@pytest.fixture
def api_engine(request) -> Iterator[Engine]:
    """SQLite by default; `@pytest.mark.parametrize("api_engine", ["sqlite", ON_POSTGRES],
    indirect=True)` runs a test on both."""
    database = getattr(request, "param", "sqlite")
    if database == "sqlite":
        yield request.getfixturevalue("sqlite_engine")
        return
    url = request.getfixturevalue("postgres_url")
    migrate.upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def world(api_engine) -> World:
    with Session(api_engine, expire_on_commit=False) as session:
        north = Team(code="crisis-north", name="Crisis North")
        south = Team(code="crisis-south", name="Crisis South")
        session.add_all([north, south])
        session.flush()
        teams = {"north": north.id, "south": south.id}
        tokens, staff_ids = {}, {}
        for name, (role, team) in STAFF.items():
            staff = Staff(name=f"Test {name}", role=role)
            session.add(staff)
            session.flush()
            session.add(StaffTeam(staff_id=staff.id, team_id=teams[team]))
            token = new_token()
            session.add(ApiToken(staff_id=staff.id, token_hash=hash_token(token)))
            tokens[name], staff_ids[name] = token, staff.id
        person = Person(given_name="Alex", family_name="Testperson", phone="+447700900123")
        session.add(person)
        session.commit()
        return World(api_engine, north.id, south.id, tokens, staff_ids, person.id)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        data_dir=tmp_path, id_key="test-key", policy="seconds",
        temporal_address="127.0.0.1:1",  # never used: the fake is injected
    )


@pytest.fixture
def temporal() -> FakeTemporal:
    return FakeTemporal()


@pytest.fixture
def api(settings, world, temporal) -> TestClient:
    app = create_app(settings, engine=world.engine, temporal_client=temporal)
    with TestClient(app, client=("203.0.113.9", 50000)) as client:
        yield client


