"""The read model the API serves: lists and details, always scoped to the caller's teams.

Every function takes `team_ids` (the teams the user belongs to) and returns nothing of any other
team, so a route cannot forget the scoping; admins belong to no team and read no clinical rows.
Lists are dicts ready for JSON (transitions) or the table rows themselves (tasks, outbox).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from ..domain.tasks import OPEN_TASK_STATUSES
from .models import (
    AuditEvent,
    Contact,
    Decision,
    InboundMessage,
    OutboxMessage,
    OutreachAttempt,
    Person,
    PersonIdentifier,
    Staff,
    Task,
    Team,
    Transition,
)

OPEN_TASKS = [status.value for status in OPEN_TASK_STATUSES]
TIMELINE_HIDDEN_ACTIONS = ("read",)  # record reads belong to the audit export, not the timeline


def display_name(person: Person) -> str:
    return f"{person.given_name} {person.family_name}".strip()


def _transition_overdue(transition: Transition, now: datetime) -> bool:
    return bool(
        transition.status == "open"
        and transition.next_due_at is not None
        and transition.next_due_at < now
    )


def _staff_brief(staff: Staff | None) -> dict[str, Any] | None:
    if staff is None:
        return None
    return {"id": staff.id, "name": staff.name, "role": staff.role}


def list_transitions(
    *,
    session: Session,
    team_ids: Collection[int],
    kind: str | None = None,
    status: str | None = None,
    stage: str | None = None,
    owner_id: int | None = None,
    team_id: int | None = None,
    team_code: str | None = None,
    overdue: bool | None = None,
    now: datetime,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Newest first. `overdue=True`: open with next_due_at before `now`; False: all the others."""
    owner = aliased(Staff)
    statement = (
        select(Transition, Person, Team, owner)
        .join(Person, col(Person.id) == Transition.person_id)
        .join(Team, col(Team.id) == Transition.team_id)
        .outerjoin(owner, col(owner.id) == Transition.owner_id)
        .where(col(Transition.team_id).in_(list(team_ids)))
    )
    if kind is not None:
        statement = statement.where(Transition.kind == kind)
    if status is not None:
        statement = statement.where(Transition.status == status)
    if stage is not None:
        statement = statement.where(Transition.stage == stage)
    if owner_id is not None:
        statement = statement.where(Transition.owner_id == owner_id)
    if team_id is not None:
        statement = statement.where(Transition.team_id == team_id)
    if team_code is not None:
        statement = statement.where(Team.code == team_code)
    is_overdue = and_(Transition.status == "open", col(Transition.next_due_at) < now)
    if overdue is True:
        statement = statement.where(is_overdue)
    elif overdue is False:
        statement = statement.where(
            or_(Transition.status != "open", col(Transition.next_due_at).is_(None),
                col(Transition.next_due_at) >= now)
        )
    statement = (
        statement.order_by(col(Transition.created_at).desc(), col(Transition.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return [
        {
            "id": transition.id,
            "kind": transition.kind,
            "status": transition.status,
            "stage": transition.stage,
            "team_id": transition.team_id,
            "team": team.code,
            "person_id": transition.person_id,
            "person_name": display_name(person),
            "owner_id": transition.owner_id,
            "owner_name": owner_row.name if owner_row else None,
            "source": transition.source,
            "event_time": transition.event_time,
            "next_due_at": transition.next_due_at,
            "first_contact_due": transition.first_contact_due,
            "first_contact_at": transition.first_contact_at,
            "appointment_at": transition.appointment_at,
            "outcome": transition.outcome,
            "created_at": transition.created_at,
            "overdue": _transition_overdue(transition, now),
        }
        for transition, person, team, owner_row in session.exec(statement).all()
    ]


def get_transition_detail(
    *, session: Session, transition_id: str, team_ids: Collection[int], now: datetime | None = None
) -> dict[str, Any] | None:
    """The transition with everything it accumulated, or None (unknown or another team's)."""
    transition = session.get(Transition, transition_id)
    if transition is None or transition.team_id not in set(team_ids):
        return None
    person = session.get(Person, transition.person_id)
    team = session.get(Team, transition.team_id)
    identifiers = session.exec(
        select(PersonIdentifier)
        .where(PersonIdentifier.person_id == transition.person_id)
        .order_by(col(PersonIdentifier.id))
    ).all()
    detail = transition.model_dump()
    detail["team"] = {"id": team.id, "code": team.code, "name": team.name} if team else None
    detail["person"] = None if person is None else {
        **person.model_dump(exclude={"created_at", "updated_at"}),
        "display_name": display_name(person),
        "identifiers": [{"system": i.system, "value": i.value} for i in identifiers],
    }
    for role in ("owner", "clinician", "care_coordinator"):
        staff_id = getattr(transition, f"{role}_id")
        detail[role] = _staff_brief(session.get(Staff, staff_id) if staff_id else None)
    if now is not None:
        detail["overdue"] = _transition_overdue(transition, now)
    detail["contacts"] = _dump(session, select(Contact).where(Contact.transition_id == transition_id)
                               .order_by(col(Contact.sequence)))
    detail["tasks"] = _dump(session, select(Task).where(Task.transition_id == transition_id)
                            .order_by(col(Task.created_at), col(Task.id)))
    detail["outreach_attempts"] = _dump(
        session, select(OutreachAttempt).where(OutreachAttempt.transition_id == transition_id)
        .order_by(col(OutreachAttempt.created_at), col(OutreachAttempt.id))
    )
    detail["decisions"] = _dump(session, select(Decision).where(Decision.transition_id == transition_id)
                                .order_by(col(Decision.decided_at), col(Decision.id)))
    detail["messages_from_person"] = _dump(
        session, select(InboundMessage).where(InboundMessage.transition_id == transition_id)
        .order_by(col(InboundMessage.received_at), col(InboundMessage.id)))
    detail["timeline"] = _timeline(session, transition_id)
    return detail


def _dump(session: Session, statement) -> list[dict[str, Any]]:
    return [row.model_dump() for row in session.exec(statement).all()]


def _timeline(session: Session, transition_id: str) -> list[dict[str, Any]]:
    actor = aliased(Staff)
    statement = (
        select(AuditEvent, actor)
        .outerjoin(actor, col(actor.id) == AuditEvent.actor_id)
        .where(
            AuditEvent.transition_id == transition_id,
            col(AuditEvent.action).not_in(TIMELINE_HIDDEN_ACTIONS),
        )
        .order_by(col(AuditEvent.at), col(AuditEvent.id))
    )
    return [
        {
            **event.model_dump(exclude={"key", "prev_hash", "hash", "source"}),
            "actor_name": actor_row.name if actor_row else None,
        }
        for event, actor_row in session.exec(statement).all()
    ]


def list_tasks(
    *,
    session: Session,
    team_ids: Collection[int],
    mine_staff_id: int | None = None,
    team_id: int | None = None,
    overdue: bool | None = None,
    status_open: bool | None = True,
    now: datetime,
    limit: int = 500,
) -> list[Task]:
    """The "team" view (no `mine_staff_id`): every task of the user's teams, owned or not;
    the "mine" view: those owned by `mine_staff_id`. Overdue first, then by due time.
    `status_open`: True open only, False completed/cancelled only, None all."""
    statement = select(Task).where(col(Task.team_id).in_(list(team_ids)))
    if mine_staff_id is not None:
        statement = statement.where(Task.owner_id == mine_staff_id)
    if team_id is not None:
        statement = statement.where(Task.team_id == team_id)
    if status_open is True:
        statement = statement.where(col(Task.status).in_(OPEN_TASKS))
    elif status_open is False:
        statement = statement.where(col(Task.status).not_in(OPEN_TASKS))
    if overdue is True:
        statement = statement.where(col(Task.due_at) < now)
    elif overdue is False:
        statement = statement.where(or_(col(Task.due_at).is_(None), col(Task.due_at) >= now))
    # Ascending due time puts the overdue ones first; tasks with no due time come last.
    statement = statement.order_by(col(Task.due_at).is_(None), col(Task.due_at), col(Task.id))
    return list(session.exec(statement.limit(limit)).all())


def get_task(*, session: Session, task_id: int, team_ids: Collection[int]) -> Task | None:
    task = session.get(Task, task_id)
    if task is None or task.team_id not in set(team_ids):
        return None
    return task


def _outbox_of(team_ids: Collection[int]):
    # A message is a team's when its transition is; messages with no transition are nobody's.
    return (
        select(OutboxMessage)
        .join(Transition, col(Transition.id) == OutboxMessage.transition_id)
        .where(col(Transition.team_id).in_(list(team_ids)))
    )


def list_outbox(
    *, session: Session, team_ids: Collection[int], limit: int = 100, offset: int = 0
) -> list[OutboxMessage]:
    """Newest first; each message carries its transition_id and workflow_id."""
    statement = _outbox_of(team_ids).order_by(
        col(OutboxMessage.created_at).desc(), col(OutboxMessage.id).desc()
    )
    return list(session.exec(statement.offset(offset).limit(limit)).all())


def get_outbox_message(
    *, session: Session, message_id: int, team_ids: Collection[int]
) -> OutboxMessage | None:
    return session.exec(_outbox_of(team_ids).where(OutboxMessage.id == message_id)).first()


def latest_transition(*, session: Session, person_ids: Collection[int]) -> Transition | None:
    """The most recent transition of any of these people (one phone, more than one record)."""
    return session.exec(
        select(Transition).where(col(Transition.person_id).in_(list(person_ids)))
        .order_by(col(Transition.created_at).desc(), col(Transition.id).desc())
    ).first()
