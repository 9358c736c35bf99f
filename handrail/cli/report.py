"""`handrail report assurance --week 2026-W48 [--team CODE]`: the weekly assurance in the
terminal, the stored report where the schedule has written it, otherwise counted now.
`handrail report refresh-measures`: rebuild every handoff's stored measure clocks.

Registered by cli/main.py with `app.add_typer(report_app, name="report")`.
"""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.exc import OperationalError, ProgrammingError

from ..config import get_settings
from ..domain.assurance import CHECK_TITLES, AssuranceCheck, IsoWeek, last_complete_week
from ..domain.policy import PolicyError
from ..store import assurance, measure_facts
from ..store.db import make_engine, session_scope
from ..store.types import utcnow

report_app = typer.Typer(no_args_is_help=True,
                         help="Reports: the weekly assurance; rebuilding the measure clocks.")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)


@report_app.command("assurance")
def assurance_command(
    week: Annotated[str | None, typer.Option(help="ISO week, e.g. 2026-W48 (default: last week)")] = None,
    team: Annotated[str | None, typer.Option(help="Team code (default: every team)")] = None,
) -> None:
    """Print each team's four checks for the week, their trend, and the findings."""
    settings = get_settings()
    try:
        policy = settings.load_policy()
    except PolicyError as err:
        raise _fail(f"policy refused: {err}", 1) from None
    try:
        iso_week = IsoWeek.parse(week) if week else last_complete_week(utcnow(), policy.assurance.time_zone)
    except ValueError as err:
        raise _fail(f"--week: {err}") from None
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(engine) as session:
            teams = assurance.teams(session=session, codes=[team] if team else None)
            if team and not teams:
                raise _fail(f"no team with code {team!r}")
            for row in teams:
                stored = assurance.stored_report(session=session, team_id=row.id, week=str(iso_week))
                report = stored or assurance.build_report(
                    session=session, team_id=row.id, week=iso_week, policy=policy.assurance,
                    policy_version=policy.fingerprint, workflow_id=None, at=utcnow())
                typer.echo(render(row.code, report, stored=stored is not None))
    except (OperationalError, ProgrammingError) as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise _fail(f"the store is not ready ({reason}); run `handrail db upgrade`", 1) from None
    finally:
        engine.dispose()


@report_app.command("refresh-measures")
def refresh_measures_command() -> None:
    """Recompute every handoff's measure clocks from its records. They are kept current as
    records are written; run this after loading rows around Handrail (a bulk import, a restore
    of some tables), or to check that nothing had drifted: it prints how many rows changed."""
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(engine) as session:
            before = measure_facts.snapshot(session)
            written = measure_facts.refresh_all(session)
            changed = measure_facts.changed_since(session, before)
        typer.echo(f"recomputed the measure clocks of {written} handoffs; {changed} had changed")
    except (OperationalError, ProgrammingError) as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise _fail(f"the store is not ready ({reason}); run `handrail db upgrade`", 1) from None
    finally:
        engine.dispose()


def render(team_code: str, report, *, stored: bool) -> str:
    origin = (f"stored {report.generated_at:%Y-%m-%d %H:%M} UTC" if stored
              else "not stored yet: counted now")
    weeks = [entry["week"] for entry in report.trend]
    lines = [f"Weekly assurance {report.week} · {team_code} ({origin})", ""]
    lines.append(f"{'Check':<58}" + "".join(f"{w:>10}" for w in weeks))
    for check in AssuranceCheck:
        counts = [entry["counts"].get(check.value, 0) for entry in report.trend]
        lines.append(f"{CHECK_TITLES[check]:<58}" + "".join(f"{c:>10}" for c in counts))
    lines.append("")
    if not report.findings:
        lines.append("No findings this week.")
    for finding in report.findings:
        detail = ", ".join(f"{k} {v}" for k, v in finding["detail"].items() if v is not None)
        lines.append(f"- {finding['check']}: {finding['transition_id']} ({detail})")
    return "\n".join(lines) + "\n"
