"""Workflow tests: the real workflows and activities on the time-skipping test server, with a
throwaway SQLite store and the outbox channel, time moved by hand (NOTES.md: a parent and its
child count as two workflows at once, which automatic skipping does not survive)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from handrail.channels.outbox import OutboxChannel
from handrail.config import Settings
from handrail.domain.handoff import Actor, HandoffInput
from handrail.domain.notification import HandoffNotification
from handrail.domain.policy import Policy, parse_policy
from handrail.domain.tasks import Role
from handrail.store.db import make_engine
from handrail.store.models import Staff, StaffTeam, Team
from handrail.worker import build_worker
from handrail.workflows.handoff import PostCrisisHandoff
from tests.temporal_servers import start_time_skipping

REPO = Path(__file__).resolve().parents[2]
TASK_QUEUE = "handrail-test"
HISTORIES = Path(__file__).parent / "histories"


@pytest_asyncio.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    # One server per test: a server whose clock was skipped far ahead with timers in flight
    # was seen to stall the next test's skipping (NOTES.md on the time-skipping server).
    environment = await start_time_skipping()
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="session")
def policy() -> Policy:
    return parse_policy((REPO / "policies" / "default.toml").read_text(), source="default.toml")


@dataclass
class Staffing:
    team_id: int
    coordinator: Actor
    clinician: Actor
    care_coordinator: Actor
    supervisor: Actor
    clinical_lead: Actor


def seed_team(engine: Engine) -> Staffing:
    with Session(engine, expire_on_commit=False) as session:
        team = Team(code="crisis-north", name="Crisis Team North")
        session.add(team)
        session.flush()
        actors = {}
        for role in (Role.transition_coordinator, Role.clinician, Role.care_coordinator,
                     Role.supervisor, Role.clinical_lead):
            staff = Staff(name=f"Test {role.value}", role=role.value)
            session.add(staff)
            session.flush()
            session.add(StaffTeam(staff_id=staff.id, team_id=team.id))
            actors[role] = Actor(id=staff.id, role=role, name=staff.name)
        session.commit()
        return Staffing(team.id, actors[Role.transition_coordinator], actors[Role.clinician],
                        actors[Role.care_coordinator], actors[Role.supervisor],
                        actors[Role.clinical_lead])


@dataclass
class Harness:
    env: WorkflowEnvironment
    client: Client
    engine: Engine
    policy: Policy
    staff: Staffing
    task_queue: str
    started: list[WorkflowHandle]

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def rows(self, model, *where):
        with self.session() as session:
            return list(session.exec(select(model).where(*where)))

    async def start(self, notification: HandoffNotification, *, policy: Policy | None = None,
                    workflow_id: str | None = None) -> WorkflowHandle:
        workflow_id = workflow_id or f"handoff-{uuid.uuid4()}"
        handle = await self.client.start_workflow(
            PostCrisisHandoff.run,
            HandoffInput(transition_id=workflow_id, notification=notification,
                         policy=policy or self.policy, team_code="crisis-north"),
            id=workflow_id, task_queue=self.task_queue)
        self.started.append(handle)
        return handle

    async def record_history(self, workflow_id: str, name: str) -> None:
        """With HANDRAIL_RECORD_HISTORIES=1, save the history for the replay tests."""
        if not os.environ.get("HANDRAIL_RECORD_HISTORIES"):
            return
        history = await self.client.get_workflow_handle(workflow_id).fetch_history()
        HISTORIES.mkdir(exist_ok=True)
        (HISTORIES / f"{name}.json").write_text(history.to_json())

    async def advance(self, by: timedelta, *, step: timedelta = timedelta(minutes=30),
                      until: Callable[[], bool] | None = None) -> None:
        """Move time forward in steps, letting the workers catch up between them."""
        import asyncio

        target = await self.now() + by
        while await self.now() < target:
            remaining = target - await self.now()
            await self.env.sleep(min(step, remaining))
            await asyncio.sleep(0.05)
            if until is not None and until():
                return
        await asyncio.sleep(0.2)

    async def settle(self, condition: Callable[[], bool], *, seconds: float = 10.0) -> None:
        """Wait in real time (time standing still) for the worker to write what we expect."""
        import asyncio

        for _ in range(int(seconds / 0.05)):
            if condition():
                return
            await asyncio.sleep(0.05)
        if not condition():
            from handrail.store.models import AuditEvent, Task

            recent = [(e.action, e.detail.get("kind") or e.detail.get("what")) for e in self.rows(AuditEvent)]
            tasks = [(t.kind, t.status) for t in self.rows(Task)]
            raise AssertionError(f"the expected state never arrived; timeline {recent[-12:]}; tasks {tasks}")


@pytest_asyncio.fixture
async def harness(env: WorkflowEnvironment, policy: Policy, tmp_path: Path) -> AsyncIterator[Harness]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    SQLModel.metadata.create_all(engine)
    staffing = seed_team(engine)
    # A queue of its own per test: nothing a test leaves behind reaches the next test's worker.
    task_queue = f"{TASK_QUEUE}-{uuid.uuid4().hex[:8]}"
    settings = Settings(task_queue=task_queue, data_dir=tmp_path)
    harness = Harness(env, env.client, engine, policy, staffing, task_queue, [])
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = build_worker(env.client, settings, engine, OutboxChannel(), executor=executor)
        with env.auto_time_skipping_disabled():
            async with worker:
                yield harness
                # Open workflows would hold the shared server's clock for the next test.
                for handle in harness.started:
                    try:
                        await handle.terminate("test finished")
                    except Exception:  # noqa: BLE001 - already closed
                        pass
    engine.dispose()
