"""What a pathway writes about its own transition, in one place: the row and its timeline, its
tasks, its decisions. A transition has one writer (DESIGN.md), so every pathway writes through
one of these, holding its own state.

`state` is the pathway's state: `transition_id`, `team_id`, `stage`, `open_tasks` and
`event_count` (kept on the state so keys stay unique across continue-as-new runs).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ..activities.contracts import DecisionRecord, HandOverTask, TransitionUpdate
    from ..activities.records import RecordActivities
    from ..domain.handoff import Actor
    from ..domain.tasks import Role, TaskKind
    from .common import STORE, finish_task, open_task, tasks_heard_of


class TransitionRecord:
    def __init__(self, state: Any) -> None:
        self.state = state

    def key(self, name: str) -> str:
        """An idempotency key for the next write: a retried activity writes nothing twice."""
        self.state.event_count += 1
        return f"{self.state.transition_id}:{name}:{self.state.event_count}"

    async def stage(self, stage: StrEnum, action: str | None, detail: dict, *,
                    actor_id: int | None = None, **fields: object) -> None:
        """Move to `stage`, with `action` on the timeline and `fields` on the row."""
        state = self.state
        state.stage = stage
        await workflow.execute_activity_method(
            RecordActivities.update_transition,
            TransitionUpdate(transition_id=state.transition_id, key=self.key(action or "fields"),
                             at=workflow.now(), action=action or "transition.updated",
                             actor_id=actor_id, detail=detail,
                             fields={"stage": stage.value, **fields}), **STORE)

    async def event(self, action: str, detail: dict, *, actor_id: int | None = None) -> None:
        await self.stage(self.state.stage, action, detail, actor_id=actor_id)

    async def fields(self, **fields: object) -> None:
        await self.stage(self.state.stage, None, {}, **fields)

    async def task(self, key: str, kind: TaskKind, title: str, *, due: datetime,
                   owner_id: int | None = None, role: Role | None = None,
                   priority: str = "routine") -> int:
        state = self.state
        return await open_task(
            state.open_tasks, key=f"{state.transition_id}:{key}", transition_id=state.transition_id,
            team_id=state.team_id, kind=kind, title=title, due=due, owner_id=owner_id, role=role,
            priority=priority)

    async def finish_task(self, task_id: int, status: str, actor_id: int | None,
                          note: str | None) -> None:
        await finish_task(self.state.open_tasks, task_id, status, actor_id, note)

    async def finish_tasks(self, kinds: Iterable[TaskKind], status: str, actor_id: int | None,
                           note: str) -> None:
        values = {k.value for k in kinds}
        await tasks_heard_of()
        for task_id, kind in list(self.state.open_tasks.items()):
            if kind in values:
                await self.finish_task(task_id, status, actor_id, note)

    async def decided(self, kind: str, decision: str, reason: str, actor: Actor,
                      *task_kinds: TaskKind, detail: dict | None = None) -> None:
        """The decision on the record (who, when, why), and the tasks that asked for it done."""
        await workflow.execute_activity_method(
            RecordActivities.record_decision,
            DecisionRecord(key=self.key(kind), transition_id=self.state.transition_id, kind=kind,
                           decision=decision, reason=reason, decided_by_id=actor.id,
                           decided_at=workflow.now(), detail=detail or {}), **STORE)
        await self.finish_tasks(task_kinds, "completed", actor.id, reason)

    async def adopt_supervisor_task(self, task_id: int) -> None:
        """A contact's ladder ended without reaching the person: the supervisor's task outlives
        the contact, so the pathway answers for it (completed from the task list, cancelled at
        closure) while it carries on."""
        await workflow.execute_activity_method(
            RecordActivities.hand_over_task,
            HandOverTask(task_id=task_id, workflow_id=workflow.info().workflow_id), **STORE)
        self.state.open_tasks[task_id] = TaskKind.supervisor_decision.value
