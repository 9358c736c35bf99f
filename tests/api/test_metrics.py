"""The API's Prometheus metrics: on a scrape port of their own, never on the public app."""

from __future__ import annotations

import socket

import httpx
from api_world import NOTIFICATION
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from handrail.api.app import create_app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _value(text: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and set(labels.items()) <= set(sample.labels.items())
    )


def test_handoffs_started_and_request_latency_are_scraped_from_the_metrics_port(
    settings, world, temporal
) -> None:
    port = _free_port()
    settings = settings.model_copy(update={"api_metrics_address": f"127.0.0.1:{port}"})
    app = create_app(settings, engine=world.engine, temporal_client=temporal)
    scrape = f"http://127.0.0.1:{port}/metrics"
    with TestClient(app) as api:
        before = httpx.get(scrape, timeout=5).text
        coordinator = world.auth("coordinator")
        assert api.post("/api/handoffs", json=NOTIFICATION, headers=coordinator).status_code == 202
        assert api.post("/api/handoffs", json=NOTIFICATION, headers=coordinator).status_code == 200
        after = httpx.get(scrape, timeout=5).text
        # Not on the public app: the scrape port is reached only inside the deployment.
        assert api.get("/metrics").status_code == 404

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("handrail_workflows_started_total", workflow="PostCrisisHandoff") == 1
    assert moved("handrail_notifications_repeated_total", workflow="PostCrisisHandoff") == 1
    assert moved("handrail_http_request_duration_seconds_count",
                 method="POST", route="/api/handoffs", status="202") == 1
    # The scrape port closes with the app.
    try:
        httpx.get(scrape, timeout=2)
        raise AssertionError("the metrics port still answers after the app stopped")
    except httpx.TransportError:
        pass


def test_a_route_with_an_id_is_labelled_by_its_template(api, world) -> None:
    api.get("/api/transitions/handoff-not-there", headers=world.auth("coordinator"))
    from prometheus_client import REGISTRY

    routes = {
        sample.labels["route"]
        for family in REGISTRY.collect() if family.name == "handrail_http_request_duration_seconds"
        for sample in family.samples
    }
    assert "/api/transitions/{transition_id}" in routes
    assert not [route for route in routes if "handoff-not-there" in route]
