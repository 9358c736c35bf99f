"""The supervisor's watchdog against a real dev server: a live worker process that does not poll
(as a worker that lived through a server restart was seen to do) is restarted."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from devstack import free_ports, process_running

from handrail.cli.dev import DevOptions, DevStack
from handrail.config import Settings

pytestmark = pytest.mark.e2e


@pytest.mark.skipif(shutil.which("sleep") is None, reason="needs sleep(1)")
async def test_a_worker_with_no_pollers_is_restarted_by_the_watchdog(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    temporal_port, ui_port, api_port = free_ports(3)
    settings = Settings(data_dir=tmp_path / "data", policy="seconds", task_queue="watchdog-test")
    stack = DevStack(
        DevOptions(
            settings=settings, temporal_port=temporal_port, ui_port=ui_port, api_port=api_port,
            headless=True, watchdog_after=2.0,
        )
    )
    # A process that is alive but never polls the task queue.
    stack.worker.argv = ["sleep", "600"]
    supervising = None
    try:
        stack.temporal.start()
        assert await stack._wait_temporal_healthy(60), stack.temporal.log_path.read_text()[-2000:]
        stack.worker.start()
        frozen = stack.worker.pid
        supervising = asyncio.create_task(stack._supervise())
        for _ in range(150):  # up to 30 s
            if stack.worker.restarts:
                break
            await asyncio.sleep(0.2)
        assert stack.worker.restarts == 1
        assert stack.worker.pid != frozen
        assert not process_running(frozen)
        assert stack.temporal.restarts == 0  # only the worker was touched
    finally:
        if supervising is not None:
            supervising.cancel()
        await stack.shutdown()
    assert "no workflow pollers on task queue 'watchdog-test'" in caplog.text
