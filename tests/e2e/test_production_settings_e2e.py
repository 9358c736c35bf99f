"""A full warm handoff with the settings a deployment uses: the store on PostgreSQL, JSON logs,
and both Prometheus endpoints (the API's and the worker's) switched on.

One run of `handrail dev --policy seconds` on a throwaway PostgreSQL database: a discharge
arrives (and again), consent is confirmed, the first contact is booked and missed, the fallback
ladder runs to the supervisor's decision, the supervisor closes the transition. Then:
- the transition reads the same through the API as on SQLite (the store works on both);
- the metrics scraped from both endpoints show the counters moved;
- nothing in any log of the run holds the person's name, phone, record number or summary.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from devstack import DevStackProcess, closed_last, free_ports, wait_for
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PG_ADMIN_URL = os.environ.get(
    "HANDRAIL_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PERSON = {  # synthetic: a drama-range number, an invented name and record number
    "identifiers": [{"system": "urn:example:mrn", "value": "MRN-PRIVATE-7731"}],
    "given_name": "Marigold",
    "family_name": "Quillfeather",
    "phone": "+447700900731",
    "time_zone": "Europe/London",
}
SUMMARY = {
    "risk_factors": ["overdose of sertraline last spring"],
    "current_medications": ["sertraline 100mg"],
    "immediate_stressors": ["eviction notice from the landlord"],
    "safety_plan": "Stay with her sister Hyacinth tonight.",
    "next_step_recommendation": "Community mental health team review",
}
# Each one must be absent from every log line of the run.
PERSONAL_DATA = [
    PERSON["given_name"], PERSON["family_name"], PERSON["phone"], PERSON["phone"].lstrip("+"),
    "7700900731", "MRN-PRIVATE-7731", "sertraline", "eviction notice", "Hyacinth",
]


def _admin_conninfo() -> str:
    return make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A fresh, empty database on the local PostgreSQL, dropped afterwards."""
    try:
        admin = psycopg.connect(_admin_conninfo(), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        reason = f"PostgreSQL unreachable at {make_url(PG_ADMIN_URL).render_as_string()}: {error}"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {reason}", pytrace=False)
        pytest.skip(reason)
    name = f"handrail_e2e_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin_conninfo(), autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class HandoffRun:
    stack: DevStackProcess
    transition: dict
    api_metrics: str
    worker_metrics: str
    logs: dict[str, str]


@pytest.fixture(scope="module")
def run(postgres_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HandoffRun]:
    stack = DevStackProcess(
        tmp_path_factory.mktemp("production-e2e") / "data", policy="seconds", demo_notifications=False
    )
    api_metrics_port, worker_metrics_port = free_ports(2)
    stack.env.update(
        HANDRAIL_DATABASE_URL=postgres_database,
        HANDRAIL_LOG_FORMAT="json",
        # DEBUG: every library's chatter too, so a leak anywhere in the stack would show.
        HANDRAIL_LOG_LEVEL="DEBUG",
        HANDRAIL_API_METRICS_ADDRESS=f"127.0.0.1:{api_metrics_port}",
        HANDRAIL_WORKER_METRICS_ADDRESS=f"127.0.0.1:{worker_metrics_port}",
    )
    stack.start()
    try:
        stack.wait_ready()
        transition = _full_handoff(stack)
        api_metrics = httpx.get(f"http://127.0.0.1:{api_metrics_port}/metrics", timeout=5).text
        worker_metrics = wait_for(
            lambda: _worker_metrics_with_escalation(worker_metrics_port), within=20,
            what="the worker's metrics to show the ladder's escalation",
        )
        stack.stop()  # the logs are complete once every process has flushed and exited
        logs = {name: stack.log(name) for name in ("dev", "temporal", "worker", "api")}
        logs["dev-output"] = stack.output()
        yield HandoffRun(stack, transition, api_metrics, worker_metrics, logs)
    finally:
        try:
            stack.stop()
        finally:
            stack.kill_everything()


def _worker_metrics_with_escalation(port: int) -> str | None:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return text if samples(text, "handrail_escalations_total") else None


def _full_handoff(stack: DevStackProcess) -> dict:
    logins = stack.logins()
    coordinator = httpx.Client(base_url=stack.api_url, timeout=15,
                               headers={"Authorization": f"Bearer {logins['transition_coordinator']}"})
    supervisor = httpx.Client(base_url=stack.api_url, timeout=15,
                              headers={"Authorization": f"Bearer {logins['supervisor']}"})
    notification = {
        "source": "emergency_department", "source_system": "prod-e2e-ed", "encounter_id": "enc-7731",
        "event_time": datetime.now(UTC).isoformat(), "person": PERSON, "summary": SUMMARY,
    }
    started = coordinator.post("/api/handoffs", json=notification)
    assert started.status_code == 202, started.text
    transition_id = started.json()["transition_id"]
    assert coordinator.post("/api/handoffs", json=notification).status_code == 200

    def detail() -> dict:
        response = coordinator.get(f"/api/transitions/{transition_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def act(client: httpx.Client, action: str, body: dict) -> None:
        response = client.post(f"/api/transitions/{transition_id}/actions/{action}", json=body)
        assert response.status_code == 200, response.text

    wait_for(lambda: detail()["recorded"], within=20, what="the transition to be recorded")
    act(coordinator, "confirm-details", {"consent_to_messages": True, "phone": PERSON["phone"]})
    appointment_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    act(coordinator, "book", {"appointment_at": appointment_at.isoformat(), "location": "Clinic 2"})
    # Nobody records the contact: the ladder runs (message, call, coordinator task) to the end.
    wait_for(lambda: detail()["stage"] == "awaiting_supervisor_decision", within=90,
             what="the fallback ladder to end in the supervisor's decision")
    act(supervisor, "decide", {"decision": "close_disengaged", "reason": "No answer to any attempt."})
    return wait_for(lambda: (d := detail())["stage"] == "closed" and d, within=20,
                    what="the transition to close")


def samples(text: str, name: str) -> dict[tuple, float]:
    """The samples of one metric: {sorted label items: value}."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(found: dict[tuple, float], **labels: str) -> float:
    return sum(v for key, v in found.items() if set(labels.items()) <= set(key))


def test_the_handoff_runs_to_its_end_on_postgresql(run: HandoffRun) -> None:
    final = run.transition
    assert final["outcome"] == "disengaged"
    assert [d["decision"] for d in final["decisions"]] == ["close_disengaged"]
    timeline = [event["action"] for event in final["timeline"]]
    assert timeline[0] == "transition.recorded" and closed_last(timeline)
    assert "postgresql" in run.stack.env["HANDRAIL_DATABASE_URL"]


def test_metrics_scraped_after_the_handoff_show_the_counters_moved(run: HandoffRun) -> None:
    api, worker = run.api_metrics, run.worker_metrics
    started = samples(api, "handrail_workflows_started_total")
    assert value(started, workflow="PostCrisisHandoff") == 1
    assert value(samples(api, "handrail_notifications_repeated_total"), workflow="PostCrisisHandoff") == 1
    latency = samples(api, "handrail_http_request_duration_seconds_count")
    assert value(latency, method="POST", route="/api/handoffs", status="202") == 1
    assert value(latency, method="POST", route="/api/handoffs", status="200") == 1
    # Route templates label the latency, never a concrete id.
    assert not [key for key in latency if "handoff-" in dict(key)["route"]]

    steps = samples(worker, "handrail_fallback_steps_total")
    for action in ("message", "call", "coordinator_task", "supervisor_escalation"):
        assert value(steps, action=action) >= 1, (action, steps)
    escalations = samples(worker, "handrail_escalations_total")
    assert value(escalations, reason="fallback_ladder_exhausted") >= 1, escalations
    # The SDK runtime's own metrics come from the same endpoint.
    assert "temporal_workflow_completed" in worker or "temporal_workflow_task_execution_latency" in worker


def test_no_personal_data_in_any_log_of_a_full_handoff(run: HandoffRun) -> None:
    assert run.logs["worker"] and run.logs["api"]
    leaks = [
        (name, fragment) for name, text in run.logs.items() for fragment in PERSONAL_DATA
        if fragment.lower() in text.lower()
    ]
    assert leaks == []


def test_worker_and_api_logs_are_json_lines(run: HandoffRun) -> None:
    for name in ("worker", "api"):
        # Lines starting "---" are the supervisor's own separators between a child's runs.
        lines = [line for line in run.logs[name].splitlines() if line.strip() and not line.startswith("--- ")]
        assert lines, name
        entries = [json.loads(line) for line in lines]
        assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries), name
    access = [json.loads(line) for line in run.logs["api"].splitlines()
              if line.startswith("{") and '"uvicorn.access"' in line]
    assert any(entry.get("path") == "/api/handoffs" and entry.get("status") == 202 for entry in access)
