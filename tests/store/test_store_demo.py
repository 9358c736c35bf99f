"""Demo data: every role staffed, slots reserved, tokens that authenticate, and no duplicates."""

from __future__ import annotations

from collections import Counter

from sqlmodel import func, select

from handrail.domain.tasks import Role
from handrail.store.demo import seed_demo
from handrail.store.models import ApiToken, Staff, StaffTeam, StepUpSlot, Team
from handrail.store.tokens import hash_token


def _counts(session) -> dict[str, int]:
    return {
        model.__name__: session.exec(select(func.count()).select_from(model)).one()
        for model in (Team, Staff, StaffTeam, ApiToken, StepUpSlot)
    }


def _roles_in(session, code: str) -> Counter:
    rows = session.exec(
        select(Staff.role)
        .join(StaffTeam, StaffTeam.staff_id == Staff.id)
        .join(Team, Team.id == StaffTeam.team_id)
        .where(Team.code == code)
    ).all()
    return Counter(rows)


def test_seed_demo_staffs_both_teams_and_every_role(session):
    logins = seed_demo(session)
    session.commit()

    teams = {team.code: team.name for team in session.exec(select(Team)).all()}
    assert teams == {"crisis-north": "Crisis Team North", "community-east": "Community Team East"}
    north = _roles_in(session, "crisis-north")
    assert north[Role.transition_coordinator] >= 2 and north[Role.clinician] >= 2
    for role in (Role.care_coordinator, Role.supervisor, Role.clinical_lead, Role.crisis_worker):
        assert north[role] >= 1, role
    assert sum(_roles_in(session, "community-east").values()) >= 3
    assert {login.role for login in logins} == {role.value for role in Role}
    assert all(login.email.endswith("@handrail.example") for login in logins)


def test_seed_demo_reserves_step_up_slots_per_team(session):
    seed_demo(session)
    session.commit()

    slots = Counter(
        session.exec(select(Team.code).join(StepUpSlot, StepUpSlot.team_id == Team.id)).all()
    )
    assert slots == {"crisis-north": 3, "community-east": 2}


def test_seed_demo_twice_adds_nothing_and_returns_no_new_logins(session):
    first = seed_demo(session)
    session.commit()
    before = _counts(session)

    second = seed_demo(session)
    session.commit()

    assert len(first) == before["Staff"] and len(second) == 0
    assert _counts(session) == before


def test_demo_tokens_are_stored_only_as_their_hash_and_name_their_user(session):
    logins = seed_demo(session)
    session.commit()

    for login in logins:
        row = session.exec(
            select(ApiToken).where(ApiToken.token_hash == hash_token(login.token))
        ).one()
        assert session.get(Staff, row.staff_id).email == login.email
        assert row.token_hash != login.token and len(row.token_hash) == 64
    assert len({login.token for login in logins}) == len(logins)
    stored = " ".join(session.exec(select(ApiToken.token_hash)).all())
    assert not any(login.token in stored for login in logins)


def test_demo_logins_text_lists_every_new_login_once(session):
    logins = seed_demo(session)

    text = logins.as_text()

    for login in logins:
        assert text.count(login.token) == 1 and login.email in text
    # `handrail dev` reads the file back: role, team ("-" for none), e-mail, token per line.
    lines = [line.split() for line in text.splitlines() if not line.startswith("#")]
    assert [(role, email, token) for role, _, email, token in lines] == [
        (login.role, login.email, login.token) for login in logins
    ]
