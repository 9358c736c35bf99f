"""Writes the workflows' activities make. Every function is safe to call twice: rows carry a
unique key (or a natural one) and a repeat finds the first row instead of adding a second."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from ..domain.notification import PersonDetails
from ..domain.tasks import OPEN_TASK_STATUSES, TaskKind, TaskSpec, TaskStatus
from .models import (
    AuditEvent,
    Carer,
    Contact,
    Decision,
    OutreachAttempt,
    Person,
    PersonIdentifier,
    Staff,
    StaffTeam,
    Task,
    Team,
    Transition,
)
from .types import utcnow


def find_person(*, session: Session, details: PersonDetails) -> Person | None:
    """Match by identifier (assigning authority + value), never by name."""
    for identifier in details.identifiers:
        row = session.exec(
            select(PersonIdentifier).where(
                PersonIdentifier.system == identifier.system,
                PersonIdentifier.value == identifier.value,
            )
        ).first()
        if row is not None:
            return session.get(Person, row.person_id)
    return None


def upsert_person(*, session: Session, details: PersonDetails) -> Person:
    person = find_person(session=session, details=details)
    if person is None:
        person = Person(
            given_name=details.given_name,
            family_name=details.family_name,
            birth_date=details.birth_date,
            phone=details.phone,
            email=details.email,
            time_zone=details.time_zone,
        )
        session.add(person)
        session.flush()
    elif details.phone and not person.phone:
        person.phone = details.phone
        person.updated_at = utcnow()
    known = {
        (i.system, i.value)
        for i in session.exec(select(PersonIdentifier).where(PersonIdentifier.person_id == person.id))
    }
    for identifier in details.identifiers:
        if (identifier.system, identifier.value) not in known:
            session.add(PersonIdentifier(
                person_id=person.id, system=identifier.system, value=identifier.value))
    session.flush()
    return person


def team_by_code(*, session: Session, code: str) -> Team | None:
    return session.exec(select(Team).where(Team.code == code)).first()


def team_and_person(*, session: Session, team_code: str, person_id: int) -> tuple[Team, Person]:
    """The two rows every pathway's record step starts from; the API checked both, so a miss
    here is a fault to retry, not a refusal."""
    team = team_by_code(session=session, code=team_code)
    person = session.get(Person, person_id)
    if team is None or person is None:
        raise RuntimeError(f"team {team_code!r} or person {person_id} missing")
    return team, person


def pick_staff(*, session: Session, team_id: int, role: str) -> Staff | None:
    """The active member of the team in that role with the fewest open tasks: simple fair load."""
    open_tasks = (
        select(Task.owner_id, func.count().label("load"))
        .where(col(Task.status).in_([s.value for s in OPEN_TASK_STATUSES]))
        .group_by(Task.owner_id)
        .subquery()
    )
    statement = (
        select(Staff)
        .join(StaffTeam, StaffTeam.staff_id == Staff.id)
        .outerjoin(open_tasks, open_tasks.c.owner_id == Staff.id)
        .where(StaffTeam.team_id == team_id, Staff.role == role, Staff.active == True)  # noqa: E712
        .order_by(func.coalesce(open_tasks.c.load, 0), Staff.id)
    )
    return session.exec(statement).first()


def earlier_presentations(
    *, session: Session, person_id: int, event_time: datetime, window: timedelta, exclude_id: str
) -> list[Transition]:
    """Crisis transitions of the same person whose event falls in the window before this one."""
    statement = (
        select(Transition)
        .where(
            Transition.person_id == person_id,
            Transition.kind == "handoff",
            Transition.id != exclude_id,
            col(Transition.event_time) >= event_time - window,
            col(Transition.event_time) < event_time,
        )
        .order_by(col(Transition.event_time).desc())
    )
    return list(session.exec(statement))


def recent_step_downs(
    *, session: Session, person_id: int, event_time: datetime, window: timedelta
) -> list[Transition]:
    """Step-downs of the person started before this crisis and still tapering, or discharged
    no more than `window` before it: repeat crisis use linked to a recent step-down."""
    from .models import StepDownPlan

    rows = session.exec(
        select(Transition, StepDownPlan.discharged_at)
        .join(StepDownPlan, StepDownPlan.transition_id == Transition.id)
        .where(Transition.person_id == person_id, Transition.kind == "step_down",
               col(Transition.event_time) < event_time)
        .order_by(col(Transition.event_time).desc())
    ).all()
    # The window compared here, not in SQL: portable across SQLite and PostgreSQL.
    return [t for t, discharged in rows
            if t.status == "open"
            or event_time - (discharged or t.closed_at or t.event_time) <= window]


def create_task(*, session: Session, spec: TaskSpec) -> Task:
    existing = session.exec(select(Task).where(Task.key == spec.key)).first()
    if existing is not None:
        return existing
    owner_id = spec.owner_id
    if owner_id is None and spec.role is not None:
        staff = pick_staff(session=session, team_id=spec.team_id, role=spec.role.value)
        owner_id = staff.id if staff else None  # nobody in that role: the team's unowned queue
    task = Task(
        key=spec.key,
        transition_id=spec.transition_id,
        workflow_id=spec.workflow_id,
        kind=spec.kind.value,
        title=spec.title,
        status=TaskStatus.requested.value,
        business_status=spec.business_status,
        priority=spec.priority,
        team_id=spec.team_id,
        owner_id=owner_id,
        role=spec.role.value if spec.role else None,
        not_before=spec.not_before,
        due_at=spec.due_at,
    )
    if spec.created_at is not None:
        task.created_at = spec.created_at
    session.add(task)
    session.flush()
    return task


def finish_task(
    *, session: Session, task_id: int, status: TaskStatus, at: datetime,
    actor_id: int | None = None, note: str | None = None, business_status: str | None = None,
) -> Task | None:
    task = session.get(Task, task_id)
    if task is None or task.status not in {s.value for s in OPEN_TASK_STATUSES}:
        return task  # already finished: a retry changes nothing
    task.status = status.value
    task.completed_at = at
    task.completed_by_id = actor_id
    if note:
        task.note = note
    if business_status:
        task.business_status = business_status
    session.add(task)
    return task


def take_task(
    *, session: Session, task_id: int, staff_id: int, seen_owner_id: int | None,
    source: str | None, at: datetime,
) -> Task | None:
    """The open task becomes `staff_id`'s, or None when it changed since it was read (taken by
    someone else meanwhile, or finished).

    The one task write that is not its workflow's: who works a task is the team's business, and
    no workflow waits on it. A conditional UPDATE on the owner that was read, so two people
    taking the same task at once cannot both win."""
    same_owner = (col(Task.owner_id).is_(None) if seen_owner_id is None
                  else col(Task.owner_id) == seen_owner_id)
    taken = session.execute(
        update(Task)
        .where(col(Task.id) == task_id, same_owner,
               col(Task.status).in_([s.value for s in OPEN_TASK_STATUSES]))
        .values(owner_id=staff_id)
    ).rowcount
    if taken != 1:
        return None
    task = session.get(Task, task_id)
    session.refresh(task)
    transition = session.get(Transition, task.transition_id) if task.transition_id else None
    append_event(session=session, key=None, at=at, action="task.taken", actor_id=staff_id,
                 transition_id=task.transition_id,
                 person_id=transition.person_id if transition else None,
                 detail={"task_id": task_id, "title": task.title, "from_owner_id": seen_owner_id},
                 source=source)
    return task


def open_task(*, session: Session, spec: TaskSpec) -> Task:
    """The task (`create_task`) and its `task.created` entry on the timeline, both once per key."""
    task = create_task(session=session, spec=spec)
    append_event(session=session, key=f"{spec.key}:created", at=task.created_at,
                 action="task.created", transition_id=spec.transition_id,
                 detail={"task_id": task.id, "kind": spec.kind.value, "owner_id": task.owner_id,
                         "role": task.role, "due_at": spec.due_at.isoformat() if spec.due_at else None,
                         "priority": spec.priority})
    return task


def open_unwatched_task(*, session: Session, key: str, transition: Transition, kind: TaskKind,
                        title: str, at: datetime, due_at: datetime,
                        priority: str = "urgent") -> Task:
    """A task the store opens itself, for the transition's owner (or the team's unowned queue),
    that no workflow waits on: completed by `complete_unwatched_task`."""
    return open_task(session=session, spec=TaskSpec(
        key=key, transition_id=transition.id, workflow_id=None, kind=kind, title=title,
        team_id=transition.team_id, owner_id=transition.owner_id, priority=priority,
        due_at=due_at, created_at=at))


def complete_unwatched_task(*, session: Session, task_id: int, actor_id: int, note: str,
                            at: datetime) -> Task:
    """Staff complete a task no workflow waits for (a weekly finding, a message no pathway
    heard): the store records it, with its timeline entry, and commits."""
    task = finish_task(session=session, task_id=task_id, status=TaskStatus.completed, at=at,
                       actor_id=actor_id, note=note or None)
    append_event(session=session, key=f"task:{task_id}:completed", at=at, action="task.completed",
                 transition_id=task.transition_id, actor_id=actor_id,
                 detail={"task_id": task_id, "kind": task.kind})
    session.commit()
    return task


def cancel_open_tasks(
    *, session: Session, workflow_id: str, at: datetime, business_status: str
) -> int:
    tasks = session.exec(
        select(Task).where(
            Task.workflow_id == workflow_id,
            col(Task.status).in_([s.value for s in OPEN_TASK_STATUSES]),
        )
    ).all()
    for task in tasks:
        finish_task(session=session, task_id=task.id, status=TaskStatus.cancelled, at=at,
                    business_status=business_status)
    return len(tasks)


def append_event(
    *, session: Session, key: str | None, at: datetime, action: str,
    transition_id: str | None = None, person_id: int | None = None, actor_id: int | None = None,
    detail: dict[str, Any] | None = None, source: str | None = None,
) -> AuditEvent:
    # Every audit entry is sealed into the hash chain (security/audit.py), idempotent on key.
    from ..security.audit import append_audit

    return append_audit(
        session=session, action=action, actor_id=actor_id, transition_id=transition_id,
        person_id=person_id, source=source, detail=detail, at=at, key=key,
    )


def add_transition(*, session: Session, transition: Transition, at: datetime,
                   actor_id: int | None = None, detail: dict[str, Any] | None = None) -> Transition:
    """A new transition's row, flushed, and the first entry of its timeline (`transition.recorded`,
    with its kind and policy version), idempotent on the transition id like every record step."""
    session.add(transition)
    session.flush()
    append_event(session=session, key=f"{transition.id}:recorded", at=at, action="transition.recorded",
                 transition_id=transition.id, person_id=transition.person_id, actor_id=actor_id,
                 detail={"kind": transition.kind, "policy_version": transition.policy_version,
                         **(detail or {})})
    return transition


def withdraw_carer_consent(*, session: Session, person_id: int, at: datetime, key: str,
                           transition_id: str | None, actor_id: int | None,
                           source: str | None = None) -> Carer | None:
    """The person's consent to keep their carer informed, withdrawn: every later update is
    refused at send time (activities/outreach.py). Recorded even when nothing was on file, so
    the trail shows it was asked; the carer's own STOP gives its `source`."""
    carer = session.exec(select(Carer).where(Carer.person_id == person_id)).first()
    if carer is not None and carer.consent_withdrawn_at is None and carer.consent_given:
        carer.consent_given = False
        carer.consent_withdrawn_at = at
        carer.updated_at = utcnow()
        session.add(carer)
    append_event(session=session, key=key, at=at, action="carer.consent_withdrawn",
                 transition_id=transition_id, person_id=person_id, actor_id=actor_id,
                 detail={"source": source} if source else {})
    return carer


def upsert_contact(*, session: Session, contact: Contact) -> Contact:
    existing = session.get(Contact, contact.id)
    if existing is None:
        session.add(contact)
        session.flush()
        return contact
    for field in ("appointment_at", "not_before", "due_at", "status", "outcome", "outcome_at",
                  "confirmed_by_person_at", "ladder_step"):
        value = getattr(contact, field)
        if value is not None:
            setattr(existing, field, value)
    existing.updated_at = utcnow()
    session.add(existing)
    return existing


def record_attempt(*, session: Session, attempt: OutreachAttempt) -> OutreachAttempt:
    existing = session.exec(select(OutreachAttempt).where(OutreachAttempt.key == attempt.key)).first()
    if existing is not None:
        return existing
    session.add(attempt)
    session.flush()
    return attempt


def record_decision(*, session: Session, decision: Decision) -> Decision:
    existing = session.exec(select(Decision).where(Decision.key == decision.key)).first()
    if existing is not None:
        return existing
    session.add(decision)
    session.flush()
    return decision


def reassign_open_tasks(
    *, session: Session, transition_id: str, from_owner_id: int | None, to_owner_id: int
) -> int:
    """A new owner takes over the open tasks the previous owner held for this transition."""
    tasks = session.exec(
        select(Task).where(
            Task.transition_id == transition_id,
            Task.owner_id == from_owner_id,
            col(Task.status).in_([s.value for s in OPEN_TASK_STATUSES]),
        )
    ).all()
    for task in tasks:
        task.owner_id = to_owner_id
        session.add(task)
    return len(tasks)


def record_opt_change(*, session: Session, people: list[Person], opt_out: bool, keyword: str,
                      channel: str, source: str, key: str, at: datetime) -> None:
    """STOP (or START) from the person, whichever channel it came by: recorded at once."""
    for person in people:
        if opt_out == (person.opted_out_at is not None):
            continue  # already so: a repeated STOP keeps the first time
        person.opted_out_at = at if opt_out else None
        person.consent_source = f"{channel}-{keyword.lower()}"
        person.consent_recorded_at = at
        person.updated_at = at
        session.add(person)
        append_event(
            session=session, key=f"{key}:{person.id}", at=at,
            action="person.opted_out" if opt_out else "person.opted_in", person_id=person.id,
            source=source, detail={"keyword": keyword},
        )
