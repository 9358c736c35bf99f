"""The audit trail is a hash chain: intact chains verify, any altered row is found by its id."""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlmodel import Session, select

from handrail.security.audit import GENESIS, append_audit, export_csv, verify_chain
from handrail.store.db import session_scope
from handrail.store.models import AuditEvent, Person, Staff

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _people_and_staff(session: Session) -> tuple[int, int, int]:
    first = Person(given_name="Tamsin", family_name="Quillfeather")
    second = Person(given_name="Odhran", family_name="Vasquez-Test")
    nurse = Staff(name="Priya Testwell", role="clinician")
    session.add_all([first, second, nurse])
    session.flush()
    return first.id, second.id, nurse.id


def _append(session: Session, n: int, *, person_id: int, actor_id: int, **extra):
    return append_audit(
        session=session, action=extra.pop("action", "read"), actor_id=actor_id,
        transition_id=None, person_id=person_id, source="203.0.113.7",
        detail=extra.pop("detail", {"n": n}), at=T0 + timedelta(minutes=n), **extra,
    )


def test_entries_chain_and_an_altered_row_is_found_at_its_id(session):
    person, _, nurse = _people_and_staff(session)
    events = [_append(session, n, person_id=person, actor_id=nurse) for n in range(5)]
    session.commit()

    assert events[0].prev_hash == GENESIS
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    intact = verify_chain(session)
    assert (intact.ok, intact.checked, intact.first_broken_id) == (True, 5, None)

    target = events[2].id
    session.execute(text("UPDATE auditevent SET action = 'nothing to see' WHERE id = :id"),
                    {"id": target})
    session.commit()
    session.expire_all()

    broken = verify_chain(session)
    assert broken.ok is False
    assert broken.first_broken_id == target
    assert broken.checked == 2
    assert "changed" in broken.reason


def test_a_changed_detail_or_time_is_found(session):
    person, _, nurse = _people_and_staff(session)
    events = [_append(session, n, person_id=person, actor_id=nurse) for n in range(3)]
    session.commit()

    session.execute(text("UPDATE auditevent SET at = :at WHERE id = :id"),
                    {"at": T0 - timedelta(days=1), "id": events[1].id})
    session.commit()
    session.expire_all()
    assert verify_chain(session).first_broken_id == events[1].id


def test_a_removed_row_breaks_the_chain_at_the_next_entry(session):
    person, _, nurse = _people_and_staff(session)
    events = [_append(session, n, person_id=person, actor_id=nurse) for n in range(4)]
    session.commit()

    session.execute(text("DELETE FROM auditevent WHERE id = :id"), {"id": events[1].id})
    session.commit()
    session.expire_all()

    broken = verify_chain(session)
    assert broken.first_broken_id == events[2].id
    assert "removed" in broken.reason


def test_an_entry_written_outside_append_audit_is_reported(session):
    person, _, nurse = _people_and_staff(session)
    _append(session, 0, person_id=person, actor_id=nurse)
    rogue = AuditEvent(at=T0, action="read", person_id=person, actor_id=nurse)
    session.add(rogue)
    session.commit()

    result = verify_chain(session)
    assert (result.ok, result.first_broken_id) == (False, rogue.id)
    assert "not sealed" in result.reason


def test_append_is_idempotent_on_key(session):
    person, _, nurse = _people_and_staff(session)
    first = _append(session, 0, person_id=person, actor_id=nurse, key="handoff-1/read/1")
    again = _append(session, 9, person_id=person, actor_id=nurse, key="handoff-1/read/1")
    session.commit()

    assert again.id == first.id
    assert len(session.exec(select(AuditEvent)).all()) == 1
    assert verify_chain(session).ok


def test_concurrent_writers_never_fork_the_chain(engine):
    with session_scope(engine) as session:
        person, _, nurse = _people_and_staff(session)
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            for n in range(8):
                with session_scope(engine) as session:
                    _append(session, offset * 100 + n, person_id=person, actor_id=nurse)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with Session(engine) as session:
        result = verify_chain(session)
        prev_hashes = session.exec(select(AuditEvent.prev_hash)).all()
    assert (result.ok, result.checked) == (True, 32)
    assert len(set(prev_hashes)) == 32


def test_export_for_a_person_or_a_period(session):
    first, second, nurse = _people_and_staff(session)
    for n in range(3):
        _append(session, n, person_id=first, actor_id=nurse)
    _append(session, 10, person_id=second, actor_id=nurse, action="=HYPERLINK(\"x\")")
    session.commit()

    rows = list(csv.DictReader(io.StringIO(export_csv(session, person_id=first))))
    assert [row["person_id"] for row in rows] == [str(first)] * 3
    assert rows[0]["actor_name"] == "Priya Testwell"
    assert rows[0]["at"] == "2026-11-02T09:00:00.000000+00:00"

    period = list(csv.DictReader(io.StringIO(
        export_csv(session, start=T0 + timedelta(minutes=1), end=T0 + timedelta(minutes=11))
    )))
    assert [row["detail"] for row in period] == ['{"n": 1}', '{"n": 2}', '{"n": 10}']
    # A value that a spreadsheet would run as a formula is neutralized.
    assert period[-1]["action"] == "'=HYPERLINK(\"x\")"


def test_entries_cut_from_the_end_are_found_with_an_anchor(session):
    person, _, nurse = _people_and_staff(session)
    for n in range(4):
        _append(session, n, person_id=person, actor_id=nurse)
    session.commit()
    recorded = verify_chain(session)
    assert recorded.head is not None
    assert verify_chain(session, anchor=recorded.head).ok

    last_id = session.exec(select(AuditEvent.id).order_by(AuditEvent.id.desc())).first()
    session.execute(text("DELETE FROM auditevent WHERE id = :id"), {"id": last_id})
    session.commit()
    session.expire_all()

    assert verify_chain(session).ok  # the chain alone cannot tell
    truncated = verify_chain(session, anchor=recorded.head)
    assert truncated.ok is False
    assert "removed from its end" in truncated.reason
