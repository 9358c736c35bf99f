"""OpenTelemetry tracing across API → workflow → activity, off unless a collector is named.

HANDRAIL_OTEL_EXPORTER_OTLP_ENDPOINT (or the standard OTEL_EXPORTER_OTLP_ENDPOINT) is the base
URL of an OTLP/HTTP collector (`http://otel-collector:4318`). The Temporal SDK's
`TracingInterceptor` carries the trace context in workflow and activity headers, so the span of
the API request that started a handoff is the parent of the workflow's and activities' spans.
Span attributes are ids and types only (workflow ids carry no personal data).
"""

from __future__ import annotations

import os
from typing import Any

from ..config import Settings

_configured: list[str] = []


def tracing_enabled(settings: Settings) -> bool:
    return bool(settings.otel_exporter_otlp_endpoint)


def traces_endpoint(base: str) -> str:
    # The standard variable names the collector's base URL; the exporter wants the traces path.
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def setup_tracing(settings: Settings, service: str, *, exporter: Any = None) -> bool:
    """Install the process's tracer provider (once). True when tracing is on. `exporter`
    replaces the OTLP one (tests pass an in-memory exporter)."""
    if not tracing_enabled(settings):
        return False
    if _configured:
        return True
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or f"handrail-{service}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        otlp = OTLPSpanExporter(endpoint=traces_endpoint(settings.otel_exporter_otlp_endpoint))
        provider.add_span_processor(BatchSpanProcessor(otlp))
    trace.set_tracer_provider(provider)
    _configured.append(service)
    return True


def temporal_interceptors(settings: Settings) -> list:
    """For `Client.connect`: a worker built on the client inherits them."""
    if not tracing_enabled(settings):
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def fastapi_telemetry(settings: Settings) -> dict:
    """FastAPI's own OpenTelemetry (it makes the HTTP server span when a tracer provider is set):
    spans only. Its metrics are Prometheus's job here, and its OpenTelemetry logs would carry
    validation errors with the values that failed. The OIDC callback's query holds the login code."""
    return {
        "tracing": tracing_enabled(settings),
        "metrics": False,
        "logs": False,
        "exclude": lambda scope: scope.get("path", "").startswith("/auth/oidc/"),
    }
