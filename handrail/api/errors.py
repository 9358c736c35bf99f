"""How failures become HTTP answers: bad input is a 422 naming the field, never a 500, and a
workflow's refusal keeps its reason."""

from __future__ import annotations

from typing import Any, NoReturn

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

# The workflows' refusal types (validators raise ApplicationError with one of these `type`s).
REFUSAL_STATUS = {
    "StageConflict": status.HTTP_409_CONFLICT,
    "InvalidAction": status.HTTP_422_UNPROCESSABLE_CONTENT,
    "Forbidden": status.HTTP_403_FORBIDDEN,
}


class StartRefused(Exception):
    """A notification that is well formed but cannot start a transition (e.g. an unknown team).

    Raised by `starting.start_handoff`, so an HL7 or FHIR intake can turn it into its own
    error answer; the API answers 422 naming `field`."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class TemporalUnavailable(Exception):
    """Temporal could not be reached; the API answers 503 and retries on the next request."""


def validation_errors(err: ValidationError, *, prefix: tuple[str | int, ...] = ("body",)) -> list:
    """Pydantic's errors in FastAPI's shape (`loc`, `msg`, `type`), located under `prefix`."""
    return [
        {"type": e["type"], "loc": [*prefix, *e["loc"]], "msg": e["msg"], "input": e.get("input")}
        for e in err.errors(include_url=False, include_context=False)
    ]


def raise_validation(err: ValidationError, *, prefix: tuple[str | int, ...] = ("body",)) -> NoReturn:
    raise RequestValidationError(validation_errors(err, prefix=prefix)) from None


def raise_for_workflow_error(err: Exception, *, closed_if_missing: bool) -> NoReturn:
    """Turn what a workflow update or signal raised into the HTTP answer the caller deserves."""
    if isinstance(err, WorkflowUpdateFailedError):
        cause = err.cause
        while cause is not None and not isinstance(cause, ApplicationError):
            cause = cause.__cause__
        if isinstance(cause, ApplicationError) and cause.type in REFUSAL_STATUS:
            raise HTTPException(REFUSAL_STATUS[cause.type], detail=cause.message) from None
        raise HTTPException(status.HTTP_409_CONFLICT, detail="the workflow refused the action") from None
    if isinstance(err, WorkflowUpdateRPCTimeoutOrCancelledError):
        raise HTTPException(
            status.HTTP_504_GATEWAY_TIMEOUT, detail="the workflow did not answer in time; try again"
        ) from None
    if isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND:
        if closed_if_missing:
            raise HTTPException(status.HTTP_409_CONFLICT, detail="the transition is closed") from None
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="transition not found") from None
    if isinstance(err, RPCError) and err.status in (
        RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED,
    ):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="Temporal is not reachable") from None
    raise err


def install(app: FastAPI) -> None:
    @app.exception_handler(ValidationError)
    async def _pydantic_validation(_request: Request, err: ValidationError) -> JSONResponse:
        # A model validated inside a route (not by FastAPI) is still the caller's bad input.
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": jsonable_encoder(validation_errors(err, prefix=()))},
        )

    @app.exception_handler(StartRefused)
    async def _start_refused(_request: Request, err: StartRefused) -> JSONResponse:
        detail: list[dict[str, Any]] = [
            {"type": "value_error", "loc": ["body", err.field], "msg": err.reason}
        ]
        return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail})

    @app.exception_handler(TemporalUnavailable)
    async def _temporal_unavailable(_request: Request, _err: TemporalUnavailable) -> JSONResponse:
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            content={"detail": "Temporal is not reachable; try again shortly"},
            headers={"Retry-After": "5"},
        )


__all__ = [
    "StartRefused", "TemporalUnavailable", "install", "raise_for_workflow_error",
    "raise_validation", "validation_errors",
]
