"""`WeeklyAssurance`: the four checks of DESIGN.md for every team's last week, stored as a
report, and each finding a task for the team's supervisor. Started by the Temporal Schedule
of handrail/schedules.py; safe to run twice for a week (the report and the tasks are keyed)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ..activities.assurance import (
        AssuranceActivities,
        AssuranceRun,
        AssuranceTeam,
        StoredAssurance,
        WriteAssuranceReport,
    )
    from ..activities.records import RecordActivities
    from ..domain.assurance import CHECK_TITLES, AssuranceCheck, last_complete_week
    from ..domain.tasks import Role, TaskKind, TaskSpec
    from .common import STORE

# A finding is due before the next week's run, when it would be found again.
FINDING_DUE = timedelta(days=7)


@workflow.defn
class WeeklyAssurance:
    @workflow.run
    async def run(self, run: AssuranceRun) -> list[StoredAssurance]:
        week = run.week or str(last_complete_week(workflow.now(), run.policy.time_zone))
        teams: list[AssuranceTeam] = await workflow.execute_activity_method(
            AssuranceActivities.list_assurance_teams, run.team_codes, **STORE)
        reports = []
        for team in teams:
            report = await self._report(run, team, week)
            for finding in report.findings:
                await self._task_for_supervisor(team, week, finding)
            reports.append(report)
        return reports

    async def _report(self, run: AssuranceRun, team: AssuranceTeam, week: str) -> StoredAssurance:
        return await workflow.execute_activity_method(
            AssuranceActivities.write_assurance_report,
            WriteAssuranceReport(team_id=team.id, week=week, policy=run.policy,
                                 policy_version=run.policy_version,
                                 workflow_id=workflow.info().workflow_id, at=workflow.now()),
            **STORE)

    async def _task_for_supervisor(self, team: AssuranceTeam, week: str, finding) -> None:
        now = workflow.now()
        title = f"Assurance {week}: {CHECK_TITLES[AssuranceCheck(finding.check)]}"
        await workflow.execute_activity_method(
            RecordActivities.create_task,
            TaskSpec(key=f"assurance:{team.code}:{week}:{finding.check}:{finding.transition_id}",
                     transition_id=finding.transition_id, workflow_id=workflow.info().workflow_id,
                     kind=TaskKind.assurance_finding, title=title, team_id=team.id,
                     role=Role.supervisor, business_status=finding.check, due_at=now + FINDING_DUE,
                     created_at=now),
            **STORE)
