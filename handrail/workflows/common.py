"""Pieces both pathways use: activity options and the one way to wait for a deadline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from ..activities.contracts import FinishTask, SendResult, SendStatus, SendToPerson
    from ..activities.outreach import OutreachActivities
    from ..activities.records import RecordActivities
    from ..domain.messaging import next_allowed_send_time
    from ..domain.policy import QuietHours
    from ..domain.tasks import Role, TaskKind, TaskSpec

# Store writes are idempotent, so they may retry for as long as the database is away; the
# start-to-close timeout bounds how long a killed worker's activity waits to be retried.
STORE = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                                maximum_interval=timedelta(minutes=1)),
}
# Sending also retries: the attempt row's key makes a second send impossible.
SEND = {
    "start_to_close_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
                                maximum_interval=timedelta(minutes=2)),
}


async def wait_until(condition: Callable[[], bool], deadline: datetime | None) -> bool:
    """Wait for `condition` until `deadline` (None: for ever). True when it held in time."""
    if deadline is None:
        await workflow.wait_condition(condition)
        return True
    remaining = deadline - workflow.now()
    if condition():
        return True
    if remaining <= timedelta(0):
        return False
    try:
        await workflow.wait_condition(condition, timeout=remaining)
        return True
    except TimeoutError:
        return condition()


async def send_to_person(
    request: SendToPerson, *, time_zone: str, quiet_hours: QuietHours | None,
    interrupted: Callable[[], bool], deadline: datetime | None = None,
    sending: Callable[[bool], None] | None = None,
) -> SendResult | None:
    """The one way a pathway messages a person: never in their quiet hours, never past the
    frequency cap (the store knows what was sent); each wait is a timer that `interrupted` can
    cut short. None when the moment passed (`deadline`) or something else happened first.
    `sending(True)` is called as an attempt goes out and `sending(False)` if it was deferred:
    for a caller whose question is open only once it has been asked."""
    while True:
        at = next_allowed_send_time(workflow.now(), time_zone, quiet_hours)
        if at > workflow.now():
            if deadline is not None and at >= deadline:
                return None
            if await wait_until(interrupted, at):
                return None
        if sending is not None:
            sending(True)
        result = await workflow.execute_activity_method(
            OutreachActivities.send_to_person, request.model_copy(update={"at": workflow.now()}),
            **SEND)
        if result.status != SendStatus.deferred:
            return result
        if sending is not None:
            sending(False)
        assert result.not_before is not None
        if deadline is not None and result.not_before >= deadline:
            return None
        if await wait_until(interrupted, result.not_before):
            return None


# Twilio's "attempt to send to unsubscribed recipient": the recipient texted STOP.
UNSUBSCRIBED_CODES = frozenset({"21610"})
# Twilio's "invalid number" and "not a mobile number": no message will ever reach it.
UNUSABLE_NUMBER_CODES = frozenset({"21211", "21614"})


def number_unusable(result: SendResult) -> bool:
    """The send could not reach the person's number, now or later (not a consent refusal)."""
    return result.status == SendStatus.skipped_no_number or (
        result.status == SendStatus.failed_permanently and result.error_code in UNUSABLE_NUMBER_CODES)


async def open_task(open_tasks: dict[int, str], *, key: str, transition_id: str, team_id: int,
                    kind: TaskKind, title: str, due: datetime, owner_id: int | None,
                    role: Role | None = None, priority: str = "routine") -> int:
    """Create a staff task (idempotent by `key`) and remember it as open on this workflow."""
    instance = workflow.instance()  # held: a coroutine closed at eviction runs its finally outside
    _count_opening(instance, +1)
    try:
        task_id = await workflow.execute_activity_method(
            RecordActivities.create_task,
            TaskSpec(key=key, transition_id=transition_id, workflow_id=workflow.info().workflow_id,
                     kind=kind, title=title, team_id=team_id, owner_id=owner_id, role=role,
                     priority=priority, due_at=due, created_at=workflow.now()),
            **STORE)
    finally:
        _count_opening(instance, -1)
    open_tasks[task_id] = kind.value
    return task_id


# The store commits a task before the workflow hears its id, so a person can see the task on
# their list and complete it in between. An update naming an id the workflow does not know yet
# is therefore not refused while a task is being opened: it waits for those writes, then is
# checked. The count is about activities in flight in this run, not about the pathway, so it
# lives on the workflow instance (dropped with it on eviction), never in the state that
# continue-as-new carries on.
_OPENING = "_handrail_tasks_opening"


def _count_opening(instance: object, change: int) -> None:
    setattr(instance, _OPENING, getattr(instance, _OPENING, 0) + change)


def _tasks_opening() -> int:
    return getattr(workflow.instance(), _OPENING, 0)


def task_may_be_open(open_tasks: dict[int, str], task_id: int) -> bool:
    """For an update's validator: open here, or perhaps one of the tasks being opened now."""
    return task_id in open_tasks or _tasks_opening() > 0


TASKS_HEARD_OF = "tasks-heard-of"


async def tasks_heard_of() -> None:
    """Wait until the tasks being opened have been heard of, so a step that ends tasks by kind
    or by a remembered id ends those too (a decision taken from the list while its task was
    still being written used to leave that task open). Behind a patch: histories from before
    it never waited here."""
    if _tasks_opening() and workflow.patched(TASKS_HEARD_OF):
        await workflow.wait_condition(lambda: not _tasks_opening())


def task_not_open(task_id: int, where: str) -> ApplicationError:
    return ApplicationError(f"task {task_id} is not open on this {where}", type="StageConflict")


async def task_is_open(open_tasks: dict[int, str], task_id: int) -> bool:
    """For an update's handler: whether `task_id` is open here, once the tasks being opened
    have been heard of. Waits only for an id not known yet (no command for a known one, so
    histories from before this wait replay unchanged)."""
    if task_id not in open_tasks:
        await workflow.wait_condition(lambda: task_id in open_tasks or not _tasks_opening())
    return task_id in open_tasks


async def finish_task(open_tasks: dict[int, str], task_id: int, status: str,
                      actor_id: int | None, note: str | None) -> None:
    open_tasks.pop(task_id, None)
    await workflow.execute_activity_method(
        RecordActivities.finish_task,
        FinishTask(task_id=task_id, status=status, at=workflow.now(), actor_id=actor_id,
                   note=note or None),
        **STORE)
