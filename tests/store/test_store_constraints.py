"""What the store itself guarantees: idempotency keys are unique, times come back aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session, select

from handrail.store.models import AuditEvent, Decision, OutboxMessage, Task, Transition


def _task(key: str, team_id: int) -> Task:
    return Task(key=key, kind="outreach_call", title="Call", team_id=team_id)


def test_the_same_task_key_twice_is_refused(engine, world, rows):
    transition = rows.transition(world.north)
    world.session.commit()
    with Session(engine) as session:
        session.add(_task(f"{transition.id}.consent", world.north.id))
        session.commit()
    with Session(engine) as session, pytest.raises(IntegrityError):
        session.add(_task(f"{transition.id}.consent", world.north.id))
        session.commit()


@pytest.mark.parametrize("model", [OutboxMessage, Decision, AuditEvent])
def test_other_keyed_rows_refuse_a_repeated_key(engine, world, rows, model):
    transition = rows.transition(world.north)
    world.session.commit()

    def make():
        if model is OutboxMessage:
            return OutboxMessage(key="k-1", kind="sms", to="+447700900123", body="Hi",
                                 person_id=transition.person_id, workflow_id=transition.id,
                                 transition_id=transition.id)
        if model is Decision:
            return Decision(key="k-1", transition_id=transition.id, kind="ladder_end",
                            decision="disengaged", reason="no contact", decided_at=datetime.now(UTC))
        return AuditEvent(key="k-1", at=datetime.now(UTC), action="recorded",
                          transition_id=transition.id)

    with Session(engine) as session:
        session.add(make())
        session.commit()
    with Session(engine) as session, pytest.raises(IntegrityError):
        session.add(make())
        session.commit()
    with Session(engine) as session:
        assert len(session.exec(select(model).where(model.key == "k-1")).all()) == 1


def test_aware_datetimes_come_back_as_the_same_instant_in_utc(engine, world, rows):
    india = timezone(timedelta(hours=5, minutes=30))
    due = datetime(2026, 7, 1, 9, 15, 30, 123456, tzinfo=india)
    transition = rows.transition(world.north, next_due_at=due)
    world.session.commit()

    with Session(engine) as session:
        stored = session.get(Transition, transition.id)

    assert stored.next_due_at == due
    assert stored.next_due_at.utcoffset() == timedelta(0)
    assert stored.next_due_at == datetime(2026, 7, 1, 3, 45, 30, 123456, tzinfo=UTC)


def test_datetime_comparisons_in_sql_use_the_instant(engine, world, rows):
    india = timezone(timedelta(hours=5, minutes=30))
    rows.transition(world.north, next_due_at=datetime(2026, 7, 1, 9, 0, tzinfo=india))  # 03:30Z
    world.session.commit()

    with Session(engine) as session:
        before = session.exec(select(Transition).where(
            Transition.next_due_at < datetime(2026, 7, 1, 4, 0, tzinfo=UTC))).all()
        after = session.exec(select(Transition).where(
            Transition.next_due_at < datetime(2026, 7, 1, 3, 0, tzinfo=UTC))).all()
    assert len(before) == 1 and after == []


def test_naive_datetimes_are_refused(engine, world, rows):
    transition = rows.transition(world.north)
    world.session.commit()
    with Session(engine) as session:
        stored = session.get(Transition, transition.id)
        stored.next_due_at = datetime(2026, 7, 1, 9, 0)
        session.add(stored)
        with pytest.raises(StatementError, match="naive datetimes"):
            session.commit()
