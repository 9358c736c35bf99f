"""Prometheus metrics.

- The API and the MLLP listener count with `prometheus_client` and serve the registry on
  HANDRAIL_API_METRICS_ADDRESS, a port of its own: the public port stays for people and
  Twilio, the scrape port stays inside the deployment's network (no login on it).
- The worker's metrics are the Temporal SDK runtime's own (task latencies, slots, polls …) plus
  the workflows' counters made with `workflow.metric_meter()` (fallback steps, escalations),
  which the SDK does not record while replaying; served on HANDRAIL_WORKER_METRICS_ADDRESS.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from ..config import Settings
from ..workflows.metrics import ESCALATIONS, FALLBACK_STEPS  # noqa: F401 - re-exported names

log = logging.getLogger(__name__)

HTTP_REQUEST_SECONDS = Histogram(
    "handrail_http_request_duration_seconds",
    "API request latency, by route template (never the concrete path) and status code",
    ["method", "route", "status"],
)
WORKFLOWS_STARTED = Counter(
    "handrail_workflows_started",
    "Pathway workflows started from this process (a repeated notification is not counted)",
    ["workflow"],
)
NOTIFICATIONS_REPEATED = Counter(
    "handrail_notifications_repeated",
    "Notifications that reached an already started workflow (same source system and encounter)",
    ["workflow"],
)
# The workflows' own counters (workflows/metrics.py) are exported by the worker under
# FALLBACK_STEPS and ESCALATIONS.


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "0.0.0.0", int(port)


def serve_api_metrics(settings: Settings):
    """Start the scrape endpoint in a thread; returns the server (None when not configured)."""
    if not settings.api_metrics_address:
        return None
    host, port = parse_address(settings.api_metrics_address)
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    log.info("metrics on %s:%s", host, server.server_port)
    return server


class RequestMetricsMiddleware:
    """Times each HTTP request; labelled by the matched route's template to bound cardinality
    (and keep ids out of the labels)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_and_note_status(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_REQUEST_SECONDS.labels(scope["method"], route, str(status["code"])).observe(
                time.perf_counter() - started
            )


def worker_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime with the Prometheus exporter (and, with JSON logs, the SDK core's own
    log lines forwarded into Python logging so they come out in the same format)."""
    wants_metrics = bool(settings.worker_metrics_address)
    if not wants_metrics and settings.log_format != "json":
        return None
    logging_config = LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"))
    if settings.log_format == "json":
        logging_config = LoggingConfig(
            filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
            forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
        )
    metrics = None
    if wants_metrics:
        host, port = parse_address(settings.worker_metrics_address)
        metrics = PrometheusConfig(bind_address=f"{host}:{port}")
    return Runtime(telemetry=TelemetryConfig(logging=logging_config, metrics=metrics))
