"""One trace from the API request that starts a handoff, through the workflow, to its activity.

Tracing is on because an OTLP endpoint is set; the spans go to an in-memory exporter instead of a
collector. The real app, the real worker and the Temporal dev server."""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import UTC, datetime

import httpx
import pytest
import pytest_asyncio
from api_world import NOTIFICATION
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.testing import WorkflowEnvironment

from handrail.api.app import create_app
from handrail.channels.outbox import OutboxChannel
from handrail.config import Settings
from handrail.observability.tracing import setup_tracing
from handrail.temporal_client import connect
from handrail.worker import build_worker
from tests.temporal_servers import dev_server_cli

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture
async def dev_env():
    environment = await WorkflowEnvironment.start_local(dev_server_existing_path=dev_server_cli())
    yield environment
    await environment.shutdown()


async def test_a_handoff_is_one_trace_from_the_api_through_the_workflow_to_its_activities(
    dev_env, world, tmp_path
):
    settings = Settings(data_dir=tmp_path, id_key="trace-key", policy="seconds",
                        task_queue=f"trace-{uuid.uuid4()}",
                        temporal_address=dev_env.client.service_client.config.target_host,
                        otel_exporter_otlp_endpoint="http://collector.invalid:4318")
    spans = InMemorySpanExporter()
    assert setup_tracing(settings, "test", exporter=spans)
    app = create_app(settings, engine=world.engine)
    worker = build_worker(await connect(settings), settings, world.engine, OutboxChannel())
    transport = httpx.ASGITransport(app=app)
    async with worker, httpx.AsyncClient(transport=transport, base_url="http://api") as api:
        notification = copy.deepcopy(NOTIFICATION)
        notification["event_time"] = datetime.now(UTC).isoformat()
        notification["encounter_id"] = f"ENC-{uuid.uuid4().hex[:8]}"
        answer = await api.post("/api/handoffs", json=notification, headers=world.auth("coordinator"))
        assert answer.status_code == 202, answer.text

        def named(name: str):
            return [s for s in spans.get_finished_spans() if s.name == name]

        for _ in range(100):
            if named("RunActivity:record_handoff"):
                break
            await asyncio.sleep(0.1)

    [request] = named("POST /api/handoffs")
    [start] = named("StartWorkflow:PostCrisisHandoff")
    run_activity = named("RunActivity:record_handoff")
    assert run_activity, [s.name for s in spans.get_finished_spans()]
    # The start happens inside the request's span (under FastAPI's endpoint span).
    by_id = {s.context.span_id: s for s in spans.get_finished_spans()}
    ancestors, parent = [], start.parent
    while parent is not None and parent.span_id in by_id:
        ancestors.append(by_id[parent.span_id].name)
        parent = by_id[parent.span_id].parent
    assert ancestors[-1] == "POST /api/handoffs", ancestors
    trace_id = request.context.trace_id
    assert {s.context.trace_id for s in (start, *named("RunWorkflow:PostCrisisHandoff"), *run_activity)} == {
        trace_id
    }
    assert request.attributes["http.route"] == "/api/handoffs"
    assert request.attributes["http.response.status_code"] == 202
    # Spans only name ids and routes: nothing of the person's notification.
    exported = repr([dict(s.attributes or {}) for s in spans.get_finished_spans()])
    for personal in ("Alex", "Testperson", "+447700900123", "MRN-TEST-1", "self-harm"):
        assert personal not in exported
