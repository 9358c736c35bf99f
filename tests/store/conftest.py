"""Builders for store tests: the demo teams and staff, and rows of synthetic transitions."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from handrail.store.demo import seed_demo
from handrail.store.models import OutboxMessage, Person, Staff, StaffTeam, Task, Team, Transition

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@dataclass
class DemoWorld:
    session: Session
    north: Team
    east: Team

    def members(self, team: Team, role: str) -> list[Staff]:
        return list(self.session.exec(
            select(Staff)
            .join(StaffTeam, StaffTeam.staff_id == Staff.id)
            .where(StaffTeam.team_id == team.id, Staff.role == role)
            .order_by(Staff.id)
        ).all())

    def staff(self, team: Team, role: str) -> Staff:
        return self.members(team, role)[0]


class RowBuilder:
    """Adds synthetic rows with the fields a query looks at; everything else is plain filler."""

    def __init__(self, session: Session):
        self.session = session
        self._numbers = itertools.count(1)

    def person(self, given_name: str = "Test", family_name: str = "Person") -> Person:
        person = Person(given_name=given_name, family_name=family_name)
        self.session.add(person)
        self.session.flush()
        return person

    def transition(self, team: Team, *, person: Person | None = None, created_at: datetime = NOW,
                   kind: str = "handoff", status: str = "open", owner: Staff | None = None,
                   next_due_at: datetime | None = None) -> Transition:
        number = next(self._numbers)
        transition = Transition(
            id=f"handoff-test-{number:04d}", kind=kind, status=status, stage="recorded",
            person_id=(person or self.person(family_name=f"Person{number}")).id, team_id=team.id,
            owner_id=owner.id if owner else None, policy_version="test", created_at=created_at,
            next_due_at=next_due_at,
        )
        self.session.add(transition)
        self.session.flush()
        return transition

    def task(self, transition: Transition, *, owner: Staff | None = None,
             due_at: datetime | None = None, status: str = "requested", title: str = "") -> Task:
        number = next(self._numbers)
        task = Task(
            key=f"{transition.id}.task-{number}", transition_id=transition.id,
            workflow_id=transition.id, kind="outreach_call", title=title or f"task {number}",
            status=status, team_id=transition.team_id, owner_id=owner.id if owner else None,
            due_at=due_at,
        )
        self.session.add(task)
        self.session.flush()
        return task

    def outbox(self, transition: Transition | None, *, created_at: datetime,
               person: Person | None = None) -> OutboxMessage:
        number = next(self._numbers)
        person_id = transition.person_id if transition else (person or self.person()).id
        message = OutboxMessage(
            key=f"outbox-{number}", kind="sms", to="+447700900123", body="A reminder.",
            person_id=person_id, transition_id=transition.id if transition else None,
            workflow_id=transition.id if transition else "none", created_at=created_at,
        )
        self.session.add(message)
        self.session.flush()
        return message


@pytest.fixture
def world(session) -> DemoWorld:
    seed_demo(session)
    session.commit()
    teams = {team.code: team for team in session.exec(select(Team)).all()}
    return DemoWorld(session=session, north=teams["crisis-north"], east=teams["community-east"])


@pytest.fixture
def rows(session) -> RowBuilder:
    return RowBuilder(session)


@pytest.fixture
def now() -> datetime:
    return NOW
