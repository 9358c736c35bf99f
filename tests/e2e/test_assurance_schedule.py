"""The weekly assurance Schedule on the real Temporal dev server.

The time-skipping test server does not implement schedules (CreateSchedule answers
"unimplemented"; see NOTES.md), so the schedule is tested here: made from the policy it fires
next on the policy's day and time in its zone, and when it fires (by its own calendar; the test
need not wait for Monday: the policy's day and time are set a few seconds ahead) the run
stores last week's report, seeded with one case of each check, and tasks its findings.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, SQLModel, select
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from handrail.channels.outbox import OutboxChannel
from handrail.config import Settings
from handrail.domain.assurance import Weekday, last_complete_week
from handrail.schedules import ensure_assurance_schedule
from handrail.store.db import make_engine
from handrail.store.models import AssuranceReport, Task
from handrail.worker import build_worker
from tests.temporal_servers import dev_server_cli
from tests.workflows.assurance_world import seed_week
from tests.workflows.conftest import seed_team

pytestmark = pytest.mark.e2e


def _next_monday_seven_london(after: datetime) -> datetime:
    """By hand: the policy says Monday 07:00 Europe/London."""
    london = ZoneInfo("Europe/London")
    local = after.astimezone(london)
    day = local.date() + timedelta(days=(7 - local.weekday()) % 7)
    candidate = datetime.combine(day, time(7, 0), tzinfo=london)
    if candidate <= local:
        candidate += timedelta(days=7)
    return candidate.astimezone(UTC)


async def test_the_schedule_follows_the_policy_and_its_run_tasks_the_findings(tmp_path):
    settings = Settings(policy="default", task_queue="assurance-schedule-test", data_dir=tmp_path)
    policy = settings.load_policy()
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    SQLModel.metadata.create_all(engine)
    staffing = seed_team(engine)
    last_week = last_complete_week(datetime.now(UTC), "Europe/London")
    monday = datetime.combine(last_week.monday(), time(0), tzinfo=ZoneInfo("Europe/London"))
    expected = seed_week(engine, staffing.team_id, monday=monday.astimezone(UTC))
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=dev_server_cli(), data_converter=pydantic_data_converter,
        dev_server_extra_args=["--headless"])
    try:
        with ThreadPoolExecutor(max_workers=16) as executor:
            async with build_worker(env.client, settings, engine, OutboxChannel(), executor=executor):
                await ensure_assurance_schedule(env.client, policy, settings.task_queue)
                await ensure_assurance_schedule(env.client, policy, settings.task_queue)  # updates
                handle = env.client.get_schedule_handle("weekly-assurance")
                described = await handle.describe()
                assert described.info.next_action_times[0] == _next_monday_seven_london(datetime.now(UTC))

                # The policy's day and time set a few seconds ahead: the schedule fires by its
                # own calendar and reports the last complete week, seeded above.
                soon = datetime.now(UTC).astimezone(ZoneInfo("Europe/London")) + timedelta(seconds=6)
                firing = policy.model_copy(update={"assurance": policy.assurance.model_copy(update={
                    "day": list(Weekday)[soon.weekday()], "time": soon.time().replace(microsecond=0)})})
                await ensure_assurance_schedule(env.client, firing, settings.task_queue)
                rows = await _wait_for_report(engine, tasks=len(expected))
    finally:
        await env.shutdown()
        engine.dispose()

    [report] = rows
    assert report.week == str(last_week) and report.counts == {check: 1 for check in expected}
    assert report.workflow_id.startswith("weekly-assurance-")  # started by the schedule
    with Session(engine) as session:
        tasks = session.exec(select(Task).where(Task.kind == "assurance_finding")).all()
    assert {(t.transition_id, t.owner_id) for t in tasks} == {
        (transition_id, staffing.supervisor.id) for transition_id in expected.values()}


async def _wait_for_report(engine, tasks: int, seconds: float = 20.0) -> list[AssuranceReport]:
    """Until the run has stored its report and made every task (real time: the dev server)."""
    for _ in range(int(seconds / 0.2)):
        with Session(engine) as session:
            made = session.exec(select(Task).where(Task.kind == "assurance_finding")).all()
            if len(made) >= tasks:
                return list(session.exec(select(AssuranceReport)).all())
        await asyncio.sleep(0.2)
    raise AssertionError("the scheduled run stored no report")
