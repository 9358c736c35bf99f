"""The writes the workflows' activities make: each is safe to repeat (a retry adds no row)."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import func, select

from handrail.domain.notification import PersonDetails, PersonIdentifier
from handrail.domain.tasks import Role, TaskKind, TaskSpec, TaskStatus
from handrail.store import records
from handrail.store.models import AuditEvent, Contact, Decision, OutreachAttempt, Person, Task
from handrail.store.models import PersonIdentifier as PersonIdentifierRow

HOUR = timedelta(hours=1)


def _count(session, model, *where) -> int:
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


def _spec(transition, key: str, *, role: Role | None = None, owner_id: int | None = None):
    return TaskSpec(key=key, transition_id=transition.id, workflow_id=transition.id,
                    kind=TaskKind.confirm_consent_and_details, title="Confirm consent",
                    team_id=transition.team_id, role=role, owner_id=owner_id)


def _details(*identifiers: tuple[str, str], phone: str | None = None) -> PersonDetails:
    return PersonDetails(
        identifiers=[PersonIdentifier(system=s, value=v) for s, v in identifiers],
        given_name="Nova", family_name="Synthetic", phone=phone,
    )


def test_upsert_person_twice_is_one_person_and_learns_new_identifiers(world):
    session = world.session
    first = records.upsert_person(session=session, details=_details(("urn:test:mrn", "M1")))
    again = records.upsert_person(
        session=session,
        details=_details(("urn:test:mrn", "M1"), ("urn:test:nhs", "N1"), phone="+447700900456"),
    )

    assert again.id == first.id
    assert _count(session, Person) == 1
    assert _count(session, PersonIdentifierRow, PersonIdentifierRow.person_id == first.id) == 2
    assert again.phone == "+447700900456"


def test_create_task_twice_with_the_same_key_is_one_task(world, rows):
    transition = rows.transition(world.north)
    spec = _spec(transition, f"{transition.id}.consent", role=Role.transition_coordinator)

    first = records.create_task(session=world.session, spec=spec)
    second = records.create_task(session=world.session, spec=spec)

    assert second.id == first.id
    assert _count(world.session, Task, Task.key == spec.key) == 1


def test_tasks_for_a_role_go_to_the_least_loaded_team_member(world, rows):
    transition = rows.transition(world.north)
    owners = [
        records.create_task(
            session=world.session,
            spec=_spec(transition, f"{transition.id}.t{n}", role=Role.transition_coordinator),
        ).owner_id
        for n in range(4)
    ]
    coordinators = {staff.id for staff in world.members(world.north, "transition_coordinator")}

    assert len(coordinators) == 2
    assert set(owners) == coordinators  # the two north coordinators share the work evenly
    assert owners.count(owners[0]) == 2


def test_a_task_for_a_role_nobody_holds_waits_unowned_in_the_team_queue(world, rows):
    transition = rows.transition(world.east)  # community-east has no crisis worker

    task = records.create_task(
        session=world.session, spec=_spec(transition, "east.task", role=Role.crisis_worker))

    assert task.owner_id is None and task.team_id == world.east.id


def test_finishing_a_task_twice_keeps_the_first_completion(world, rows, now):
    me = world.staff(world.north, "clinician")
    task = rows.task(rows.transition(world.north), owner=me)

    records.finish_task(session=world.session, task_id=task.id, status=TaskStatus.completed,
                        at=now, actor_id=me.id, note="called, all well")
    again = records.finish_task(session=world.session, task_id=task.id,
                                status=TaskStatus.cancelled, at=now + HOUR)

    assert again.status == "completed" and again.completed_at == now
    assert again.completed_by_id == me.id and again.note == "called, all well"


def test_cancel_open_tasks_cancels_only_open_ones_once(world, rows, now):
    transition = rows.transition(world.north)
    open_task = rows.task(transition)
    done = rows.task(transition, status="completed")

    first = records.cancel_open_tasks(session=world.session, workflow_id=transition.id, at=now,
                                      business_status="transition closed")
    second = records.cancel_open_tasks(session=world.session, workflow_id=transition.id, at=now,
                                       business_status="transition closed")

    assert (first, second) == (1, 0)
    assert world.session.get(Task, open_task.id).status == "cancelled"
    assert world.session.get(Task, done.id).status == "completed"


def test_append_event_with_a_key_twice_is_one_timeline_entry(world, rows, now):
    transition = rows.transition(world.north)
    for _ in range(2):
        records.append_event(session=world.session, key=f"{transition.id}.recorded", at=now,
                             action="recorded", transition_id=transition.id)
    world.session.flush()

    assert _count(world.session, AuditEvent, AuditEvent.transition_id == transition.id) == 1


def test_upsert_contact_twice_is_one_contact_with_the_latest_outcome(world, rows, now):
    transition = rows.transition(world.north)

    def contact(**changes):
        return Contact(id=f"{transition.id}.c1", transition_id=transition.id, sequence=1,
                       purpose="first_contact", appointment_at=now, not_before=now - HOUR,
                       due_at=now + HOUR, **changes)

    records.upsert_contact(session=world.session, contact=contact())
    records.upsert_contact(session=world.session,
                           contact=contact(status="completed", outcome="attended", outcome_at=now))
    world.session.flush()

    stored = world.session.exec(select(Contact).where(Contact.transition_id == transition.id)).all()
    assert len(stored) == 1 and stored[0].outcome == "attended"


def test_outreach_attempts_and_decisions_are_recorded_once(world, rows, now):
    transition = rows.transition(world.north)

    def attempt():
        return OutreachAttempt(key=f"{transition.id}.reminder-1", transition_id=transition.id,
                               workflow_id=transition.id, person_id=transition.person_id,
                               step="reminder-1", channel="sms", status="sent")

    def decision():
        return Decision(key=f"{transition.id}.ladder-end", transition_id=transition.id,
                        kind="ladder_end", decision="disengaged", reason="no contact",
                        decided_at=now)

    for _ in range(2):
        records.record_attempt(session=world.session, attempt=attempt())
        records.record_decision(session=world.session, decision=decision())

    assert _count(world.session, OutreachAttempt, OutreachAttempt.transition_id == transition.id) == 1
    assert _count(world.session, Decision, Decision.transition_id == transition.id) == 1


def test_reassign_moves_only_the_previous_owners_open_tasks(world, rows):
    before = world.staff(world.north, "transition_coordinator")
    after = world.staff(world.north, "supervisor")
    transition = rows.transition(world.north, owner=before)
    open_task = rows.task(transition, owner=before)
    done = rows.task(transition, owner=before, status="completed")

    moved = records.reassign_open_tasks(session=world.session, transition_id=transition.id,
                                        from_owner_id=before.id, to_owner_id=after.id)
    world.session.flush()

    assert moved == 1
    assert world.session.get(Task, open_task.id).owner_id == after.id
    assert world.session.get(Task, done.id).owner_id == before.id


def test_earlier_presentations_are_the_same_persons_within_the_window(world, rows, now):
    person = rows.person("Nova", "Synthetic")
    current = rows.transition(world.north, person=person)
    recent = rows.transition(world.north, person=person)
    old = rows.transition(world.north, person=person)
    stranger = rows.transition(world.north)
    for transition, when in ((current, now), (recent, now - 10 * 24 * HOUR),
                             (old, now - 120 * 24 * HOUR), (stranger, now - HOUR)):
        transition.event_time = when
        world.session.add(transition)
    world.session.flush()

    found = records.earlier_presentations(session=world.session, person_id=person.id,
                                          event_time=now, window=90 * 24 * HOUR,
                                          exclude_id=current.id)

    assert [t.id for t in found] == [recent.id]
