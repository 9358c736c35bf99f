"""Reports for supervisors and service managers: the outcome figures commissioners ask for, and
the weekly assurance. Both need `reports:read` and cover only the user's own teams."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlmodel import Session, col, select

from ...domain.assurance import IsoWeek, last_complete_week
from ...security.audit import append_audit
from ...store import assurance, reports
from ...store.models import Team
from ...store.types import utcnow
from ..deps import PolicyDep, Principal, SessionDep, client_ip, require

router = APIRouter(prefix="/api/reports", tags=["reports"])
ReportReader = Annotated[Principal, Depends(require("reports:read"))]
TeamCode = Annotated[
    str | None, Query(description="Team code (default: all your teams)", max_length=100,
                      pattern=r"^[A-Za-z0-9._-]+$")]
LONGEST_PERIOD = timedelta(days=731)  # two years: the report stays one bounded read
CSV_COLUMNS = ["measure", "title", "type", "numerator", "denominator", "rate", "count",
               "median_hours", "p90_hours", "numerator_ids", "denominator_ids", "pending_ids",
               "transition_ids", "excluded"]


class ReportFormat(StrEnum):
    json = "json"
    csv = "csv"


def _refuse(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ["query", field], "msg": message}])


def _teams_in_scope(session: Session, user: Principal, code: str | None) -> list[Team]:
    """The user's teams, or the one named; a team the user is not in is 'not found'."""
    statement = select(Team).where(col(Team.id).in_(list(user.team_ids))).order_by(col(Team.code))
    if code is not None:
        statement = statement.where(Team.code == code)
    teams = list(session.exec(statement).all())
    if code is not None and not teams:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="team not found")
    return teams


def _service_zone(policy) -> str:
    return policy.assurance.time_zone if policy.assurance else "Europe/London"


@router.get("/outcomes", response_model=None)
def outcomes(
    user: ReportReader,
    session: SessionDep,
    policy: PolicyDep,
    from_: Annotated[date, Query(alias="from", description="First day, YYYY-MM-DD (service-local)")],
    to: Annotated[date, Query(description="Last day, inclusive, YYYY-MM-DD (service-local)")],
    team: TeamCode = None,
    format: ReportFormat = ReportFormat.json,
    request: Request = None,  # type: ignore[assignment]  # None when the console calls it
) -> Any:
    """Outcome measures for transitions whose discharge (or request, or step-down) falls in
    the period; every figure lists the transition ids behind its numerator and denominator."""
    if from_ > to:
        raise _refuse("from", f"must not be after to ({to.isoformat()})")
    if to - from_ > LONGEST_PERIOD:
        raise _refuse("to", f"the period may span at most {LONGEST_PERIOD.days} days")
    zone = ZoneInfo(_service_zone(policy))
    teams = _teams_in_scope(session, user, team)
    period = reports.Period(start=datetime.combine(from_, time(0), tzinfo=zone),
                            end=datetime.combine(to + timedelta(days=1), time(0), tzinfo=zone),
                            as_of=utcnow())
    found = reports.outcomes_report(session=session, team_ids=[t.id for t in teams], period=period,
                                    policy=policy) if teams else {"period": {}, "figures": []}
    body = {"from": from_.isoformat(), "to": to.isoformat(), "teams": [t.code for t in teams],
            "time_zone": zone.key, "as_of": period.as_of.isoformat(), "figures": found["figures"]}
    _audit_read(session, request, user, "outcomes",
                {"from": body["from"], "to": body["to"], "teams": body["teams"]})
    if format == ReportFormat.csv:
        return Response(figures_csv(found["figures"]), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="outcomes.csv"'})
    return body  # plain JSON values already (the console reads it as a dict too)


def figures_csv(figures: list[dict[str, Any]]) -> str:
    """One row per figure; id lists space-separated, exclusions as `reason: ids; …`."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for figure in figures:
        row = {key: ("" if value is None else value) for key, value in figure.items()}
        for key in ("numerator_ids", "denominator_ids", "pending_ids", "transition_ids"):
            row[key] = " ".join(figure.get(key, []))
        row["excluded"] = "; ".join(f"{reason}: {' '.join(ids)}"
                                    for reason, ids in figure.get("excluded", {}).items())
        writer.writerow(row)
    return out.getvalue()


@router.get("/assurance")
def assurance_report(
    user: ReportReader,
    session: SessionDep,
    policy: PolicyDep,
    week: Annotated[str | None, Query(description="ISO week, e.g. 2026-W48 (default: last week)",
                                      max_length=10)] = None,
    team: TeamCode = None,
    request: Request = None,  # type: ignore[assignment]  # None when the console calls it
) -> dict[str, Any]:
    """The stored report of each of the user's teams for the week; a week not yet reported is
    counted now and marked `stored: false` (no tasks are made for it)."""
    if policy.assurance is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="the policy has no [assurance]")
    try:
        iso_week = IsoWeek.parse(week) if week else last_complete_week(utcnow(), policy.assurance.time_zone)
    except ValueError as err:
        raise _refuse("week", str(err)) from None
    teams = _teams_in_scope(session, user, team)
    found = [assurance_for_team(session, t, iso_week, policy) for t in teams]
    _audit_read(session, request, user, "assurance",
                {"week": str(iso_week), "teams": [t.code for t in teams]})
    return {"week": str(iso_week), "reports": found}


def _audit_read(session: Session, request: Request | None, user: Principal, report: str,
                detail: dict[str, Any]) -> None:
    """Reports list transitions (and findings name people): reading one is on the record."""
    append_audit(session=session, action=f"report.{report}.read", actor_id=user.staff_id,
                 transition_id=None, person_id=None,
                 source=client_ip(request) if request is not None else None, detail=detail,
                 at=utcnow())
    session.commit()


def assurance_for_team(session: Session, team: Team, week: IsoWeek, policy) -> dict[str, Any]:
    stored = assurance.stored_report(session=session, team_id=team.id, week=str(week))
    report = stored or assurance.build_report(
        session=session, team_id=team.id, week=week, policy=policy.assurance,
        policy_version=policy.fingerprint, workflow_id=None, at=utcnow())
    return jsonable_encoder({
        "team": team.code, "week": report.week, "stored": stored is not None,
        "week_start": report.week_start, "week_end": report.week_end,
        "generated_at": report.generated_at, "policy_version": report.policy_version,
        "counts": report.counts, "findings": report.findings, "trend": report.trend,
    })
