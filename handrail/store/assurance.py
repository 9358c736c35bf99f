"""The weekly assurance's four checks over one team's week, and the stored report.

Each finding names the transition it is about, so it becomes a task on that transition for
the team's supervisor; the report keeps each check's count for this week and earlier ones.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from ..domain.assurance import AssuranceCheck, AssurancePolicy, IsoWeek
from ..domain.handoff import HOLD_STAGES
from .models import AssuranceReport, Contact, StepUpRequest, Team, Transition
from .types import UTCDateTime


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def missed_first_appointments(session: Session, team_id: int, start: datetime, end: datetime):
    statement = (
        select(Contact.id, Contact.transition_id, Contact.appointment_at, Transition.person_id)
        .join(Transition, col(Transition.id) == Contact.transition_id)
        .where(Transition.team_id == team_id, Contact.sequence == 1, Contact.status == "missed",
               col(Contact.appointment_at) >= start, col(Contact.appointment_at) < end)
        .order_by(col(Contact.appointment_at))
    )
    return [{"check": AssuranceCheck.missed_first_appointments.value, "transition_id": t,
             "person_id": p, "detail": {"contact_id": c, "appointment_at": _iso(at)}}
            for c, t, at, p in session.exec(statement).all()]


def delayed_follow_ups(session: Session, team_id: int, start: datetime, end: datetime):
    """Acute-event handoffs whose first-contact deadline fell in the week and passed unmet."""
    statement = (
        select(Transition.id, Transition.person_id, Transition.first_contact_due,
               Transition.first_contact_at)
        .where(Transition.kind == "handoff", Transition.team_id == team_id,
               col(Transition.first_contact_due) >= start, col(Transition.first_contact_due) < end,
               col(Transition.stage).not_in(HOLD_STAGES),
               or_(col(Transition.first_contact_at).is_(None),
                   col(Transition.first_contact_at) > col(Transition.first_contact_due)))
        .order_by(col(Transition.first_contact_due))
    )
    return [{"check": AssuranceCheck.delayed_follow_ups.value, "transition_id": t, "person_id": p,
             "detail": {"first_contact_due": _iso(due), "first_contact_at": _iso(made)}}
            for t, p, due, made in session.exec(statement).all()]


def waiting_for_capacity(session: Session, team_id: int, start: datetime, end: datetime):
    """Approved step-ups that waited for a slot at some time in the week."""
    statement = (
        select(StepUpRequest)
        .where(StepUpRequest.team_id == team_id, col(StepUpRequest.waiting_since) < end,
               or_(StepUpRequest.capacity_status == "waiting",
                   col(StepUpRequest.slot_claimed_at) >= start))
        .order_by(col(StepUpRequest.waiting_since))
    )
    return [{"check": AssuranceCheck.waiting_for_capacity.value, "transition_id": r.transition_id,
             "person_id": r.person_id,
             "detail": {"waiting_since": _iso(r.waiting_since), "slot_claimed_at": _iso(r.slot_claimed_at),
                        "urgency": r.urgency}}
            for r in session.exec(statement).all()]


def repeat_crisis_after_step_down(session: Session, team_id: int, start: datetime, end: datetime,
                                  window: timedelta):
    """Crisis presentations in the week (any team) by someone this team stepped down within
    `window` before it; the finding is on the step-down, the team's own transition."""
    crisis, step_down = aliased(Transition), aliased(Transition)
    stepped_down_at = func.coalesce(step_down.event_time, step_down.created_at, type_=UTCDateTime)
    statement = (
        select(step_down.id, step_down.person_id, crisis.id, crisis.event_time, stepped_down_at)
        .join(crisis, and_(crisis.person_id == step_down.person_id, crisis.kind == "handoff"))
        .where(step_down.kind == "step_down", step_down.team_id == team_id,
               col(crisis.event_time) >= start, col(crisis.event_time) < end,
               stepped_down_at < crisis.event_time)
        .order_by(crisis.event_time)
    )
    findings = []
    for step_down_id, person_id, crisis_id, crisis_at, down_at in session.exec(statement).all():
        if crisis_at - down_at <= window:  # the window compared here: portable across databases
            findings.append({
                "check": AssuranceCheck.repeat_crisis_after_step_down.value,
                "transition_id": step_down_id, "person_id": person_id,
                "detail": {"crisis_transition_id": crisis_id, "crisis_at": _iso(crisis_at),
                           "stepped_down_at": _iso(down_at)}})
    return findings


def find(session: Session, team_id: int, week: IsoWeek, policy: AssurancePolicy) -> list[dict]:
    start, end = week.bounds(policy.time_zone)
    return (missed_first_appointments(session, team_id, start, end)
            + delayed_follow_ups(session, team_id, start, end)
            + waiting_for_capacity(session, team_id, start, end)
            + repeat_crisis_after_step_down(session, team_id, start, end, policy.step_down_window))


def counts_of(findings: list[dict]) -> dict[str, int]:
    return {check.value: sum(1 for f in findings if f["check"] == check.value)
            for check in AssuranceCheck}


def trend(session: Session, team_id: int, week: IsoWeek, policy: AssurancePolicy,
          this_week: dict[str, int]) -> list[dict[str, Any]]:
    """This week's counts and the policy's earlier weeks', newest first: as stored when those
    weeks were reported, or counted now for a week that never was."""
    rows = [{"week": str(week), "counts": this_week, "source": "this_report"}]
    for back in range(1, policy.trend_weeks + 1):
        earlier = week.previous(back)
        stored = stored_report(session=session, team_id=team_id, week=str(earlier))
        if stored is not None:
            rows.append({"week": str(earlier), "counts": stored.counts, "source": "stored"})
        else:
            rows.append({"week": str(earlier), "counts": counts_of(find(session, team_id, earlier, policy)),
                         "source": "counted"})
    return rows


def stored_report(*, session: Session, team_id: int, week: str) -> AssuranceReport | None:
    return session.exec(select(AssuranceReport).where(
        AssuranceReport.team_id == team_id, AssuranceReport.week == week)).first()


def build_report(*, session: Session, team_id: int, week: IsoWeek, policy: AssurancePolicy,
                 policy_version: str, workflow_id: str | None, at: datetime) -> AssuranceReport:
    findings = find(session, team_id, week, policy)
    counts = counts_of(findings)
    start, end = week.bounds(policy.time_zone)
    return AssuranceReport(
        team_id=team_id, week=str(week), week_start=start, week_end=end, generated_at=at,
        workflow_id=workflow_id, policy_version=policy_version, counts=counts, findings=findings,
        trend=trend(session, team_id, week, policy, counts))


def save_report(*, session: Session, report: AssuranceReport) -> AssuranceReport:
    """Keep the first report of a team's week: a retried or repeated run returns it."""
    existing = stored_report(session=session, team_id=report.team_id, week=report.week)
    if existing is not None:
        return existing
    try:
        with session.begin_nested():
            session.add(report)
            session.flush()
    except IntegrityError:  # another run stored it between our read and our write
        existing = stored_report(session=session, team_id=report.team_id, week=report.week)
        assert existing is not None
        return existing
    return report


def teams(*, session: Session, codes: Collection[str] | None = None) -> list[Team]:
    statement = select(Team).order_by(col(Team.code))
    if codes:
        statement = statement.where(col(Team.code).in_(list(codes)))
    return list(session.exec(statement).all())
