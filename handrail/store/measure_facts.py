"""Each handoff's measure clocks (the `handoffmeasure` rows), kept as its records change.

A handoff's clocks depend on more than its own row: its contacts, an admission recorded on it,
the person's other presentations (FUM counts only the first visit in 31 days; a repeat crisis is
the next presentation). All of those belong to one person, so whenever a flush touches a
handoff, a contact, an admission or a person, that person's clocks are recomputed with the
pure rules of domain/measures.py before the transaction commits: the rows never disagree with
the records they were derived from, whichever code path wrote them.

The rows are derived and rebuildable: `refresh_all` recomputes every one (after a bulk load, or
`handrail report refresh-measures`), and the report fills in handoffs that have no row yet.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from itertools import chain
from typing import NamedTuple

from sqlalchemy import case, delete, event, func, insert, inspect, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from ..domain import measures as m
from ..domain.handoff import HOLD_STAGES
from .models import AuditEvent, Contact, HandoffMeasure, Person, Staff, Transition

log = logging.getLogger(__name__)

ADMISSION = "encounter.admission"
# Zone for a person with none recorded; every stored zone is validated when it is written.
FALLBACK_ZONE = "Europe/London"
_PENDING = "handrail.measure_people"  # session.info key: people whose clocks must be redone
_BATCH = 5000


class _Handoff(NamedTuple):
    id: str
    person_id: int
    team_id: int
    source: str | None
    stage: str
    event_time: datetime
    first_contact_at: datetime | None
    reconciled_at: datetime | None
    reconciled_by_role: str | None
    time_zone: str
    attended: int
    missed: int


def _load(session: Session, person_ids: Collection[int]):
    """The people's handoffs (with contact counts), attended contact moments, and admissions."""
    people = list(person_ids)
    attended = func.sum(case((Contact.outcome == "attended", 1), else_=0))
    missed = func.sum(case((Contact.outcome == "missed", 1), else_=0))
    counts = (select(Contact.transition_id.label("transition_id"), attended.label("attended"),
                     missed.label("missed"))
              .join(Transition, col(Transition.id) == Contact.transition_id)
              .where(Transition.kind == "handoff", col(Transition.person_id).in_(people))
              .group_by(Contact.transition_id).subquery())
    reconciler = aliased(Staff)
    handoffs = [_Handoff(*row) for row in session.exec(
        select(Transition.id, Transition.person_id, Transition.team_id, Transition.source,
               Transition.stage, Transition.event_time, Transition.first_contact_at,
               Transition.medication_reconciled_at, reconciler.role, Person.time_zone,
               func.coalesce(counts.c.attended, 0), func.coalesce(counts.c.missed, 0))
        .join(Person, col(Person.id) == Transition.person_id)
        .outerjoin(reconciler, col(reconciler.id) == Transition.medication_reconciled_by_id)
        .outerjoin(counts, counts.c.transition_id == Transition.id)
        .where(Transition.kind == "handoff", col(Transition.person_id).in_(people),
               col(Transition.event_time).is_not(None))).all()]
    moments: dict[str, list[datetime]] = defaultdict(list)
    for transition_id, at in session.exec(
            select(Contact.transition_id, Contact.outcome_at)
            .join(Transition, col(Transition.id) == Contact.transition_id)
            .where(Transition.kind == "handoff", col(Transition.person_id).in_(people),
                   Contact.outcome == "attended", col(Contact.outcome_at).is_not(None))).all():
        moments[transition_id].append(at)
    admissions = session.exec(
        select(AuditEvent.transition_id, AuditEvent.at)
        .join(Transition, col(Transition.id) == AuditEvent.transition_id)
        .where(AuditEvent.action == ADMISSION, Transition.kind == "handoff",
               col(Transition.person_id).in_(people))).all()
    return handoffs, moments, admissions


def _discharges(handoffs: list[_Handoff], moments: dict[str, list[datetime]],
                admissions: Iterable[tuple[str, datetime]]) -> list[m.Discharge]:
    """The handoffs that are discharges, each with its setting (which clock) and contacts."""
    by_id = {h.id: h for h in handoffs}
    own_admission: set[str] = set()
    admitted_by_person: dict[int, list[datetime]] = defaultdict(list)
    for transition_id, at in admissions:
        if transition_id not in by_id:
            continue  # a handoff with no event time yet: no clock of its own, nobody else's
        own_admission.add(transition_id)
        admitted_by_person[by_id[transition_id].person_id].append(at)
    for h in handoffs:  # an inpatient discharge implies an admission before it
        if h.source == "inpatient":
            admitted_by_person[h.person_id].append(h.event_time)
    # Admitted from the ED and discharged since: its clock is the inpatient discharge's.
    inpatient = {h.id for h in handoffs if h.source == "inpatient"
                 or (h.id in own_admission and h.stage not in HOLD_STAGES)}
    found = []
    for h in handoffs:
        if h.stage in HOLD_STAGES and h.id not in own_admission:
            continue  # still in the ED: nothing to count yet
        contacts = [*moments.get(h.id, ()), *([h.first_contact_at] if h.first_contact_at else [])]
        admitted = admitted_by_person.get(h.person_id, ())
        found.append(m.Discharge(
            transition_id=h.id, person_id=h.person_id, discharged_at=h.event_time,
            setting=m.Setting.inpatient if h.id in inpatient else m.Setting.emergency,
            time_zone=h.time_zone, contacts=tuple(contacts),
            admitted_at=() if h.id in inpatient else tuple(a for a in admitted if a >= h.event_time)))
    return found


def compute(handoffs: list[_Handoff], moments: dict[str, list[datetime]],
            admissions: Iterable[tuple[str, datetime]]) -> list[dict]:
    """The `handoffmeasure` rows of these handoffs (all of each person's, for FUM's 31 days
    and the next presentation)."""
    discharges = {d.transition_id: d for d in _discharges(handoffs, moments, admissions)}
    eligible, excluded = m.hedis_eligible(discharges.values(), m.Setting.emergency,
                                          service_zone=FALLBACK_ZONE)
    counted = {d.transition_id for d in eligible} | {
        i for i, d in discharges.items() if d.setting == m.Setting.inpatient}
    why = {i: reason for reason, ids in excluded.items() for i in ids}
    following: dict[str, datetime | None] = {}
    by_person: dict[int, list[_Handoff]] = defaultdict(list)
    for h in handoffs:
        by_person[h.person_id].append(h)
    for presentations in by_person.values():
        presentations.sort(key=lambda h: (h.event_time, h.id))
        for h, later in zip(presentations, [*presentations[1:], None], strict=True):
            following[h.id] = later.event_time if later else None
    rows = []
    for h in handoffs:
        d = discharges.get(h.id)
        tz_name = h.time_zone or FALLBACK_ZONE
        # The 72-hour and first-contact clocks take every contact, as a discharge would.
        as_discharge = d or m.Discharge(h.id, h.person_id, h.event_time, m.Setting.emergency, tz_name,
                                        contacts=tuple([*moments.get(h.id, ()), *(
                                            [h.first_contact_at] if h.first_contact_at else [])]))
        first = m.first_contact(as_discharge)
        within = m.hours_clock(as_discharge, m.SEVENTY_TWO_HOURS)
        follow_up = (m.follow_up_clocks(d, (7, 30), service_zone=FALLBACK_ZONE)
                     if d is not None and h.id in counted else {})
        item = m.Reconciliation(h.id, h.event_time, tz_name, h.reconciled_at, h.reconciled_by_role)
        mrp = m.mrp_window_clock(item, service_zone=FALLBACK_ZONE)
        anchor = m.Anchor(h.id, h.person_id, h.event_time, following.get(h.id))
        repeat = {days: m.repeat_clock(anchor, timedelta(days=days)) for days in (30, 90)}
        rows.append({
            "transition_id": h.id, "person_id": h.person_id, "team_id": h.team_id,
            "event_time": h.event_time, "discharged": h.stage not in HOLD_STAGES,
            "follow_up_setting": d.setting.value if d is not None else None,
            "follow_up_excluded": why.get(h.id),
            "follow_up_7d_met": bool(follow_up) and follow_up[7].met,
            "follow_up_7d_closes_at": follow_up[7].closes_at if follow_up else None,
            "follow_up_30d_met": bool(follow_up) and follow_up[30].met,
            "follow_up_30d_closes_at": follow_up[30].closes_at if follow_up else None,
            "first_contact_hours": m.hours_between(h.event_time, first) if first else None,
            "within_72h_met": within.met, "within_72h_closes_at": within.closes_at,
            "attended": h.attended, "missed": h.missed,
            "reconciled_by_role": h.reconciled_by_role,
            "reconciled_after_seconds": ((h.reconciled_at - h.event_time).total_seconds()
                                         if h.reconciled_at else None),
            "mrp_dates_met": mrp.met, "mrp_closes_at": mrp.closes_at,
            "repeat_30d_met": repeat[30].met, "repeat_30d_closes_at": repeat[30].closes_at,
            "repeat_90d_met": repeat[90].met, "repeat_90d_closes_at": repeat[90].closes_at,
        })
    return rows


def refresh(session: Session, person_ids: Collection[int], *, on_failure_forget: bool = False) -> int:
    """Recompute the people's handoff clocks in the session's transaction; the rows written.

    `on_failure_forget`: for the write hooks. Should computing the clocks fail (a defect, not
    the database), the people's rows are deleted instead, logged, and left for the next report
    to compute: a derived table must never stop a clinical record from being written."""
    people = sorted({p for p in person_ids if p is not None})
    written = 0
    for start in range(0, len(people), _BATCH):
        batch = people[start:start + _BATCH]
        if session.get_bind().dialect.name == "postgresql":
            # One refresh of a person at a time: a concurrent transaction's refresh waits here
            # until this one commits, then reads what it wrote (read committed takes a new
            # snapshot per statement), so the last rows written are never computed from
            # records older than the ones they replace. SQLite writers are serial already.
            # FOR NO KEY UPDATE: it must not conflict with the KEY SHARE lock that inserting a
            # row referencing the person takes, or two such writers would deadlock.
            session.execute(select(Person.id).where(col(Person.id).in_(batch))
                            .order_by(Person.id).with_for_update(key_share=True))
        handoffs, moments, admissions = _load(session, batch)
        ids = [h.id for h in handoffs]
        try:
            rows = compute(handoffs, moments, admissions)
        except Exception as error:
            if not on_failure_forget:
                raise
            log.error("measure clocks not computed for %d people (%s); the next outcome report "
                      "computes them", len(batch), type(error).__name__)
            rows = []
        session.execute(delete(HandoffMeasure).where(or_(
            col(HandoffMeasure.person_id).in_(batch), col(HandoffMeasure.transition_id).in_(ids))))
        if rows:
            session.execute(insert(HandoffMeasure), rows)
        written += len(rows)
    return written


def refresh_all(session: Session) -> int:
    """Rebuild every handoff's clocks (after a bulk load that bypassed the ORM, or a repair)."""
    people = session.exec(select(Transition.person_id).where(Transition.kind == "handoff")
                          .distinct()).all()
    session.execute(delete(HandoffMeasure))
    return refresh(session, people)


def snapshot(session: Session) -> dict[str, tuple]:
    """Every stored clock row, to tell what a rebuild changed."""
    table = HandoffMeasure.__table__
    return {row[0]: tuple(row) for row in session.execute(select(*table.columns)).all()}


def changed_since(session: Session, before: dict[str, tuple]) -> int:
    """How many rows differ from `before` (added, removed or changed)."""
    after = snapshot(session)
    return sum(1 for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def fill_missing(session: Session, team_ids: Collection[int], start: datetime, end: datetime) -> int:
    """Compute the clocks of the period's handoffs that have none yet (written before the
    table existed, or by a bulk load): the people concerned, all of their handoffs."""
    missing = session.exec(
        select(Transition.person_id).distinct()
        .outerjoin(HandoffMeasure, col(HandoffMeasure.transition_id) == Transition.id)
        .where(Transition.kind == "handoff", col(Transition.team_id).in_(list(team_ids)),
               col(Transition.event_time) >= start, col(Transition.event_time) < end,
               col(HandoffMeasure.transition_id).is_(None))).all()
    return refresh(session, missing) if missing else 0


# --- keeping them current --------------------------------------------------------------------


# The columns a handoff's clocks are computed from; a write that changes none of them (a task
# due date, `updated_at`, a stage change between two running stages) recomputes nothing.
_TRANSITION_COLUMNS = ("kind", "person_id", "team_id", "source", "event_time", "first_contact_at",
                       "medication_reconciled_at", "medication_reconciled_by_id")
_CONTACT_COLUMNS = ("transition_id", "outcome", "outcome_at")
_PERSON_COLUMNS = ("time_zone",)


def _changed(obj, columns: Iterable[str]) -> bool:
    attrs = inspect(obj).attrs
    return any(attrs[name].history.has_changes() for name in columns)


def _hold_changed(transition: Transition) -> bool:
    """Into or out of a hold stage: whether a clock runs at all changes with it."""
    history = inspect(transition).attrs.stage.history
    return any(stage in HOLD_STAGES for stage in (*history.added, *history.deleted))


@event.listens_for(Session, "after_flush")
def _note_changes(session: Session, _context) -> None:
    """Note whose clocks a flush may have changed (the lists and each row's history still show
    what was flushed)."""
    people: set[int] = set()
    transitions: set[str] = set()
    created_or_gone = {id(obj) for obj in chain(session.new, session.deleted)}  # rows: unhashable
    for obj in chain(session.new, session.dirty, session.deleted):
        new_or_gone = id(obj) in created_or_gone
        if isinstance(obj, Transition):
            if obj.kind == "handoff" and (new_or_gone or _changed(obj, _TRANSITION_COLUMNS)
                                          or _hold_changed(obj)):
                people.add(obj.person_id)
                people.update(inspect(obj).attrs.person_id.history.deleted)  # moved from
        elif isinstance(obj, Contact):
            if new_or_gone or _changed(obj, _CONTACT_COLUMNS):
                transitions.add(obj.transition_id)
        elif isinstance(obj, AuditEvent):
            if obj.action == ADMISSION and obj.transition_id:
                transitions.add(obj.transition_id)
        elif isinstance(obj, Person) and obj.id is not None:
            if new_or_gone or _changed(obj, _PERSON_COLUMNS):
                people.add(obj.id)
    if not people and not transitions:
        return
    pending = session.info.setdefault(_PENDING, (set(), set()))
    pending[0].update(people)
    pending[1].update(transitions)


def apply_pending(session: Session) -> None:
    """Recompute the clocks of everyone noted since the last time; before a commit, and
    before the report reads them in the same session."""
    session.flush()
    pending = session.info.pop(_PENDING, None)
    if pending is None:
        return
    people, transitions = pending
    if transitions:
        people |= set(session.exec(
            select(Transition.person_id).where(col(Transition.id).in_(list(transitions)),
                                               Transition.kind == "handoff")).all())
    if people:
        refresh(session, people, on_failure_forget=True)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    apply_pending(session)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
