"""The console's session cookie is the second way in: same roles and teams, plus CSRF."""

from __future__ import annotations

import pytest
from api_world import add_transition
from sqlmodel import Session

from handrail.security.sessions import cookie_name, issue_session
from handrail.store.models import Staff
from handrail.store.types import utcnow

TID = "handoff-00000000-0000-5000-8000-000000000003"


@pytest.fixture
def console(api, world, settings):
    """The coordinator logged in to the console: the API client now carries their cookie."""
    with Session(world.engine, expire_on_commit=False) as session:
        staff = session.get(Staff, world.staff_ids["coordinator"])
        staff.password_hash = "$argon2id$v=19$test-only-not-a-real-hash"
        session.add(staff)
        session.commit()
    cookie, console_session = issue_session(settings, staff, utcnow())
    api.cookies.set(cookie_name(settings), cookie)
    return console_session


def test_cookie_reads_like_a_token_within_the_users_teams(api, world, console):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    add_transition(world, transition_id="handoff-south-c", team_id=world.south_id)

    listed = api.get("/api/transitions")

    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()] == [TID]
    assert api.get("/api/transitions/handoff-south-c").status_code == 404


def test_cookie_action_without_the_csrf_token_is_refused(api, world, temporal, console):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    body = {"reason": "moved out of area"}

    forged = api.post(f"/api/transitions/{TID}/actions/close", json=body)
    wrong = api.post(f"/api/transitions/{TID}/actions/close", json=body,
                     headers={"X-CSRF-Token": "not-the-token"})
    right = api.post(f"/api/transitions/{TID}/actions/close", json=body,
                     headers={"X-CSRF-Token": console.csrf_token})

    assert (forged.status_code, wrong.status_code, right.status_code) == (403, 403, 200)
    assert [c[2] for c in temporal.calls if c[0] == "update"] == ["close"]


def test_a_password_change_ends_the_cookies_access(api, world, console):
    with Session(world.engine) as session:
        staff = session.get(Staff, world.staff_ids["coordinator"])
        staff.password_hash = "$argon2id$v=19$a-new-password"
        session.add(staff)
        session.commit()
    answer = api.get("/api/transitions")
    assert answer.status_code == 401


def test_a_forged_cookie_is_401(api, world, settings):
    api.cookies.set(cookie_name(settings), "eyJub3QiOiJzaWduZWQifQ.c2lnbmF0dXJl")
    assert api.get("/api/transitions").status_code == 401


def test_every_answer_carries_the_security_headers(api):
    headers = api.get("/healthz").headers
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
