"""Intake fixtures: a migrated SQLite store with the default team and staff, the Temporal
stand-in, and the API app with the intake router."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from intake_world import FakeTemporal, IntakeWorld
from sqlmodel import Session

from handrail.api.app import create_app
from handrail.config import Settings
from handrail.store.models import ApiToken, Staff, StaffTeam, Team
from handrail.store.tokens import hash_token, new_token


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, id_key="intake-test-key", policy="seconds",
                    temporal_address="127.0.0.1:1")


@pytest.fixture
def policy(settings):
    return settings.load_policy()


@pytest.fixture
def world(sqlite_engine) -> IntakeWorld:
    with Session(sqlite_engine, expire_on_commit=False) as session:
        team = Team(code="crisis-north", name="Crisis North")  # the seconds policy's default team
        session.add(team)
        session.flush()
        tokens = {}
        for role in ("crisis_worker", "clinician", "supervisor"):
            staff = Staff(name=f"Test {role}", role=role)
            session.add(staff)
            session.flush()
            session.add(StaffTeam(staff_id=staff.id, team_id=team.id))
            token = new_token()
            session.add(ApiToken(staff_id=staff.id, token_hash=hash_token(token)))
            tokens[role] = token
        session.commit()
    return IntakeWorld(sqlite_engine, tokens)


@pytest.fixture
def temporal() -> FakeTemporal:
    return FakeTemporal()


@pytest.fixture
def app(settings, world, temporal):
    return create_app(settings, engine=world.engine, temporal_client=temporal)


@pytest.fixture
def api(app) -> TestClient:
    with TestClient(app) as client:
        yield client


@pytest.fixture(autouse=True)
def _workflow_accepts_encounter_events(request, monkeypatch):
    """The fake-client tests describe the agreed `encounter_event` signal; the real-workflow
    tests see whatever the deployed workflow supports."""
    if not request.module.__name__.endswith("test_intake_workflow"):
        from handrail.intake import dispatch

        monkeypatch.setattr(dispatch, "encounter_events_supported", lambda: True)
    yield
