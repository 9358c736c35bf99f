"""Step-up slots: claimed and released atomically, and a waitlist with a fair order.

Two requests can never hold one slot: a claim is a conditional UPDATE (`... WHERE holder IS
NULL`) whose row count says whether it won, on SQLite as on PostgreSQL; on PostgreSQL the
candidate is also picked `FOR UPDATE SKIP LOCKED`, so concurrent claims try different slots
instead of queueing on one. A released slot never becomes free while somebody waits: the
release hands it to the head of the team's waitlist in the same transaction (urgent before
routine, then the longest waiting), so a newcomer cannot jump the queue.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, update
from sqlmodel import Session, col, select

from .models import Person, StepUpRequest, StepUpSlot, Team, Transition

WAITING, HOLDING, RELEASED, LEFT = "waiting", "holding", "released", "left"
_CLAIM_ATTEMPTS = 5  # a lost race moves on to the next free slot; five covers any small team


@dataclass(frozen=True)
class Claim:
    slot_id: int | None  # None: no free slot, the request waits
    label: str | None
    claimed_at: datetime | None
    waiting_since: datetime | None


@dataclass(frozen=True)
class Release:
    slot_id: int | None
    handed_to: str | None  # the waiting step-up that now holds the slot


def _queue_order():
    # Urgent before routine, then the longest waiting, then a stable tie-break.
    return (case((col(StepUpRequest.urgency) == "urgent", 0), else_=1),
            col(StepUpRequest.waiting_since), col(StepUpRequest.transition_id))


def waitlist(*, session: Session, team_id: int) -> list[StepUpRequest]:
    statement = (select(StepUpRequest)
                 .where(StepUpRequest.team_id == team_id, StepUpRequest.capacity_status == WAITING)
                 .order_by(*_queue_order()))
    return list(session.exec(statement).all())


def _held_by(session: Session, transition_id: str) -> StepUpSlot | None:
    return session.exec(
        select(StepUpSlot).where(StepUpSlot.holder_transition_id == transition_id)).first()


def _hold(request: StepUpRequest, slot: StepUpSlot, at: datetime) -> None:
    request.capacity_status = HOLDING
    request.slot_id = slot.id
    request.slot_claimed_at = at
    since = request.waiting_since or at
    request.capacity_wait_seconds = max((at - since).total_seconds(), 0.0)


def claim_slot(*, session: Session, transition_id: str, at: datetime) -> Claim:
    """Take a free slot of the request's team, or join (stay on) its waitlist. Idempotent: a
    request that already holds a slot (claimed, or handed on by a release) gets that slot."""
    request = session.get(StepUpRequest, transition_id)
    if request is None:
        raise LookupError(f"step-up {transition_id} not recorded")
    held = _held_by(session, transition_id)
    if held is None:
        queue = waitlist(session=session, team_id=request.team_id)
        # Only the head of the queue (or a newcomer to an empty queue) may take a free slot.
        if not queue or queue[0].transition_id == transition_id:
            held = _take_free_slot(session, request.team_id, transition_id, at)
    if held is not None:
        if request.capacity_status != HOLDING:
            _hold(request, held, held.claimed_at or at)
            session.add(request)
        return Claim(held.id, held.label, request.slot_claimed_at, request.waiting_since)
    if request.capacity_status != WAITING:
        request.capacity_status = WAITING
        request.waiting_since = at
        session.add(request)
    session.flush()
    return Claim(None, None, None, request.waiting_since)


def _take_free_slot(session: Session, team_id: int, transition_id: str,
                    at: datetime) -> StepUpSlot | None:
    for _ in range(_CLAIM_ATTEMPTS):
        candidate = session.exec(
            select(StepUpSlot)
            .where(StepUpSlot.team_id == team_id, col(StepUpSlot.holder_transition_id).is_(None))
            .order_by(col(StepUpSlot.id))
            .limit(1)
            .with_for_update(skip_locked=True)  # PostgreSQL only; SQLite serialises writers
        ).first()
        if candidate is None:
            return None
        won = session.execute(
            update(StepUpSlot)
            .where(col(StepUpSlot.id) == candidate.id, col(StepUpSlot.holder_transition_id).is_(None))
            .values(holder_transition_id=transition_id, claimed_at=at)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won == 1:
            session.refresh(candidate)
            return candidate
    return None


def release_slot(*, session: Session, transition_id: str, at: datetime) -> Release:
    """Give the slot back (or leave the waitlist). A held slot goes straight to the head of
    the waitlist when anyone waits. A repeat after success finds nothing to release."""
    request = session.get(StepUpRequest, transition_id)
    if request is None:
        return Release(None, None)
    if request.capacity_status == WAITING:
        request.capacity_status = LEFT
        session.add(request)
        return Release(None, None)
    slot = session.exec(
        select(StepUpSlot).where(StepUpSlot.holder_transition_id == transition_id)
        .with_for_update()).first()
    if slot is None:
        return Release(None, None)
    head = session.exec(
        select(StepUpRequest)
        .where(StepUpRequest.team_id == slot.team_id, StepUpRequest.capacity_status == WAITING)
        .order_by(*_queue_order()).limit(1)
        .with_for_update(skip_locked=True)).first()
    request.capacity_status = RELEASED
    session.add(request)
    slot.holder_transition_id = None
    slot.claimed_at = None
    session.add(slot)
    session.flush()  # the unique holder column: free it before the next holder takes it
    if head is None:
        return Release(slot.id, None)
    slot.holder_transition_id = head.transition_id
    slot.claimed_at = at
    _hold(head, slot, at)
    session.add_all([slot, head])
    session.flush()
    return Release(slot.id, head.transition_id)


def capacity_board(*, session: Session, team_ids: Collection[int], now: datetime) -> list[dict[str, Any]]:
    """Per team of the user: each slot and its holder, and the waitlist in the order it is
    served, with how long each request has waited."""
    board = []
    teams = session.exec(select(Team).where(col(Team.id).in_(list(team_ids))).order_by(col(Team.code)))
    for team in teams.all():
        slots = session.exec(
            select(StepUpSlot, Transition, Person)
            .outerjoin(Transition, col(Transition.id) == StepUpSlot.holder_transition_id)
            .outerjoin(Person, col(Person.id) == Transition.person_id)
            .where(StepUpSlot.team_id == team.id).order_by(col(StepUpSlot.id))).all()
        waiting = []
        for position, request in enumerate(waitlist(session=session, team_id=team.id), start=1):
            person = session.get(Person, request.person_id)
            waiting.append({
                "position": position, "transition_id": request.transition_id,
                "person_id": request.person_id,
                "person_name": f"{person.given_name} {person.family_name}" if person else None,
                "urgency": request.urgency, "waiting_since": request.waiting_since,
                "waited_seconds": (now - request.waiting_since).total_seconds()
                if request.waiting_since else 0.0,
            })
        board.append({
            "team": team.code, "team_id": team.id,
            "slots": [{
                "id": slot.id, "label": slot.label, "holder_transition_id": slot.holder_transition_id,
                "holder_person_name": f"{person.given_name} {person.family_name}" if person else None,
                "claimed_at": slot.claimed_at,
            } for slot, _transition, person in slots],
            "free": sum(1 for slot, _, _ in slots if slot.holder_transition_id is None),
            "waiting": waiting,
        })
    return board
