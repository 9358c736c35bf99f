"""The count of notifications Handrail received but did not act on, kept in the audit trail.

Ignored (out of scope, no open transition, an ADT event Handrail does not act on) and refused
(AE/AR, 422) notifications belong to no transition, so the intake itself appends one
`intake.ignored` / `intake.rejected` entry each: no names, no identifiers, only the format,
trigger, kind and reason. A repeat of the same message (source system + control id) is counted
once. `GET /api/intake/counts` sums them.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from ..security.audit import append_audit
from ..store.models import AuditEvent
from .events import IntakeEvent

ACTIONS = ("intake.ignored", "intake.rejected")


def record(
    session: Session,
    *,
    fmt: str,
    outcome: str,
    reason: str,
    event: IntakeEvent | None = None,
    actor_id: int | None = None,
    source: str | None = None,
) -> None:
    """Append the receipt and commit it (the request's only write)."""
    action = f"intake.{outcome}"
    if action not in ACTIONS:
        return
    key = None
    if event is not None:
        # Hashed: the key must not carry the sender's ids, and a repeat must find it.
        digest = hashlib.sha256(
            f"{event.notification.source_system}\x1f{event.message_id}".encode()).hexdigest()
        key = f"{action}:{fmt}:{digest[:40]}"
    append_audit(
        session=session, action=action, actor_id=actor_id, transition_id=None, person_id=None,
        source=source, at=datetime.now(UTC), key=key,
        detail={
            "format": fmt, "reason": reason,
            "trigger": event.trigger if event else None,
            "event": event.kind.value if event else None,
        },
    )
    session.commit()


def counts(session: Session, *, since: datetime | None = None) -> Counter[tuple[str, str, str]]:
    """(format, outcome, reason) → how many, from the audit trail."""
    query = select(AuditEvent.action, AuditEvent.detail).where(col(AuditEvent.action).in_(ACTIONS))
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    totals: Counter[tuple[str, str, str]] = Counter()
    for action, detail in session.exec(query):
        totals[(detail.get("format", ""), action.removeprefix("intake."), detail.get("reason", ""))] += 1
    return totals
