"""GET /api/reports/outcomes and /api/reports/assurance: the user's teams only, fields named
on bad input, and the CSV telling exactly what the JSON tells."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from api_world import ON_POSTGRES
from sqlmodel import Session, select

from handrail.store.models import AuditEvent, Contact, Task, Transition

DISCHARGED = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
PERIOD = {"from": "2026-03-01", "to": "2026-03-31"}


def add_transition(world, *, transition_id: str, team_id: int, **values) -> None:
    with Session(world.engine) as session:
        session.add(Transition(id=transition_id, kind="handoff", person_id=world.person_id,
                               team_id=team_id, policy_version="test", **values))
        session.commit()


def _seed(world) -> None:
    for number, (hours, source) in enumerate([(20, "emergency_department"), (80, "emergency_department"),
                                              (30, "inpatient")]):
        transition_id = f"handoff-report-{number}"
        made = DISCHARGED + timedelta(hours=hours)
        add_transition(world, transition_id=transition_id, team_id=world.north_id, source=source,
                       event_time=DISCHARGED, first_contact_at=made, stage="monitoring")
        with Session(world.engine) as session:
            session.add(Contact(id=f"{transition_id}.c1", transition_id=transition_id, sequence=1,
                                purpose="first_contact", appointment_at=made, not_before=made,
                                due_at=made, status="attended", outcome="attended", outcome_at=made))
            session.commit()
    add_transition(world, transition_id="handoff-report-south", team_id=world.south_id,
                   source="emergency_department", event_time=DISCHARGED, stage="monitoring")


@pytest.mark.parametrize("api_engine", ["sqlite", ON_POSTGRES], indirect=True)
def test_csv_and_json_tell_the_same_figures(api, world):
    _seed(world)

    as_json = api.get("/api/reports/outcomes", params=PERIOD, headers=world.auth("supervisor"))
    as_csv = api.get("/api/reports/outcomes", params={**PERIOD, "format": "csv"},
                     headers=world.auth("supervisor"))

    assert as_json.status_code == 200 and as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    figures = {f["measure"]: f for f in as_json.json()["figures"]}
    rows = {row["measure"]: row for row in csv.DictReader(io.StringIO(as_csv.text))}
    assert rows.keys() == figures.keys()
    for measure, figure in figures.items():
        row = rows[measure]
        for column in ("numerator", "denominator", "rate", "count", "median_hours", "p90_hours"):
            value = figure.get(column)
            assert row[column] == ("" if value is None else str(value)), (measure, column)
        for column in ("numerator_ids", "denominator_ids", "pending_ids", "transition_ids"):
            assert row[column].split() == figure.get(column, []), (measure, column)
    within = figures["first_contact.within_72h"]
    assert (within["numerator"], within["denominator"]) == (2, 3)
    assert "handoff-report-south" not in as_json.text  # another team's transition
    with Session(world.engine) as session:
        reads = session.exec(select(AuditEvent).where(AuditEvent.action == "report.outcomes.read")).all()
    supervisor = world.staff_ids["supervisor"]
    assert [(r.actor_id, r.detail["teams"]) for r in reads] == [(supervisor, ["crisis-north"])] * 2


def test_bad_dates_and_a_reversed_period_are_refused_naming_the_field(api, world):
    auth = world.auth("supervisor")
    bad = api.get("/api/reports/outcomes", params={"from": "2026-02-30", "to": "2026-03-01"},
                  headers=auth)
    reversed_ = api.get("/api/reports/outcomes", params={"from": "2026-03-02", "to": "2026-03-01"},
                        headers=auth)
    week = api.get("/api/reports/assurance", params={"week": "2026-48"}, headers=auth)

    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "from"]
    assert reversed_.status_code == 422 and reversed_.json()["detail"][0]["loc"] == ["query", "from"]
    assert week.status_code == 422 and week.json()["detail"][0]["loc"] == ["query", "week"]


def test_another_teams_report_is_not_found_and_clinicians_may_not_read_reports(api, world):
    other = api.get("/api/reports/outcomes", params={**PERIOD, "team": "crisis-south"},
                    headers=world.auth("supervisor"))
    clinician = api.get("/api/reports/outcomes", params=PERIOD, headers=world.auth("clinician"))
    assert (other.status_code, clinician.status_code) == (404, 403)


def test_the_assurance_route_counts_a_week_not_yet_stored_and_says_so(api, world):
    add_transition(world, transition_id="handoff-late", team_id=world.north_id,
                   source="emergency_department", event_time=DISCHARGED, stage="monitoring",
                   first_contact_due=DISCHARGED + timedelta(hours=72))

    answer = api.get("/api/reports/assurance", params={"week": "2026-W10"},
                     headers=world.auth("supervisor"))

    assert answer.status_code == 200
    [report] = answer.json()["reports"]
    assert (report["team"], report["stored"], report["counts"]["delayed_follow_ups"]) == (
        "crisis-north", False, 1)
    assert [week["week"] for week in report["trend"]][:2] == ["2026-W10", "2026-W09"]


def test_a_supervisor_completes_an_assurance_finding_without_any_workflow(api, world, temporal):
    add_transition(world, transition_id="handoff-finding", team_id=world.north_id,
                   source="emergency_department", event_time=DISCHARGED, stage="monitoring")
    with Session(world.engine) as session:
        task = Task(key="assurance:crisis-north:2026-W10:delayed_follow_ups:handoff-finding",
                    transition_id="handoff-finding", workflow_id="weekly-assurance-2026-03-09T07:00:00Z",
                    kind="assurance_finding", title="Assurance 2026-W10: late follow-up",
                    team_id=world.north_id, owner_id=world.staff_ids["supervisor"], role="supervisor")
        session.add(task)
        session.commit()
        task_id = task.id

    answer = api.post(f"/api/tasks/{task_id}/complete", json={"note": "pathway reviewed"},
                      headers=world.auth("supervisor"))

    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["note"]) == ("completed", "pathway reviewed")
    assert temporal.calls == []
    with Session(world.engine) as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "task.completed")).one()
