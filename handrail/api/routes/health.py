"""Liveness and readiness: /healthz says the process is up, /readyz that it can do its work."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import text

from ..deps import TEMPORAL_TIMEOUT_SECONDS

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _database_answers(engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(
            asyncio.to_thread(_database_answers, request.app.state.engine),
            timeout=TEMPORAL_TIMEOUT_SECONDS,
        )
        checks["database"] = "ok"
    except Exception as err:  # whatever went wrong, the answer is "not ready"
        checks["database"] = f"unavailable: {type(err).__name__}"
    try:
        await request.app.state.temporal.ping()
        checks["temporal"] = "ok"
    except Exception as err:
        checks["temporal"] = f"unavailable: {type(err.__cause__ or err).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"status": "ready" if ready else "not ready", "checks": checks},
    )
