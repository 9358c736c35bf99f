"""The outcome report: a handful of indexed queries for a period and a set of teams, fed to the
pure clocks of domain/measures.py.

Each figure carries its numerator, denominator and the transition ids behind both, so a figure
can be audited row by row. Queries reach back before the period where a definition needs it
(a visit in the period may be a person's second in 31 days) and ahead of it where the period's
windows reach (a repeat presentation within 90 days), never further.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, case, func, or_, text
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from ..domain import measures as m
from ..domain.policy import Policy
from .models import AuditEvent, Contact, Person, Staff, StepUpRequest, Team, Transition
from .types import UTCDateTime

FUM_LOOKBACK = timedelta(days=m.FUM_DEDUPLICATION_DAYS)
REPEAT_HORIZON = timedelta(days=90)  # the longest repeat-crisis window reaches this far ahead
HOLD_STAGES = ("awaiting_discharge", "inpatient_hold")  # not (yet) discharged: no clock runs
TAPER_COMPLETED = {"completed"}
RE_ESCALATED = {"re_escalated", "re-escalated", "stepped_up"}


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive
    end: datetime  # exclusive
    as_of: datetime  # windows still open at this moment are pending


def _handoffs_in(team_ids: Collection[int], start: datetime, end: datetime):
    return and_(Transition.kind == "handoff", col(Transition.team_id).in_(list(team_ids)),
                col(Transition.event_time) >= start, col(Transition.event_time) < end)


class _HandoffRow(NamedTuple):
    id: str
    person_id: int
    source: str | None
    stage: str
    event_time: datetime
    first_contact_at: datetime | None
    reconciled_at: datetime | None
    reconciled_by_role: str | None
    time_zone: str
    first_attended_at: datetime | None
    attended: int
    missed: int
    next_presentation_at: datetime | None


def _next_presentation(person_id, after, horizon: datetime):
    """The person's next crisis presentation (any team) after `after`: one index probe on
    (person_id, event_time) per row, instead of loading everyone's presentations."""
    later = aliased(Transition)
    return (select(func.min(later.event_time, type_=UTCDateTime))
            .where(later.kind == "handoff", later.person_id == person_id,
                   col(later.event_time) > after, col(later.event_time) < horizon)
            .scalar_subquery())


def _load_handoffs(session: Session, team_ids: Collection[int], period: Period) -> list[_HandoffRow]:
    """The period's handoffs (and 31 days before), each with its contacts summed up, who
    reconciled its medication, and the person's next presentation: one query."""
    scope = _handoffs_in(team_ids, period.start - FUM_LOOKBACK, period.end)
    attended = case((Contact.outcome == "attended", 1), else_=0)
    contacts = (
        select(Contact.transition_id.label("transition_id"),
               func.min(case((Contact.outcome == "attended", Contact.outcome_at)),
                        type_=UTCDateTime).label("first_attended_at"),
               func.sum(attended).label("attended"),
               func.sum(case((Contact.outcome == "missed", 1), else_=0)).label("missed"))
        .join(Transition, col(Transition.id) == Contact.transition_id)
        .where(scope, col(Contact.outcome).is_not(None))
        .group_by(Contact.transition_id)
        .subquery())
    # Each presentation's next one, in any team, among the people in scope: one sort, where
    # a probe per row cost more than the rest of the query for a whole service's year.
    presented = aliased(Transition)
    in_scope = select(Transition.person_id).where(scope)
    following = (
        select(presented.id.label("id"),
               func.lead(presented.event_time, type_=UTCDateTime).over(
                   partition_by=presented.person_id,
                   order_by=(presented.event_time, presented.id)).label("next_presentation_at"))
        .where(presented.kind == "handoff", col(presented.person_id).in_(in_scope),
               col(presented.event_time) >= period.start - FUM_LOOKBACK,
               col(presented.event_time) < period.end + REPEAT_HORIZON)
        .subquery())
    reconciler = aliased(Staff)
    statement = (
        select(Transition.id, Transition.person_id, Transition.source, Transition.stage,
               Transition.event_time, Transition.first_contact_at,
               Transition.medication_reconciled_at, reconciler.role, Person.time_zone,
               contacts.c.first_attended_at, func.coalesce(contacts.c.attended, 0),
               func.coalesce(contacts.c.missed, 0), following.c.next_presentation_at)
        .join(Person, col(Person.id) == Transition.person_id)
        .join(following, following.c.id == Transition.id)
        .outerjoin(reconciler, col(reconciler.id) == Transition.medication_reconciled_by_id)
        .outerjoin(contacts, contacts.c.transition_id == Transition.id)
        .where(scope)
    )
    return [_HandoffRow(*row) for row in _rows(session, statement)]


def _rows(session: Session, statement) -> list[tuple]:
    """The statement's rows as plain tuples. On PostgreSQL straight from the driver, which
    already returns aware datetimes: SQLAlchemy's per-value processing of a hundred thousand
    rows was most of the report's time. Other databases go through SQLAlchemy's types."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return [tuple(row) for row in connection.execute(statement).all()]
    compiled = statement.compile(dialect=connection.dialect,
                                 compile_kwargs={"render_postcompile": True})
    cursor = connection.connection.cursor()  # the session's own connection and transaction
    try:
        cursor.execute(compiled.string, compiled.params)
        return cursor.fetchall()
    finally:
        cursor.close()


def _load_attended(session: Session, transition_ids: list[str]) -> dict[str, list[datetime]]:
    """Every attended contact of a few transitions, where the first alone cannot decide."""
    found: dict[str, list[datetime]] = defaultdict(list)
    for chunk in (transition_ids[i:i + 1000] for i in range(0, len(transition_ids), 1000)):
        statement = select(Contact.transition_id, Contact.outcome_at).where(
            col(Contact.transition_id).in_(chunk), Contact.outcome == "attended",
            col(Contact.outcome_at).is_not(None))
        for transition_id, at in session.exec(statement).all():
            found[transition_id].append(at)
    return found


def _load_admissions(session: Session, team_ids: Collection[int], period: Period):
    """(transition id, person id, when) of inpatient admissions recorded on those handoffs."""
    statement = (
        select(AuditEvent.transition_id, Transition.person_id, AuditEvent.at)
        .join(Transition, col(Transition.id) == AuditEvent.transition_id)
        .where(AuditEvent.action == "encounter.admission",
               _handoffs_in(team_ids, period.start - FUM_LOOKBACK, period.end))
    )
    return session.exec(statement).all()


def _load_step_downs(session: Session, team_ids: Collection[int],
                     period: Period) -> list[tuple[Any, datetime | None]]:
    """Step-downs started or closed in the period, each with the person's next crisis after
    its start."""
    started = func.coalesce(Transition.event_time, Transition.created_at, type_=UTCDateTime)
    t = Transition
    statement = select(t.id, t.person_id, t.event_time, t.created_at, t.status, t.closed_at,
                       t.outcome, _next_presentation(t.person_id, started,
                                                     period.end + REPEAT_HORIZON)).where(
        Transition.kind == "step_down", col(Transition.team_id).in_(list(team_ids)),
        or_(and_(started >= period.start, started < period.end),
            and_(col(Transition.closed_at) >= period.start, col(Transition.closed_at) < period.end)),
    )
    return [(row, row[-1]) for row in session.exec(statement).all()]


def _load_step_ups(session: Session, team_ids: Collection[int], period: Period) -> list:
    # Columns, not table objects: the figures read a few fields of thousands of rows.
    r = StepUpRequest
    statement = select(r.transition_id, r.requested_at, r.decided_at, r.decision, r.waiting_since,
                       r.capacity_wait_seconds, r.capacity_status,
                       r.first_intensified_contact_at).where(
        col(StepUpRequest.team_id).in_(list(team_ids)),
        col(StepUpRequest.requested_at) >= period.start, col(StepUpRequest.requested_at) < period.end)
    return list(session.exec(statement).all())


# --- assembling the figures ------------------------------------------------------------------


def _undecided_by_first_contact(row: _HandoffRow, inpatient: bool) -> bool:
    """Whether the first attended contact alone might not decide FUM/FUH: it may fall before
    the clock's first date (FUH: the discharge date, within 48 hours in any zone) while a
    later one counts. Those few transitions have all their contacts loaded."""
    first = row.first_attended_at
    if first is None or row.attended < 2:
        return False
    return first < row.event_time + timedelta(hours=48) if inpatient else first < row.event_time


def _discharges(session: Session, handoffs: list[_HandoffRow], admissions) -> list[m.Discharge]:
    own_admission: set[str] = set()
    admitted_by_person: dict[int, list[datetime]] = defaultdict(list)
    for transition_id, person_id, at in admissions:
        own_admission.add(transition_id)
        admitted_by_person[person_id].append(at)
    for row in handoffs:  # an inpatient discharge implies an admission before it
        if row.source == "inpatient":
            admitted_by_person[row.person_id].append(row.event_time)
    # Admitted from the ED and discharged since: its clock is the inpatient discharge's.
    inpatient = {row.id for row in handoffs if row.source == "inpatient"
                 or (row.id in own_admission and row.stage not in HOLD_STAGES)}
    every_contact = _load_attended(session, [
        row.id for row in handoffs if _undecided_by_first_contact(row, row.id in inpatient)])
    result = []
    for row in handoffs:
        if row.stage in HOLD_STAGES and row.id not in own_admission:
            continue  # still in the ED: nothing to count yet
        moments = every_contact.get(row.id) or (
            [row.first_attended_at] if row.first_attended_at else [])
        if row.first_contact_at is not None:
            moments = [*moments, row.first_contact_at]
        admitted = admitted_by_person.get(row.person_id, ())
        result.append(m.Discharge(
            transition_id=row.id, person_id=row.person_id, discharged_at=row.event_time,
            setting=m.Setting.inpatient if row.id in inpatient else m.Setting.emergency,
            time_zone=row.time_zone, contacts=tuple(moments),
            admitted_at=() if row.id in inpatient else tuple(a for a in admitted if a >= row.event_time),
        ))
    return result


def rate_figure(measure: str, title: str, rate: m.Rate) -> dict[str, Any]:
    return {
        "measure": measure, "title": title, "type": "rate",
        "numerator": rate.numerator, "denominator": rate.denominator, "rate": rate.rate,
        "numerator_ids": list(rate.numerator_ids), "denominator_ids": list(rate.denominator_ids),
        "pending_ids": list(rate.pending_ids),
        "excluded": {reason: list(ids) for reason, ids in rate.excluded.items()},
    }


def duration_figure(measure: str, title: str, found: m.Durations) -> dict[str, Any]:
    return {
        "measure": measure, "title": title, "type": "duration_hours",
        "count": found.count, "median_hours": found.median, "p90_hours": found.p90,
        "transition_ids": list(found.transition_ids),
    }


def outcomes_report(*, session: Session, team_ids: Collection[int], period: Period,
                    policy: Policy) -> dict[str, Any]:
    """Every figure for the teams' transitions whose event falls in the period."""
    zone = policy.assurance.time_zone if policy.assurance else "Europe/London"
    if session.get_bind().dialect.name == "postgresql":
        # JIT compiling these plans took longer than running them (1.2 s of 1.9 s measured on a
        # year of 100,000 transitions): the report's queries are many rows, simple expressions.
        session.execute(text("SET LOCAL jit = off"))
    handoffs = _load_handoffs(session, team_ids, period)
    step_downs = _load_step_downs(session, team_ids, period)
    discharges = _discharges(session, handoffs, _load_admissions(session, team_ids, period))
    # Still in hospital (admitted from the ED): it stays in the discharges only so that FUM can
    # exclude the visit; no clock from a discharge runs for it yet.
    held = {row.id for row in handoffs if row.stage in HOLD_STAGES}
    current = [d for d in discharges
               if period.start <= d.discharged_at < period.end and d.transition_id not in held]
    current_ids = {d.transition_id for d in current}
    as_of = period.as_of

    figures = [
        duration_figure("first_contact.hours", "Hours from discharge to first contact",
                        m.time_to_first_contact(current)),
        rate_figure("first_contact.within_72h", "First contact within 72 hours (NHS England)",
                    m.within_hours(current, m.SEVENTY_TWO_HOURS, as_of=as_of)),
    ]
    for setting, name, label in ((m.Setting.emergency, "fum", "an ED or crisis visit (HEDIS FUM)"),
                                 (m.Setting.inpatient, "fuh", "an inpatient discharge (HEDIS FUH)")):
        rates = m.hedis_follow_ups(discharges, setting, (7, 30), as_of=as_of, service_zone=zone,
                                   period=(period.start, period.end))
        figures += [rate_figure(f"{name}.{days}d", f"Follow-up within {days} days of {label}", rate)
                    for days, rate in rates.items()]
    figures.append(rate_figure(
        "follow_up.attendance", "Follow-up contacts attended (of attended and missed; ids per contact)",
        m.attendance((r.id, r.attended, r.missed) for r in handoffs if r.id in current_ids)))
    figures += _medication_figures(handoffs, current_ids, policy, as_of, zone)
    figures += _repeat_crisis_figures(period, handoffs, step_downs)
    figures += _step_up_figures(_load_step_ups(session, team_ids, period), as_of)
    figures += _step_down_figures([t for t, _ in step_downs], period)
    return {"period": {"start": period.start, "end": period.end, "as_of": as_of,
                       "time_zone": zone}, "figures": figures}


def _medication_figures(handoffs, current_ids, policy: Policy, as_of: datetime, zone: str):
    items = [m.Reconciliation(transition_id=r.id, discharged_at=r.event_time, time_zone=r.time_zone,
                              reconciled_at=r.reconciled_at, reconciled_by_role=r.reconciled_by_role)
             for r in handoffs if r.id in current_ids]
    roles = policy.handoff.medication_reconciliation_roles
    return [
        rate_figure("medication.within_policy", "Medication reconciled within the policy's deadline",
                    m.reconciled_within_deadline(items, policy.handoff.medication_reconciliation_due,
                                                 allowed_roles=roles, as_of=as_of)),
        rate_figure("medication.mrp_30d", "Medication reconciled within 30 days (HEDIS MRP)",
                    m.reconciled_mrp(items, allowed_roles=roles, as_of=as_of, service_zone=zone)),
    ]


def _repeat_crisis_figures(period: Period, handoffs: list[_HandoffRow], step_downs):
    index = [m.Anchor(r.id, r.person_id, r.event_time, r.next_presentation_at) for r in handoffs
             if period.start <= r.event_time < period.end]
    # The cohort is anchored where the person was stepped down (the taper's start): a crisis
    # during the taper is the cliff edge this figure exists to show.
    cohort = [m.Anchor(t.id, t.person_id, t.event_time or t.created_at, following)
              for t, following in step_downs
              if period.start <= (t.event_time or t.created_at) < period.end]
    figures = []
    for days in (30, 90):
        figures.append(rate_figure(f"repeat_crisis.{days}d",
                                   f"Crisis presentations followed by another within {days} days",
                                   m.repeat_crisis(index, timedelta(days=days), as_of=period.as_of)))
    for days in (30, 90):
        figures.append(rate_figure(
            f"repeat_crisis.after_step_down.{days}d",
            f"Step-downs started in the period followed by a crisis within {days} days",
            m.repeat_crisis(cohort, timedelta(days=days), as_of=period.as_of)))
    return figures


def _step_up_figures(requests: list, as_of: datetime):
    approved = [r for r in requests if r.decision in ("approve", "modify")]
    waited = [(r.transition_id, r.waiting_since,
               r.waiting_since + timedelta(seconds=r.capacity_wait_seconds))
              for r in requests if r.waiting_since and r.capacity_wait_seconds is not None]
    waiting = [(r.transition_id, r.waiting_since, as_of) for r in requests
               if r.capacity_status == "waiting" and r.waiting_since is not None]
    return [
        duration_figure("step_up.request_to_decision", "Step-up: hours from request to decision",
                        m.durations((r.transition_id, r.requested_at, r.decided_at) for r in requests)),
        duration_figure("step_up.decision_to_first_contact",
                        "Step-up: hours from decision to the first intensified contact",
                        m.durations((r.transition_id, r.decided_at, r.first_intensified_contact_at)
                                    for r in approved)),
        duration_figure("step_up.capacity_wait", "Step-up: hours waited for capacity (slot claimed)",
                        m.durations(waited)),
        duration_figure("step_up.waiting_now", "Step-up: hours waiting so far, still without a slot",
                        m.durations(waiting)),
    ]


def _step_down_figures(step_downs: list, period: Period):
    closed = [(t.id, t.outcome) for t in step_downs if t.status == "closed" and t.closed_at
              and period.start <= t.closed_at < period.end]
    return [
        rate_figure("step_down.taper_completed", "Step-down tapers closed as completed",
                    m.outcome_share(closed, TAPER_COMPLETED)),
        rate_figure("step_down.re_escalated", "Step-down tapers closed by re-escalation",
                    m.outcome_share(closed, RE_ESCALATED)),
    ]


def team_ids_for(*, session: Session, codes: Collection[str]) -> dict[str, int]:
    return {code: team_id for team_id, code in
            session.exec(select(Team.id, Team.code).where(col(Team.code).in_(list(codes)))).all()}
