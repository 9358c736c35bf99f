"""The outcome report for a period and a set of teams.

The handoff figures read each handoff's stored clocks (store/measure_facts.py, computed by the
rules of domain/measures.py as the records change): one scan gathers every figure's ids. The
step-up, step-down, admission-avoidance and feedback figures are few rows, read as they stand
and fed to the same rules. Each figure carries its numerator, denominator and the transition
ids behind both, so a figure can be audited row by row.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, func, or_, text, true
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from ..domain import measures as m
from ..domain.policy import Policy
from . import measure_facts
from .models import (
    AvoidanceEpisode,
    HandoffMeasure,
    StepUpRequest,
    Team,
    Transition,
    TransitionFeedback,
)
from .types import UTCDateTime

REPEAT_HORIZON = timedelta(days=90)  # the longest repeat-crisis window reaches this far ahead
TAPER_COMPLETED = {"completed"}
RE_ESCALATED = {"re_escalated", "re-escalated", "stepped_up"}
AVOIDED = "admission_avoided"
FEEDBACK_PATHWAYS = {"handoff": "Handoff", "step_up": "Step-up", "step_down": "Step-down",
                     "admission_avoidance": "Admission avoidance"}


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive
    end: datetime  # exclusive
    as_of: datetime  # windows still open at this moment are pending


def _in_period(team_ids: Collection[int], period: Period):
    f = HandoffMeasure
    return and_(col(f.team_id).in_(list(team_ids)), col(f.event_time) >= period.start,
                col(f.event_time) < period.end)


class _RateSpec(NamedTuple):
    measure: str
    title: str
    scope: Any  # which handoffs the figure is about
    met: Any  # its clock met (never NULL)
    open: Any  # its window still open at as_of (never NULL)


def _rate_specs(period: Period, policy: Policy) -> list[_RateSpec]:
    f = HandoffMeasure
    as_of = period.as_of
    roles = list(policy.handoff.medication_reconciliation_roles)
    deadline = policy.handoff.medication_reconciliation_due
    by_allowed_role = and_(col(f.reconciled_by_role).is_not(None),
                           col(f.reconciled_by_role).in_(roles))
    discharged = col(f.discharged).is_(True)
    specs = [_RateSpec("first_contact.within_72h", "First contact within 72 hours (NHS England)",
                       discharged, col(f.within_72h_met).is_(True), col(f.within_72h_closes_at) > as_of)]
    for setting, name, label in (("emergency", "fum", "an ED or crisis visit (HEDIS FUM)"),
                                 ("inpatient", "fuh", "an inpatient discharge (HEDIS FUH)")):
        counted = and_(f.follow_up_setting == setting, col(f.follow_up_excluded).is_(None))
        for days, met, closes in ((7, f.follow_up_7d_met, f.follow_up_7d_closes_at),
                                  (30, f.follow_up_30d_met, f.follow_up_30d_closes_at)):
            specs.append(_RateSpec(f"{name}.{days}d", f"Follow-up within {days} days of {label}",
                                   counted, col(met).is_(True), col(closes) > as_of))
    specs += [
        _RateSpec("medication.within_policy", "Medication reconciled within the policy's deadline",
                  discharged,
                  and_(col(f.reconciled_after_seconds).is_not(None), by_allowed_role,
                       col(f.reconciled_after_seconds) <= deadline.total_seconds()),
                  col(f.event_time) >= as_of - deadline),
        _RateSpec("medication.mrp_30d", "Medication reconciled within 30 days (HEDIS MRP)",
                  discharged, and_(col(f.mrp_dates_met).is_(True), by_allowed_role),
                  col(f.mrp_closes_at) > as_of),
    ]
    for days, met, closes in ((30, f.repeat_30d_met, f.repeat_30d_closes_at),
                              (90, f.repeat_90d_met, f.repeat_90d_closes_at)):
        specs.append(_RateSpec(f"repeat_crisis.{days}d",
                               f"Crisis presentations followed by another within {days} days",
                               true(), col(met).is_(True), col(closes) > as_of))
    return specs


def _ids(text_value: str | None) -> list[str]:
    return text_value.split(",") if text_value else []


def _handoff_figures(session: Session, team_ids: Collection[int], period: Period,
                     policy: Policy) -> dict[str, dict[str, Any]]:
    """Every handoff figure from the stored clocks: one scan of the period's rows, each
    figure's ids gathered by the database (met; open and not met; closed and not met)."""
    f = HandoffMeasure
    specs = _rate_specs(period, policy)
    ids = lambda condition: func.aggregate_strings(f.transition_id, ",").filter(condition)  # noqa: E731
    columns = []
    for spec in specs:
        columns += [ids(and_(spec.scope, spec.met)), ids(and_(spec.scope, ~spec.met, spec.open)),
                    ids(and_(spec.scope, ~spec.met, ~spec.open))]
    reasons = ("followed_by_admission", "repeat_visit_within_31_days")
    columns += [ids(and_(f.follow_up_setting == "emergency", f.follow_up_excluded == reason))
                for reason in reasons]
    row = session.execute(select(*columns).where(_in_period(team_ids, period))).one()
    excluded = {reason: tuple(found) for reason, value in zip(reasons, row[-len(reasons):], strict=True)
                if (found := _ids(value))}
    figures = {}
    for n, spec in enumerate(specs):
        met, pending, not_met = (_ids(v) for v in row[3 * n:3 * n + 3])
        found = m.Rate(tuple(met), tuple(met + not_met), tuple(pending),
                       excluded if spec.measure.startswith("fum.") else {})
        figures[spec.measure] = rate_figure(spec.measure, spec.title, found)
    hours, attended = [], []
    for transition_id, first_contact_hours, attended_count, missed_count in _rows(session, select(
            f.transition_id, f.first_contact_hours, f.attended, f.missed)
            .where(_in_period(team_ids, period), col(f.discharged).is_(True))):
        if first_contact_hours is not None:
            hours.append((transition_id, first_contact_hours))
        attended.append((transition_id, attended_count, missed_count))
    figures["first_contact.hours"] = duration_figure(
        "first_contact.hours", "Hours from discharge to first contact",
        m.Durations(tuple(h for _, h in hours), tuple(i for i, _ in hours)))
    figures["follow_up.attendance"] = rate_figure(
        "follow_up.attendance", "Follow-up contacts attended (of attended and missed; ids per contact)",
        m.attendance(attended))
    return figures


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


def _next_presentation(person_id, after, horizon: datetime):
    """The person's next crisis presentation (any team) after `after`: one index probe on
    (person_id, event_time) per step-down."""
    later = aliased(Transition)
    return (select(func.min(later.event_time, type_=UTCDateTime))
            .where(later.kind == "handoff", later.person_id == person_id,
                   col(later.event_time) > after, col(later.event_time) < horizon)
            .scalar_subquery())


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


_StepUpRow = namedtuple("_StepUpRow", ["transition_id", "requested_at", "decided_at", "decision",
                                       "waiting_since", "capacity_wait_seconds", "capacity_status",
                                       "first_intensified_contact_at"])


def _load_step_ups(session: Session, team_ids: Collection[int], period: Period) -> list[_StepUpRow]:
    # Columns, not table objects, and through `_rows`: the figures read a few fields of
    # thousands of rows.
    r = StepUpRequest
    statement = select(*(getattr(r, name) for name in _StepUpRow._fields)).where(
        col(StepUpRequest.team_id).in_(list(team_ids)),
        col(StepUpRequest.requested_at) >= period.start, col(StepUpRequest.requested_at) < period.end)
    return [_StepUpRow(*row) for row in _rows(session, statement)]


# --- assembling the figures ------------------------------------------------------------------


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
    measure_facts.apply_pending(session)  # this session's own writes, not yet committed
    measure_facts.fill_missing(session, team_ids, period.start, period.end)
    handoff = _handoff_figures(session, team_ids, period, policy)
    step_downs = _load_step_downs(session, team_ids, period)
    order = ["first_contact.hours", "first_contact.within_72h", "fum.7d", "fum.30d", "fuh.7d",
             "fuh.30d", "follow_up.attendance", "medication.within_policy", "medication.mrp_30d",
             "repeat_crisis.30d", "repeat_crisis.90d"]
    figures = [handoff[name] for name in order]
    figures += _step_down_cohort_figures(period, step_downs)
    figures += _step_up_figures(_load_step_ups(session, team_ids, period), period.as_of)
    figures += _step_down_figures([t for t, _ in step_downs], period)
    figures += _avoidance_figures(_load_avoidance(session, team_ids, period), period)
    figures += _feedback_figures(session, team_ids, period, policy)
    return {"period": {"start": period.start, "end": period.end, "as_of": period.as_of,
                       "time_zone": zone}, "figures": figures}


def _step_down_cohort_figures(period: Period, step_downs):
    # The cohort is anchored where the person was stepped down (the taper's start): a crisis
    # during the taper is the cliff edge this figure exists to show.
    cohort = [m.Anchor(t.id, t.person_id, t.event_time or t.created_at, following)
              for t, following in step_downs
              if period.start <= (t.event_time or t.created_at) < period.end]
    return [rate_figure(f"repeat_crisis.after_step_down.{days}d",
                        f"Step-downs started in the period followed by a crisis within {days} days",
                        m.repeat_crisis(cohort, timedelta(days=days), as_of=period.as_of))
            for days in (30, 90)]


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


def _load_avoidance(session: Session, team_ids: Collection[int], period: Period) -> list:
    """Admission-avoidance episodes ended in the period, each with the person's next crisis
    presentation after its end."""
    e = AvoidanceEpisode
    statement = select(e.transition_id, e.person_id, e.requested_at, e.ended_at, e.outcome,
                       _next_presentation(e.person_id, e.ended_at, period.end + REPEAT_HORIZON)
                       .label("next_presentation")).where(
        col(e.team_id).in_(list(team_ids)), col(e.ended_at) >= period.start,
        col(e.ended_at) < period.end, col(e.outcome).is_not(None))
    return list(session.exec(statement).all())


def _avoidance_figures(episodes: list, period: Period):
    avoided = [row for row in episodes if row.outcome == AVOIDED]
    # Re-presentation is counted from the end of an avoided episode: a crisis after the person
    # was supported at home instead of admitted.
    anchors = [m.Anchor(row.transition_id, row.person_id, row.ended_at, row.next_presentation)
               for row in avoided]
    return [
        rate_figure("admission_avoidance.avoided", "Admission-avoidance episodes ended without admission",
                    m.outcome_share(((row.transition_id, row.outcome) for row in episodes), {AVOIDED})),
        duration_figure("admission_avoidance.episode_length",
                        "Admission avoided: hours of the crisis episode, from its opening to its end",
                        m.durations((row.transition_id, row.requested_at, row.ended_at) for row in avoided)),
        *[rate_figure(f"repeat_crisis.after_avoidance.{days}d",
                      f"Admissions avoided followed by a crisis presentation within {days} days",
                      m.repeat_crisis(anchors, timedelta(days=days), as_of=period.as_of))
          for days in (30, 90)],
    ]


def _feedback_figures(session: Session, team_ids: Collection[int], period: Period, policy: Policy):
    """The person's answer at closure, by pathway: questions answered (of those asked; pending
    while the reply window is open), and of the answers, confident (4-5) and low scores."""
    f = TransitionFeedback
    rows = session.exec(select(f.transition_id, f.pathway, f.asked_at, f.rating).where(
        col(f.team_id).in_(list(team_ids)), col(f.asked_at) >= period.start,
        col(f.asked_at) < period.end)).all()
    if policy.feedback is None and not rows:
        return []
    reply_within = policy.feedback.reply_within if policy.feedback else timedelta(0)
    low_at = policy.feedback.low_score_at_or_below if policy.feedback else 2
    figures = []
    for pathway in FEEDBACK_PATHWAYS:
        asked = [row for row in rows if row.pathway == pathway]
        answered = [row for row in asked if row.rating is not None]
        label = FEEDBACK_PATHWAYS[pathway]
        figures += [
            rate_figure(f"feedback.{pathway}.answered", f"{label}: feedback questions answered",
                        m.rate(((row.transition_id, m.Clock(row.rating is not None,
                                                            row.asked_at + reply_within))
                                for row in asked), as_of=period.as_of)),
            rate_figure(f"feedback.{pathway}.confident",
                        f"{label}: answers confident about what happens next (4 or 5 of 5)",
                        m.share((row.transition_id, row.rating >= 4) for row in answered)),
            rate_figure(f"feedback.{pathway}.low",
                        f"{label}: low scores ({low_at} or less of 5), each a task for the owner",
                        m.share((row.transition_id, row.rating <= low_at) for row in answered)),
        ]
    return figures


def team_ids_for(*, session: Session, codes: Collection[str]) -> dict[str, int]:
    return {code: team_id for team_id, code in
            session.exec(select(Team.id, Team.code).where(col(Team.code).in_(list(codes)))).all()}
