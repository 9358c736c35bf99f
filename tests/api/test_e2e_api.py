"""End to end: the real routes, the real workflows and worker, the Temporal dev server.

A staff member's day in one warm handoff (seconds-scale policy): the notification arrives twice
at once, the record appears, consent is confirmed, the first contact is booked, a wrong action
is refused with the workflow's reason, the person's reply is typed into the outbox, and the
transition is closed."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from api_world import NOTIFICATION, ON_POSTGRES
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from handrail.api.app import create_app
from handrail.channels.outbox import OutboxChannel
from handrail.config import Settings
from handrail.temporal_client import connect
from handrail.worker import build_worker
from tests.temporal_servers import dev_server_cli

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=dev_server_cli(), data_converter=pydantic_data_converter,
        dev_server_extra_args=["--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
                               "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1"],
    )
    yield environment
    await environment.shutdown()


async def eventually(check: Callable[[], Awaitable[object]], *, seconds: float = 15.0) -> object:
    """Poll (the worker writes the store asynchronously) until `check` returns something truthy."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting for the worker")
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("api_engine", ["sqlite", ON_POSTGRES], indirect=True)
async def test_a_warm_handoff_through_the_api(dev_env, world, tmp_path):
    settings = Settings(data_dir=tmp_path, id_key="e2e-key", policy="seconds",
                        task_queue=f"api-e2e-{uuid.uuid4()}",
                        temporal_address=dev_env.client.service_client.config.target_host)
    # The app connects by itself (lazily, with the encrypting converter), as in production.
    app = create_app(settings, engine=world.engine)
    worker = build_worker(await connect(settings), settings, world.engine, OutboxChannel())
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    async with worker, httpx.AsyncClient(transport=transport, base_url="http://api") as api:
        assert (await api.get("/readyz")).status_code == 200
        coordinator, supervisor = world.auth("coordinator"), world.auth("supervisor")
        notification = copy.deepcopy(NOTIFICATION)
        notification["event_time"] = datetime.now(UTC).isoformat()
        notification["encounter_id"] = f"ENC-{uuid.uuid4().hex[:8]}"

        # The same notification sent twice at once starts one workflow.
        first, second = await asyncio.gather(
            api.post("/api/handoffs", json=notification, headers=coordinator),
            api.post("/api/handoffs", json=notification, headers=coordinator),
        )
        assert sorted([first.status_code, second.status_code]) == [200, 202]
        tid = first.json()["transition_id"]
        assert second.json()["transition_id"] == tid

        async def recorded():
            answer = await api.get(f"/api/transitions/{tid}", headers=coordinator)
            return answer.json() if answer.status_code == 200 and answer.json()["recorded"] else None

        detail = await eventually(recorded)
        assert detail["person"]["family_name"] == "Testperson"
        assert detail["owner"]["id"] == world.staff_ids["coordinator"]
        assert detail["status"]["stage"] in ("recorded", "awaiting_booking")

        confirm = await api.post(f"/api/transitions/{tid}/actions/confirm-details",
                                 json={"consent_to_messages": True}, headers=coordinator)
        assert confirm.status_code == 200, confirm.text
        assert confirm.json()["consent_to_messages"] is True

        # The workflow's own validator refuses a time in the past, with its reason.
        past = await api.post(f"/api/transitions/{tid}/actions/book",
                              json={"appointment_at": "2020-01-01T10:00:00+00:00"}, headers=coordinator)
        assert past.status_code == 422
        assert "appointment_at" in past.json()["detail"]

        appointment = (datetime.now(UTC) + timedelta(seconds=40)).isoformat()
        booked = await api.post(f"/api/transitions/{tid}/actions/book",
                                json={"appointment_at": appointment}, headers=coordinator)
        assert booked.status_code == 200, booked.text
        assert booked.json()["stage"] == "first_contact_scheduled"

        # No ladder has run out, so there is nothing for the supervisor to decide.
        decide = await api.post(f"/api/transitions/{tid}/actions/decide",
                                json={"decision": "close_disengaged", "reason": "test"},
                                headers=supervisor)
        assert decide.status_code == 409
        assert "no supervisor decision is pending" in decide.json()["detail"]

        async def outbox_message():
            messages = (await api.get("/api/outbox", headers=coordinator)).json()
            return [m for m in messages if m["transition_id"] == tid]

        message = (await eventually(outbox_message))[0]
        replied = await api.post(f"/api/outbox/{message['id']}/reply", json={"text": "YES"},
                                 headers=coordinator)
        assert replied.status_code == 200, replied.text
        assert replied.json()["reply_text"] == "YES"

        closed = await api.post(f"/api/transitions/{tid}/actions/close",
                                json={"reason": "end of the test"}, headers=coordinator)
        assert closed.status_code == 200, closed.text

        async def closed_in_store():
            answer = (await api.get(f"/api/transitions/{tid}", headers=coordinator)).json()
            return answer["status"] if answer.get("recorded") and answer["stage"] == "closed" else None

        await eventually(closed_in_store)
        again = await api.post(f"/api/transitions/{tid}/actions/close",
                               json={"reason": "twice"}, headers=coordinator)
        assert again.status_code == 409
