"""`handrail dev` as a user runs it: it comes up, it heals, and Ctrl-C leaves nothing behind.

One stack for the module (starting it costs seconds on two cores); the tests run in order and
the last one stops it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import pytest
from devstack import (
    DevStackProcess,
    group_exists,
    process_running,
    process_start_ticks,
    running_stack,
    wait_for,
)
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    with running_stack(tmp_path_factory.mktemp("dev") / "data", policy="seconds", headless=False) as dev:
        yield dev


def workflow_pollers(address: str) -> int:
    async def describe() -> int:
        client = await Client.connect(address)
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace="default",
                task_queue=TaskQueue(name="handrail"),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        return len(response.pollers)

    return asyncio.run(describe())


def test_dev_starts_the_whole_stack_and_prints_where_it_is(stack: DevStackProcess) -> None:
    assert httpx.get(f"{stack.api_url}/healthz").status_code == 200
    ready = httpx.get(f"{stack.api_url}/readyz").json()
    assert ready["checks"] == {"database": "ok", "temporal": "ok"}

    children = stack.children()
    assert set(children) == {"temporal", "worker", "api"}
    assert wait_for(lambda: workflow_pollers(stack.temporal_address), within=30, what="worker polling")

    output = stack.output()
    assert f"http://localhost:{stack.api_port}/docs" in output
    assert f"127.0.0.1:{stack.temporal_port}" in output
    assert str(stack.data_dir / "demo-logins.txt") in output
    # Logins are shown once and kept in the file; children's logs stay out of the output.
    logins = stack.logins()
    assert {"supervisor", "transition_coordinator", "clinician"} <= set(logins)
    assert logins["supervisor"] in output
    assert "Uvicorn running" not in output
    # The Temporal UI answers, pointed at the API's codec endpoint for the encrypted payloads.
    assert f"(UI: http://localhost:{stack.ui_port})" in output
    ui_settings = httpx.get(f"http://127.0.0.1:{stack.ui_port}/api/v1/settings", timeout=10).json()
    assert ui_settings["Codec"]["Endpoint"] == f"http://localhost:{stack.api_port}/codec"
    # … and the API lets that UI, and only that UI, call the codec from the browser.
    for origin, allowed in ((f"http://localhost:{stack.ui_port}", True), ("http://evil.example", False)):
        preflight = httpx.options(f"{stack.api_url}/codec/decode", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        })
        assert (preflight.headers.get("access-control-allow-origin") == origin) is allowed
    for name in ("temporal", "worker", "api"):
        assert (stack.data_dir / "logs" / f"{name}.log").stat().st_size > 0


def test_first_start_posts_three_synthetic_notifications(stack: DevStackProcess) -> None:
    token = stack.logins()["transition_coordinator"]

    def listed() -> list:
        response = httpx.get(
            f"{stack.api_url}/api/transitions?kind=handoff",  # the demo's step-up is one more
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        items = body["items"] if isinstance(body, dict) else body
        return items if len(items) >= 3 else []

    items = wait_for(listed, within=30, what="three demo transitions in GET /api/transitions")
    assert len(items) == 3
    assert all(item["id"].startswith("handoff-") for item in items)


def test_a_killed_worker_is_restarted(stack: DevStackProcess) -> None:
    worker = stack.children()["worker"]
    os.kill(worker, signal.SIGKILL)

    replacement = stack.wait_child("worker", other_than=worker, within=20)
    assert process_running(replacement)
    assert wait_for(lambda: workflow_pollers(stack.temporal_address), within=30, what="new worker polling")
    assert "worker exited with code -9" in stack.log("dev")


def test_a_killed_api_is_restarted(stack: DevStackProcess) -> None:
    api = stack.children()["api"]
    os.kill(api, signal.SIGKILL)

    stack.wait_child("api", other_than=api, within=20)
    wait_for(
        lambda: httpx.get(f"{stack.api_url}/healthz", timeout=2).status_code == 200,
        within=30, what="the restarted API to answer",
    )


def test_a_killed_dev_server_is_restarted_and_then_a_fresh_worker(stack: DevStackProcess) -> None:
    before = stack.children()
    os.kill(before["temporal"], signal.SIGKILL)

    temporal = stack.wait_child("temporal", other_than=before["temporal"], within=30)
    worker = stack.wait_child("worker", other_than=before["worker"], within=60)
    # The worker that lived through the crash is replaced, and only after the server is back.
    assert not process_running(before["worker"])
    assert process_start_ticks(worker) >= process_start_ticks(temporal)
    stack.wait_ready(within=60)
    assert wait_for(lambda: workflow_pollers(stack.temporal_address), within=30, what="worker polling")
    assert "temporal dev server exited with code -9" in stack.log("dev")


def test_a_second_dev_on_the_same_data_dir_is_refused(stack: DevStackProcess) -> None:
    second = DevStackProcess(stack.data_dir, demo_notifications=False).start()
    try:
        assert second.proc.wait(timeout=30) == 1
    finally:
        second.kill_everything()
    assert f"another `handrail dev` is already running on {stack.data_dir}" in second.output()
    assert httpx.get(f"{stack.api_url}/readyz").status_code == 200


def test_ctrl_c_stops_every_process_it_started(stack: DevStackProcess) -> None:
    children = stack.children()
    assert set(children) == {"temporal", "worker", "api"}
    every_pid = set(stack.seen_pids)

    assert stack.stop(within=60) == 0

    still_running = [pid for pid in every_pid if process_running(pid)]
    assert still_running == [], f"left running: {still_running}"
    # Each child led its own process group; none of those groups has a member left.
    assert [pgid for pgid in children.values() if group_exists(pgid)] == []
    dev_log = stack.log("dev")
    assert "stopped: every process the stack started has exited" in dev_log
    assert "did not stop in" not in dev_log  # each stopped on SIGTERM: nothing had to be killed


def test_an_invalid_policy_stops_dev_before_anything_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    seconds = Path(__file__).resolve().parents[2] / "policies" / "seconds.toml"
    bad.write_text(seconds.read_text().replace('first_contact_due = "PT60S"', 'first_contact_due = "soon"'))
    dev = DevStackProcess(tmp_path / "data", policy=str(bad)).start()
    try:
        code = dev.proc.wait(timeout=30)
    finally:
        dev.kill_everything()
    output = dev.output()
    assert code == 1
    assert "handoff.first_contact_due" in output
    assert "Traceback" not in output
    assert not (tmp_path / "data" / "temporal.db").exists()
