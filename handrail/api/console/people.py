"""Small lookups the pages share: who the people behind a list of transitions are, the staff of
a team, and the messages of the embedded outbox shown with a transition."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlmodel import Session, col, select

from ...store.models import Person, Staff, StaffTeam, Team, Transition
from ...store.queries import display_name


def people_of(session: Session, transition_ids: Iterable[str | None],
              team_ids: Collection[int]) -> dict[str, str]:
    """transition id → the person's name, only for transitions of the viewer's teams."""
    wanted = {t for t in transition_ids if t}
    if not wanted:
        return {}
    rows = session.exec(
        select(Transition.id, Person)
        .join(Person, col(Person.id) == Transition.person_id)
        .where(col(Transition.id).in_(wanted), col(Transition.team_id).in_(list(team_ids)))
    ).all()
    return {transition_id: display_name(person) for transition_id, person in rows}


def staff_names(session: Session, staff_ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {s for s in staff_ids if s}
    if not wanted:
        return {}
    return {s.id: s.name for s in session.exec(select(Staff).where(col(Staff.id).in_(wanted))).all()}


def team_staff(session: Session, team_ids: Collection[int]) -> list[Staff]:
    return list(session.exec(
        select(Staff).join(StaffTeam, col(StaffTeam.staff_id) == Staff.id)
        .where(col(StaffTeam.team_id).in_(list(team_ids)), Staff.active == True)  # noqa: E712
        .order_by(col(Staff.name)).distinct()
    ).all())


def teams_of(session: Session, team_ids: Collection[int]) -> list[Team]:
    return list(session.exec(select(Team).where(col(Team.id).in_(list(team_ids)))
                             .order_by(col(Team.code))).all())
