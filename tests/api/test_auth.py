"""Who may call the API: bearer tokens, roles, and each team seeing only its own people."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from api_world import ON_POSTGRES, add_transition
from sqlmodel import Session, select

from handrail.store.models import ApiToken, Staff


def test_no_token_is_401_with_a_bearer_challenge(api):
    answer = api.get("/api/transitions")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_unknown_token_is_401(api):
    answer = api.get("/api/transitions", headers={"Authorization": "Bearer hr_not-a-real-token"})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_basic_auth_is_not_a_token(api, world):
    answer = api.get("/api/transitions", headers={"Authorization": f"Basic {world.tokens['coordinator']}"})
    assert answer.status_code == 401


def test_revoked_token_is_401(api, world):
    with Session(world.engine) as session:
        token = session.exec(
            select(ApiToken).where(ApiToken.staff_id == world.staff_ids["coordinator"])
        ).one()
        token.revoked_at = datetime.now(UTC)
        session.add(token)
        session.commit()
    assert api.get("/api/transitions", headers=world.auth("coordinator")).status_code == 401


def test_deactivated_staff_token_is_401(api, world):
    with Session(world.engine) as session:
        staff = session.get(Staff, world.staff_ids["clinician"])
        staff.active = False
        session.add(staff)
        session.commit()
    assert api.get("/api/transitions", headers=world.auth("clinician")).status_code == 401


def test_admin_cannot_read_clinical_records(api, world):
    answer = api.get("/api/transitions", headers=world.auth("admin"))
    assert answer.status_code == 403
    assert "admin" in answer.json()["detail"]


@pytest.mark.parametrize("api_engine", ["sqlite", ON_POSTGRES], indirect=True)
def test_lists_show_only_the_users_own_teams(api, world):
    add_transition(world, transition_id="handoff-north-1", team_id=world.north_id)
    add_transition(world, transition_id="handoff-south-1", team_id=world.south_id)

    north = api.get("/api/transitions", headers=world.auth("coordinator")).json()
    south = api.get("/api/transitions", headers=world.auth("south_coordinator")).json()

    assert [t["id"] for t in north] == ["handoff-north-1"]
    assert [t["id"] for t in south] == ["handoff-south-1"]


def test_another_teams_transition_is_404_not_403(api, world, temporal):
    add_transition(world, transition_id="handoff-south-2", team_id=world.south_id)

    read = api.get("/api/transitions/handoff-south-2", headers=world.auth("coordinator"))
    act = api.post(
        "/api/transitions/handoff-south-2/actions/close", json={"reason": "duplicate"},
        headers=world.auth("coordinator"),
    )

    assert read.status_code == 404
    assert act.status_code == 404
    assert read.json()["detail"] == api.get(
        "/api/transitions/handoff-nobody", headers=world.auth("coordinator")
    ).json()["detail"]
    assert not [c for c in temporal.calls if c[0] == "update"]

