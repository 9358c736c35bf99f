"""Benchmark: the outcome report over a year of a large service, on PostgreSQL.

Creates a throwaway database on the local PostgreSQL (127.0.0.1:5432, user postgres), migrates
it, bulk-loads with COPY a year of synthetic rows (by default 100,000 transitions — handoffs,
step-ups with their requests, step-downs — about 130,000 contacts and 1,000,000 audit events,
some of them admissions), runs ANALYZE, computes each handoff's measure clocks (the rows the
session hooks would have kept as the records were written, timed), then times the outcome
report for the whole year over every team, and over one team, several times each; and drops
the database (unless --keep).

    .venv/bin/python bench/outcomes_report.py [--transitions 100000] [--events 1000000] [--runs 5]
        [--json results.json] [--figures figures.json]

`--figures` writes every figure of both reports (counts and sorted id lists), so that a change
to the report can be shown to leave every figure as it was: compare two such files.

A benchmark, not a test: loopback only, bounded in size, removes what it makes.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sqlmodel import Session  # noqa: E402

from handrail.config import Settings  # noqa: E402
from handrail.store import measure_facts, migrate, reports  # noqa: E402
from handrail.store.db import make_engine  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
AS_OF = datetime(2026, 12, 1, tzinfo=UTC)
TEAMS = 20
SOURCES = ["emergency_department"] * 6 + ["crisis_stabilization"] * 2 + ["crisis_line", "inpatient"]


def _copy(connection: psycopg.Connection, table: str, columns: list[str], rows) -> int:
    count = 0
    with connection.cursor() as cursor, cursor.copy(
            f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def load(conninfo: str, transitions: int, events: int, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    people = max(1, int(transitions * 0.6))  # repeat presentations need people seen twice
    now = datetime.now(UTC)
    counts = {}
    with psycopg.connect(conninfo) as connection:
        counts["team"] = _copy(connection, "team", ["id", "code", "name", "created_at"],
                               ((t, f"team-{t:02d}", f"Team {t}", now) for t in range(1, TEAMS + 1)))
        counts["staff"] = _copy(connection, "staff", ["id", "name", "role", "active", "created_at"],
                                ((s, f"Staff {s}", "clinician" if s % 3 else "care_coordinator", True, now)
                                 for s in range(1, 201)))
        counts["person"] = _copy(
            connection, "person",
            ["id", "given_name", "family_name", "phone_usable", "time_zone", "consent_to_messages",
             "created_at", "updated_at"],
            ((p, "Bench", f"Person{p}", True, "Europe/London", False, now, now)
             for p in range(1, people + 1)))
        kinds = []
        transition_rows, contact_rows, request_rows = [], [], []
        for n in range(transitions):
            kind = "step_up" if n % 33 == 0 else "step_down" if n % 50 == 1 else "handoff"
            team = 1 + n % TEAMS
            person = 1 + rng.randrange(people)
            at = YEAR_START + timedelta(seconds=rng.randrange(365 * 86400))
            tid = f"{kind}-{n:07d}"
            kinds.append((tid, kind, person, at))
            made = at + timedelta(hours=rng.expovariate(1 / 60)) if rng.random() < 0.85 else None
            reconciled = at + timedelta(days=rng.random() * 12) if rng.random() < 0.8 else None
            closed = at + timedelta(days=rng.randrange(20, 150)) if kind == "step_down" else None
            outcome = (rng.choice(["completed", "completed", "re_escalated"]) if closed else None)
            transition_rows.append((
                tid, kind, "closed" if closed else "open", "monitoring", person, team,
                SOURCES[n % len(SOURCES)] if kind == "handoff" else None, at, "bench", "{}",
                made, reconciled, 1 + n % 200 if reconciled else None, outcome, closed,
                at + timedelta(hours=72) if kind == "handoff" else None, at, at))
            if kind == "handoff":
                for sequence in range(1, 1 + (2 if rng.random() < 0.35 else 1)):
                    when = at + timedelta(hours=24 * sequence)
                    attended = made is not None and sequence == 1
                    contact_rows.append((f"{tid}.c{sequence}", tid, sequence, "first_contact", when,
                                         when, when, "attended" if attended else "missed",
                                         "attended" if attended else "missed",
                                         made if attended else None, 0, at, at))
            if kind == "step_up":
                decided = at + timedelta(hours=rng.expovariate(1 / 30))
                waited = rng.random() < 0.3
                request_rows.append((tid, team, person, "clinician", "routine", "bench", "{}", at,
                                     "approve", decided, 0, "waiting" if waited else "holding",
                                     decided if waited else None, None if waited else 0.0,
                                     decided + timedelta(hours=rng.expovariate(1 / 40))))
        counts["transition"] = _copy(
            connection, "transition",
            ["id", "kind", "status", "stage", "person_id", "team_id", "source", "event_time",
             "policy_version", "summary", "first_contact_at", "medication_reconciled_at",
             "medication_reconciled_by_id", "outcome", "closed_at", "first_contact_due",
             "created_at", "updated_at"], transition_rows)
        counts["contact"] = _copy(
            connection, "contact",
            ["id", "transition_id", "sequence", "purpose", "appointment_at", "not_before", "due_at",
             "status", "outcome", "outcome_at", "ladder_step", "created_at", "updated_at"], contact_rows)
        counts["stepuprequest"] = _copy(
            connection, "stepuprequest",
            ["transition_id", "team_id", "person_id", "origin", "urgency", "reason", "indicators",
             "requested_at", "decision", "decided_at", "escalation_level", "capacity_status",
             "waiting_since", "capacity_wait_seconds", "first_intensified_contact_at"], request_rows)

        actions = ["task.created", "transition.updated", "contact.scheduled", "contact.attended",
                   "handoff.owner_assigned", "task.completed", "read", "encounter.discharge"]

        def audit_rows():
            for e in range(events):
                tid, kind, person, at = kinds[e % len(kinds)]
                action = ("encounter.admission" if kind == "handoff" and e % 97 == 0
                          else actions[e % len(actions)])
                yield (at + timedelta(minutes=e % 5000), action, tid, person, "{}")

        counts["auditevent"] = _copy(connection, "auditevent",
                                     ["at", "action", "transition_id", "person_id", "detail"], audit_rows())
        connection.execute("ANALYZE")
        connection.commit()
    return counts


def comparable(figures: list[dict]) -> dict[str, dict]:
    """The figures with their id lists sorted: the order of ids is not part of a figure."""
    found = {}
    for figure in figures:
        found[figure["measure"]] = {
            key: (sorted(value) if isinstance(value, list)
                  else {k: sorted(v) for k, v in sorted(value.items())} if isinstance(value, dict)
                  else value)
            for key, value in figure.items()}
    return found


def time_report(url: str, team_ids: list[int], runs: int) -> tuple[list[float], dict]:
    engine = make_engine(url)
    policy = Settings(policy="default").load_policy()
    # A fixed "now", long after the year: every window closed, and two runs' figures comparable
    # (the hours still waiting for a step-up slot would otherwise grow between runs).
    period = reports.Period(start=YEAR_START, end=YEAR_START + timedelta(days=365),
                            as_of=AS_OF)
    timings = []
    try:
        for _ in range(runs):
            with Session(engine) as session:
                started = time.perf_counter()
                report = reports.outcomes_report(session=session, team_ids=team_ids, period=period,
                                                 policy=policy)
                timings.append(time.perf_counter() - started)
        figures = {f["measure"]: f for f in report["figures"]}
        within = figures["first_contact.within_72h"]
        print(f"  (72h: {within['numerator']}/{within['denominator']}; "
              f"FUM 7d denominator {figures['fum.7d']['denominator']})")
    finally:
        engine.dispose()
    return timings, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--figures", type=Path, help="also write every figure here, ids sorted")
    parser.add_argument("--keep", action="store_true",
                        help="keep the loaded database (its name is printed) for --reuse")
    parser.add_argument("--reuse", metavar="DATABASE",
                        help="time the report on a database an earlier --keep run loaded")
    args = parser.parse_args()
    name = args.reuse or f"handrail_bench_{secrets.token_hex(4)}"
    conninfo = f"postgresql://postgres@127.0.0.1:5432/{name}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    if not args.reuse:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        results = {}
        if not args.reuse:
            migrate.upgrade(url)
            started = time.perf_counter()
            counts = load(conninfo, args.transitions, args.events)
            print(f"loaded {counts} into {name} in {time.perf_counter() - started:.1f} s")
            results["counts"] = counts
        else:
            migrate.upgrade(url)  # a report change may come with a migration
        # COPY bypasses the session hooks that keep each handoff's clocks current as it is
        # written, so the bench builds them all at once, as `handrail report refresh-measures`.
        engine = make_engine(url)
        try:
            with Session(engine) as session:
                started = time.perf_counter()
                written = measure_facts.refresh_all(session)
                session.commit()
            results["refresh_measures_s"] = time.perf_counter() - started
            print(f"computed the clocks of {written} handoffs in {results['refresh_measures_s']:.1f} s")
        finally:
            engine.dispose()
        figures = {}
        for label, team_ids in (("all 20 teams", list(range(1, TEAMS + 1))), ("one team", [1])):
            timings, report = time_report(url, team_ids, args.runs)
            figures[label] = comparable(report["figures"])
            results[label] = {"median_s": statistics.median(timings), "max_s": max(timings),
                              "runs": timings}
            print(f"outcome report, a year, {label}: median {statistics.median(timings):.3f} s, "
                  f"max {max(timings):.3f} s over {len(timings)} runs")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        if args.figures:
            args.figures.write_text(json.dumps(figures, indent=1, sort_keys=True))
    finally:
        if args.keep or args.reuse:
            print(f"kept database {name}")
        else:
            with psycopg.connect(ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
