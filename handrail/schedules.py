"""The Temporal Schedule of the weekly assurance, made from the policy's `[assurance]`.

The worker ensures it at every start (create, or update when it exists): the worker runs in
every deployment, so no operator step can be forgotten, and a changed policy reaches the
schedule at the next worker restart. Several workers starting at once converge on one schedule.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
)

from .activities.assurance import AssuranceRun
from .domain.policy import Policy
from .workflows.assurance import WeeklyAssurance

log = logging.getLogger("handrail.schedules")

ASSURANCE_SCHEDULE_ID = "weekly-assurance"
# A run missed while Temporal was down is still made within a day; after that the next week's
# run reports its own week and the missed one is left to `handrail report assurance`.
CATCHUP_WINDOW = timedelta(days=1)


def assurance_schedule(policy: Policy, task_queue: str) -> Schedule:
    assurance = policy.assurance
    if assurance is None:
        raise ValueError("the policy has no [assurance] section")
    at = assurance.time
    calendar = ScheduleCalendarSpec(
        day_of_week=[ScheduleRange(assurance.day.iso % 7)],  # Temporal counts Sunday as 0
        hour=[ScheduleRange(at.hour)], minute=[ScheduleRange(at.minute)],
        second=[ScheduleRange(at.second)], comment="the policy's [assurance] day and time")
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WeeklyAssurance.run,
            AssuranceRun(policy=assurance, policy_version=policy.fingerprint),
            id=ASSURANCE_SCHEDULE_ID, task_queue=task_queue),
        spec=ScheduleSpec(calendars=[calendar], time_zone_name=assurance.time_zone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP_WINDOW),
    )


async def ensure_assurance_schedule(client: Client, policy: Policy, task_queue: str,
                                    schedule_id: str = ASSURANCE_SCHEDULE_ID) -> None:
    schedule = assurance_schedule(policy, task_queue)
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("weekly assurance schedule %s created", schedule_id)
    except ScheduleAlreadyRunningError:
        await client.get_schedule_handle(schedule_id).update(
            lambda _current: ScheduleUpdate(schedule=schedule))
        log.info("weekly assurance schedule %s updated from the policy", schedule_id)
