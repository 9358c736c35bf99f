"""The audit trail: append-only, each entry chained to the one before it by a SHA-256 hash.

`hash = sha256(prev_hash + canonical JSON of the entry)`. Changing, removing or reordering any
entry breaks the chain from that entry on, and `verify_chain` names the first entry that no
longer fits. Writers are serialized (a PostgreSQL advisory lock; SQLite's single writer lock
taken before the predecessor is read), so two entries never chain off the same predecessor.

Every write of an AuditEvent goes through `append_audit`, within the caller's transaction: the
entry commits or rolls back together with the change it records.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from ..store.models import AuditEvent, Staff

GENESIS = "0" * 64
# Any fixed 64-bit number: the PostgreSQL advisory lock that serializes audit appends.
_PG_AUDIT_LOCK = 0x4861_6E64_7261_6C41  # "HandralA"
_VERIFY_BATCH = 1000


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_broken_id: int | None = None
    reason: str | None = None
    head: str | None = None  # the last entry's hash: record it elsewhere to detect truncation


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("audit times must carry a time zone")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _normalized_detail(detail: dict[str, Any] | None) -> dict[str, Any]:
    # What the JSON column will hand back later, so the hash is computed over the stored form.
    return json.loads(json.dumps(detail or {}, default=str, ensure_ascii=False))


def canonical_entry(event: AuditEvent) -> str:
    entry = {
        "key": event.key,
        "at": _iso(event.at),
        "actor_id": event.actor_id,
        "action": event.action,
        "transition_id": event.transition_id,
        "person_id": event.person_id,
        "source": event.source,
        "detail": event.detail,
    }
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + canonical_entry(event)).encode()).hexdigest()


def _lock_the_chain(session: Session) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": _PG_AUDIT_LOCK})
    elif dialect == "sqlite":
        # A write statement takes SQLite's one writer lock now (the driver opens the transaction),
        # before the predecessor is read; it is held until commit.
        session.execute(text("UPDATE auditevent SET id = id WHERE 0"))
    else:  # pragma: no cover - only the two supported stores
        raise RuntimeError(f"audit chain: no serialization for {dialect}")


def append_audit(
    *,
    session: Session,
    action: str,
    actor_id: int | None,
    transition_id: str | None,
    person_id: int | None,
    source: str | None,
    detail: dict[str, Any] | None,
    at: datetime,
    key: str | None = None,
) -> AuditEvent:
    """Append one sealed entry (or return the existing one with the same key). Flushes, does not
    commit: the caller's transaction holds the chain lock until it commits."""
    _lock_the_chain(session)
    if key is not None:
        existing = session.exec(select(AuditEvent).where(AuditEvent.key == key)).first()
        if existing is not None:
            return existing
    latest = session.exec(
        select(AuditEvent.hash).order_by(col(AuditEvent.id).desc()).limit(1)
    ).first()
    prev_hash = latest or GENESIS
    event = AuditEvent(
        key=key,
        at=at.astimezone(UTC),
        actor_id=actor_id,
        action=action,
        transition_id=transition_id,
        person_id=person_id,
        source=source,
        detail=_normalized_detail(detail),
        prev_hash=prev_hash,
    )
    event.hash = entry_hash(prev_hash, event)
    session.add(event)
    session.flush()
    return event


def _entries(session: Session) -> Iterator[AuditEvent]:
    last_id = 0
    while True:
        batch = session.exec(
            select(AuditEvent).where(AuditEvent.id > last_id)
            .order_by(col(AuditEvent.id)).limit(_VERIFY_BATCH)
        ).all()
        if not batch:
            return
        yield from batch
        last_id = batch[-1].id


def verify_chain(session: Session, *, anchor: str | None = None) -> VerifyResult:
    """Walk the trail in order and report the first entry that does not fit the chain.

    A chain cannot show that entries were cut off its end; `anchor`, a head hash recorded
    earlier (for example in the operations log after each verify), must still be in it."""
    expected_prev = GENESIS
    checked = 0
    anchor_seen = anchor is None
    for event in _entries(session):
        if event.hash is None:
            return VerifyResult(False, checked, event.id, "entry is not sealed (no hash)")
        if event.prev_hash != expected_prev:
            return VerifyResult(
                False, checked, event.id,
                "entry does not follow the previous one (an entry before it was removed, "
                "inserted or reordered)",
            )
        if entry_hash(expected_prev, event) != event.hash:
            return VerifyResult(False, checked, event.id, "entry content changed after it was written")
        expected_prev = event.hash
        anchor_seen = anchor_seen or event.hash == anchor
        checked += 1
    head = None if checked == 0 else expected_prev
    if not anchor_seen:
        return VerifyResult(False, checked, None, "the anchor recorded earlier is no longer in the "
                            "chain: entries were removed from its end", head)
    return VerifyResult(True, checked, head=head)


CSV_COLUMNS = (
    "id", "at", "actor_id", "actor_name", "actor_role", "action", "transition_id", "person_id",
    "source", "detail", "prev_hash", "hash",
)


def _cell(value: Any) -> str:
    text_value = "" if value is None else str(value)
    # Spreadsheet formula injection: a cell starting with these is read as a formula.
    if text_value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text_value
    return text_value


def export_csv(
    session: Session,
    person_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> str:
    """The trail for one person and/or a period [start, end), oldest first, as CSV text."""
    query = select(AuditEvent, Staff).join(Staff, col(AuditEvent.actor_id) == Staff.id, isouter=True)
    if person_id is not None:
        query = query.where(AuditEvent.person_id == person_id)
    if start is not None:
        query = query.where(AuditEvent.at >= start)
    if end is not None:
        query = query.where(AuditEvent.at < end)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for event, staff in session.exec(query.order_by(col(AuditEvent.id))):
        writer.writerow([_cell(value) for value in (
            event.id, _iso(event.at), event.actor_id, staff.name if staff else "",
            staff.role if staff else "", event.action, event.transition_id, event.person_id,
            event.source, json.dumps(event.detail, sort_keys=True, ensure_ascii=False),
            event.prev_hash, event.hash,
        )])
    return out.getvalue()
