"""/healthz and /readyz, and starting the app with Temporal down or a broken policy."""

from __future__ import annotations

import socket

import pytest
from api_world import NOTIFICATION
from fastapi.testclient import TestClient

from handrail.api.app import create_app
from handrail.config import Settings
from handrail.domain.policy import PolicyError


def _closed_port() -> int:
    # A port that was free a moment ago: nothing listens there, so connecting is refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_healthz_answers_without_io(api):
    assert api.get("/healthz").json() == {"status": "ok"}


def test_readyz_is_200_when_database_and_temporal_answer(api):
    answer = api.get("/readyz")
    assert answer.status_code == 200
    assert answer.json()["checks"] == {"database": "ok", "temporal": "ok"}


def test_readyz_is_503_naming_temporal_when_it_stops_answering(api, temporal):
    temporal.healthy = False
    answer = api.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["database"] == "ok"
    assert answer.json()["checks"]["temporal"].startswith("unavailable")


def test_app_starts_without_temporal_and_says_so(tmp_path, world):
    settings = Settings(data_dir=tmp_path, id_key="k", policy="seconds",
                        temporal_address=f"127.0.0.1:{_closed_port()}")
    app = create_app(settings, engine=world.engine)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["temporal"].startswith("unavailable")
        # Bad input is still named while Temporal is away; good input is told to come back.
        bad = client.post("/api/handoffs", json={}, headers=world.auth("coordinator"))
        good = client.post("/api/handoffs", json=NOTIFICATION, headers=world.auth("coordinator"))
        assert bad.status_code == 422
        assert good.status_code == 503
        assert good.headers["Retry-After"]


def test_invalid_policy_refuses_to_start_naming_the_field(tmp_path):
    broken = tmp_path / "broken.toml"
    text = (Settings().policy_path().parent / "seconds.toml").read_text()
    broken.write_text(text.replace('first_contact_due = "PT60S"', 'first_contact_due = "PT-5S"'))
    with pytest.raises(PolicyError, match="first_contact_due"):
        create_app(Settings(data_dir=tmp_path, policy=str(broken)))


def test_the_app_serves_every_area(api):
    paths = set(api.get("/openapi.json").json()["paths"])
    assert {
        "/api/handoffs", "/api/intake/hl7", "/api/intake/fhir", "/api/transitions",
        "/api/transitions/{transition_id}/actions/{action}", "/api/tasks", "/api/outbox",
        "/webhooks/twilio/sms", "/codec/decode", "/auth/login", "/healthz", "/readyz",
    } <= paths
