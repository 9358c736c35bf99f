"""The FastAPI application: `uvicorn --factory handrail.api.app:create_app`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.engine import Engine
from temporalio.client import Client

from ..config import Settings, get_settings
from ..domain.policy import Policy
from ..observability.metrics import RequestMetricsMiddleware, serve_api_metrics
from ..observability.tracing import fastapi_telemetry, setup_tracing
from ..security.headers import SecurityHeadersMiddleware
from ..security.sessions import uses_https
from ..store.db import make_engine
from . import console, errors
from .deps import TemporalConnection
from .errors import TemporalUnavailable
from .routes import (
    admission_avoidance,
    auth,
    codec,
    handoffs,
    health,
    intake,
    outbox,
    step_downs,
    step_ups,
    tasks,
    transitions,
    twilio,
)
from .routes import reports as report_routes

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    temporal_client: Client | None = None,
    policy: Policy | None = None,
) -> FastAPI:
    """Build the app. Tests inject an engine and a (fake or real) Temporal client; otherwise the
    lifespan makes one engine and connects to Temporal once (lazily retried if it is down).

    An invalid policy raises `PolicyError` here, naming the field and the reason, so the
    server refuses to start."""
    settings = settings or get_settings()
    policy = policy or settings.load_policy()
    temporal = TemporalConnection(settings, temporal_client)
    setup_tracing(settings, "api")  # before the client connects: its interceptor traces starts

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned_engine = None
        if engine is None:
            if not settings.database_url:
                settings.data_dir.mkdir(parents=True, exist_ok=True)
            owned_engine = make_engine(settings.resolved_database_url)
        app.state.engine = engine or owned_engine
        metrics_server = serve_api_metrics(settings)
        try:
            await temporal.client()
        except TemporalUnavailable:
            log.warning("starting without Temporal; /readyz reports it until it connects")
        try:
            yield
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
            if owned_engine is not None:
                owned_engine.dispose()

    app = FastAPI(
        title="Handrail",
        summary="Care transitions in community mental health, as durable workflows",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=fastapi_telemetry(settings),
    )
    app.state.settings = settings
    app.state.policy = policy
    app.state.temporal = temporal
    if engine is not None:
        app.state.engine = engine
    errors.install(app)
    app.add_middleware(SecurityHeadersMiddleware, https=uses_https(settings))
    app.add_middleware(RequestMetricsMiddleware)

    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(handoffs.router)
    app.include_router(intake.router)
    app.include_router(transitions.router)
    app.include_router(step_ups.router)
    app.include_router(step_downs.router)
    app.include_router(admission_avoidance.router)
    app.include_router(tasks.router)
    app.include_router(outbox.router)
    app.include_router(twilio.router)
    app.include_router(codec.router)
    app.include_router(report_routes.router)
    console.install(app)
    return app
