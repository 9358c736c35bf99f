"""A dev-server crash with tens of handoffs in flight: `handrail dev` brings the server back with a
fresh worker, and every handoff's timers still fire (NOTES.md: a worker that lived through a
restart under load stopped polling for minutes; the supervisor must not let that happen)."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from devstack import DevStackProcess, wait_for

pytestmark = pytest.mark.e2e

IN_FLIGHT = 30
CONSENT_ESCALATION = "Consent and contact details not confirmed in time"


def notification(index: int) -> dict:
    return {  # synthetic people: drama-range numbers, invented names
        "source": "crisis_stabilization",
        "source_system": "load-crisis-unit",
        "encounter_id": f"load-{index:03d}",
        "event_time": datetime.now(UTC).isoformat(),
        "person": {
            "identifiers": [{"system": "urn:example:load", "value": f"LOAD-{index:03d}"}],
            "given_name": "Load",
            "family_name": f"Person{index:03d}",
            "phone": f"+447700900{index:03d}",
        },
    }


def test_every_handoff_carries_on_after_a_dev_server_crash_under_load(tmp_path) -> None:
    stack = DevStackProcess(tmp_path / "data", policy="seconds", demo_notifications=False).start()
    try:
        stack.wait_ready()
        logins = stack.logins()
        coordinator = {"Authorization": f"Bearer {logins['transition_coordinator']}"}
        supervisor = {"Authorization": f"Bearer {logins['supervisor']}"}

        def post(index: int) -> str:
            response = httpx.post(
                f"{stack.api_url}/api/handoffs", json=notification(index), headers=coordinator, timeout=30
            )
            assert response.status_code == 202, response.text
            return response.json()["transition_id"]

        with ThreadPoolExecutor(max_workers=6) as pool:
            started = set(pool.map(post, range(IN_FLIGHT)))
        assert len(started) == IN_FLIGHT

        # Nobody confirms consent: each handoff's own timer (10 s) must escalate it. The server
        # dies before those timers are due.
        before = stack.children()
        os.kill(before["temporal"], signal.SIGKILL)
        crashed_at = time.monotonic()
        stack.wait_child("temporal", other_than=before["temporal"], within=30)
        stack.wait_child("worker", other_than=before["worker"], within=60)

        def escalated() -> bool:
            response = httpx.get(
                f"{stack.api_url}/api/tasks", params={"view": "team"}, headers=supervisor, timeout=10
            )
            assert response.status_code == 200, response.text
            found = {t["transition_id"] for t in response.json() if t["title"] == CONSENT_ESCALATION}
            return started <= found

        wait_for(escalated, within=90, every=1, what=f"consent escalations for all {IN_FLIGHT} handoffs")
        recovered_in = time.monotonic() - crashed_at
        print(f"\n{IN_FLIGHT} handoffs escalated {recovered_in:.1f}s after the dev server was killed")
        assert recovered_in < 90
    finally:
        try:
            stack.stop()
        finally:
            stack.kill_everything()
