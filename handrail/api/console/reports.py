"""Assurance and Outcomes (supervisors): the weekly checks with their trend, and the outcome
figures with charts, from the same code as GET /api/reports/assurance and /outcomes (their
route functions are called as they are); CSV from the API's own export, and the assurance
counts as CSV here."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from ...store.types import utcnow
from ..deps import PolicyDep, SessionDep
from ..routes import reports as api_reports
from .web import Viewer, refusal, render, require

router = APIRouter()
Reader = Annotated[Viewer, Depends(require("reports:read"))]
Code = Annotated[str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9._-]*$")]
DEFAULT_DAYS = 90


def _period(start: date | None, end: date | None) -> tuple[date, date]:
    end = end or utcnow().date()
    return start or end - timedelta(days=DEFAULT_DAYS), end


def _bars(figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each figure with what its chart draws: a rate as a share of 100 %, the time to first
    contact against the 72-hour mark; other durations and counts as figures only."""
    drawn = []
    for figure in figures:
        share = None
        if figure.get("type") == "rate" and figure.get("rate") is not None:
            share = max(0.0, min(1.0, float(figure["rate"])))
        elif (figure.get("measure", "").startswith("first_contact")
              and figure.get("median_hours") is not None):
            share = max(0.0, min(1.0, float(figure["median_hours"]) / 72.0))
        drawn.append({**figure, "share": share})
    return drawn


@router.get("/console/reports", include_in_schema=False)
def reports_page(request: Request, viewer: Reader, session: SessionDep, policy: PolicyDep,
                 start: Annotated[date | None, Query(alias="from")] = None,
                 end: Annotated[date | None, Query(alias="to")] = None,
                 team: Code = None, week: Annotated[str | None, Query(max_length=10)] = None) -> Response:
    start, end = _period(start, end)
    error = status_code = None
    outcomes: dict[str, Any] = {"figures": []}
    assurance: dict[str, Any] = {"reports": [], "week": week}
    try:
        outcomes = api_reports.outcomes(user=viewer.principal, session=session, policy=policy,
                                        from_=start, to=end, team=team or None,
                                        format=api_reports.ReportFormat.json, request=request)
        assurance = api_reports.assurance_report(user=viewer.principal, session=session,
                                                 policy=policy, week=week or None, team=team or None,
                                                 request=request)
    except (HTTPException, RequestValidationError) as err:
        status_code, error = refusal(err)
    query = {"from": start.isoformat(), "to": end.isoformat(), **({"team": team} if team else {})}
    checks = _checks(assurance)
    response = render(
        request, "reports.html", viewer, figures=_bars(outcomes["figures"]), assurance=assurance,
        checks=checks, start=start, end=end, team=team or "", week=assurance.get("week") or "",
        csv_url="/api/reports/outcomes?" + urlencode({**query, "format": "csv"}),
        assurance_csv_url="/console/reports/assurance.csv?" + urlencode(
            {"week": assurance.get("week") or "", **({"team": team} if team else {})}),
        error=error, error_status=status_code,
    )
    if status_code:
        response.status_code = status_code
    return response


def _checks(assurance: dict[str, Any]) -> list[dict[str, Any]]:
    """Per team and check: this week's count and the trend, oldest week first, for a chart."""
    found = []
    for report in assurance.get("reports", []):
        weeks = list(reversed(report.get("trend", [])))
        for check, count in report.get("counts", {}).items():
            series = [{"week": w["week"], "count": w["counts"].get(check, 0)} for w in weeks]
            peak = max([1] + [point["count"] for point in series])
            found.append({"team": report["team"], "check": check, "count": count, "series": series,
                          "peak": peak})
    return found


@router.get("/console/reports/assurance.csv", include_in_schema=False)
def assurance_csv(request: Request, viewer: Reader, session: SessionDep, policy: PolicyDep,
                  team: Code = None, week: Annotated[str | None, Query(max_length=10)] = None) -> Response:
    try:
        assurance = api_reports.assurance_report(user=viewer.principal, session=session,
                                                 policy=policy, week=week or None, team=team or None,
                                                 request=request)
    except (HTTPException, RequestValidationError) as err:
        status_code, reason = refusal(err)
        return Response(reason, status_code=status_code, media_type="text/plain; charset=utf-8")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["team", "week", "check", "count", "source"])
    for report in assurance["reports"]:
        for point in report.get("trend", []):
            for check, count in point["counts"].items():
                writer.writerow([report["team"], point["week"], check, count, point.get("source", "")])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="assurance.csv"'})
