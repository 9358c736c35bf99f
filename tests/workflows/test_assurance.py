"""WeeklyAssurance on the time-skipping server: a seeded week gives each of the four findings,
one stored report per team and week, and a task per finding on the supervisor's list."""

from __future__ import annotations

import uuid

from handrail.activities.assurance import AssuranceRun, StoredAssurance
from handrail.store.models import AssuranceReport, Task
from handrail.workflows.assurance import WeeklyAssurance
from tests.workflows.assurance_world import WEEK, seed_week


async def _run(harness, run: AssuranceRun) -> list[StoredAssurance]:
    return await harness.client.execute_workflow(
        WeeklyAssurance.run, run, id=f"weekly-assurance-{uuid.uuid4()}",
        task_queue=harness.task_queue, result_type=list[StoredAssurance])


async def test_the_weekly_run_stores_the_four_findings_and_tasks_them_to_the_supervisor(harness):
    expected = seed_week(harness.engine, harness.staff.team_id)
    run = AssuranceRun(policy=harness.policy.assurance, policy_version="test", week=WEEK)

    [report] = await _run(harness, run)

    assert {(f.check, f.transition_id) for f in report.findings} == set(expected.items())
    assert report.counts == {check: 1 for check in expected}
    [row] = harness.rows(AssuranceReport)
    assert (row.week, row.team_id, len(row.trend)) == (WEEK, harness.staff.team_id, 5)
    assert [week["week"] for week in row.trend] == [WEEK, "2026-W09", "2026-W08", "2026-W07", "2026-W06"]
    tasks = harness.rows(Task, Task.kind == "assurance_finding")
    assert {(t.transition_id, t.business_status) for t in tasks} == {(v, k) for k, v in expected.items()}
    assert {t.owner_id for t in tasks} == {harness.staff.supervisor.id}


async def test_running_the_same_week_again_adds_no_second_report_or_task(harness):
    seed_week(harness.engine, harness.staff.team_id)
    run = AssuranceRun(policy=harness.policy.assurance, policy_version="test", week=WEEK)

    first = await _run(harness, run)
    again = await _run(harness, run)

    assert [r.report_id for r in first] == [r.report_id for r in again]
    assert len(harness.rows(AssuranceReport)) == 1
    assert len(harness.rows(Task, Task.kind == "assurance_finding")) == 4
