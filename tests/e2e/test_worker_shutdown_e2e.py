"""SIGTERM to a worker with an activity in flight loses nothing (on the real dev server).

The real `handrail worker` command runs a real handoff. The test holds the store's write lock, so
the handoff's first activity (recording the transition) is in flight, blocked in its database
write, when the orchestrator's SIGTERM arrives. The worker stops polling but waits for it: once
the lock is released the activity completes on its first attempt, the worker exits cleanly, and
a second worker carries the handoff on from exactly there: one transition row, its tasks made.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from sqlmodel import Session, func, select
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.testing import WorkflowEnvironment

from handrail.api.starting import start_handoff
from handrail.config import Settings
from handrail.domain.notification import HandoffNotification
from handrail.store import migrate
from handrail.store.db import make_engine, session_scope
from handrail.store.demo import seed_demo
from handrail.store.models import Task, Transition
from handrail.temporal_client import connect
from tests.temporal_servers import dev_server_cli

pytestmark = pytest.mark.e2e

NOTIFICATION = {  # synthetic: an invented person and a drama-range number
    "source": "crisis_stabilization", "source_system": "shutdown-test-unit", "encounter_id": "enc-shutdown",
    "event_time": datetime.now(UTC).isoformat(),
    "person": {"identifiers": [{"system": "urn:example:test", "value": "SHUT-0001"}],
               "given_name": "Shutdown", "family_name": "Testperson", "phone": "+447700900444"},
}


@pytest_asyncio.fixture
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_local(dev_server_existing_path=dev_server_cli())
    yield environment
    await environment.shutdown()


class WorkerProcess:
    """`handrail worker` as the orchestrator runs it, its output in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "handrail.cli.main", "worker"], env=env,
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


async def eventually(check, *, within: float, what: str):
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.2)


async def test_sigterm_with_an_activity_in_flight_finishes_it_and_loses_nothing(dev_server, tmp_path):
    database = tmp_path / "handrail.db"
    settings = Settings(
        data_dir=tmp_path, database_url=f"sqlite:///{database}", policy="seconds", id_key="shutdown-key",
        codec_keys=f"k1:{base64.b64encode(os.urandom(32)).decode()}",
        temporal_address=dev_server.client.service_client.config.target_host,
    )
    migrate.upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        seed_demo(session)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDRAIL_")}
    env.update(HANDRAIL_DATA_DIR=str(tmp_path), HANDRAIL_DATABASE_URL=settings.database_url,
               HANDRAIL_POLICY="seconds", HANDRAIL_ID_KEY="shutdown-key",
               HANDRAIL_CODEC_KEYS=settings.codec_keys.get_secret_value(),
               HANDRAIL_TEMPORAL_ADDRESS=settings.temporal_address, PYTHONUNBUFFERED="1")

    # Hold the store's write lock: the first activity will block in its write, in flight.
    lock = sqlite3.connect(database, isolation_level=None, timeout=30)
    lock.execute("BEGIN IMMEDIATE")
    first = WorkerProcess(env, tmp_path / "worker-1.log")
    second = None
    try:
        client = await connect(settings)
        transition_id, started = await start_handoff(
            client=client, settings=settings, policy=settings.load_policy(),
            notification=HandoffNotification.model_validate(NOTIFICATION),
        )
        assert started
        handle = client.get_workflow_handle(transition_id)

        async def recording_in_flight() -> bool:
            pending = (await handle.describe()).raw_description.pending_activities
            return any(a.activity_type.name == "record_handoff"
                       and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED for a in pending)

        await eventually(recording_in_flight, within=30, what="record_handoff to be running on the worker")

        first.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(2)
        assert first.proc.poll() is None, f"the worker left its activity behind:\n{first.output()}"
        lock.execute("ROLLBACK")  # the database answers again; the in-flight write goes through
        code = await asyncio.to_thread(first.proc.wait, 20)
        assert code == 0, first.output()

        # The activity finished on the first worker, on its first attempt: nothing failed or
        # timed out, nothing waits to be retried.
        events = [event async for event in handle.fetch_history_events()]
        completed = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
        assert len(completed) == 1
        assert not [e for e in events if e.event_type in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED, EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
            EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED)]
        assert not (await handle.describe()).raw_description.pending_activities

        # A second worker carries the handoff on from there.
        second = WorkerProcess(env, tmp_path / "worker-2.log")

        async def tasks_made() -> int:
            with Session(engine) as session:
                return session.exec(select(func.count()).select_from(Task)
                                    .where(Task.transition_id == transition_id)).one()

        await eventually(tasks_made, within=30, what="the handoff's tasks, made by the second worker")
        with Session(engine) as session:
            rows = session.exec(select(Transition).where(Transition.id == transition_id)).all()
        assert len(rows) == 1 and rows[0].owner_id is not None
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
        lock.close()
        engine.dispose()
