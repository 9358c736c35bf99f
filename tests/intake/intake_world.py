"""The intake tests' world: fixture files, and a Temporal stand-in that behaves like the
server at the client boundary (id rules, signal-with-start, NOT_FOUND)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    # HL7 separates segments with \r: read as bytes, never as text.
    return (FIXTURES / name).read_bytes()


class FakeHandle:
    def __init__(self, temporal: FakeTemporal, workflow_id: str) -> None:
        self.temporal = temporal
        self.id = workflow_id

    async def signal(self, signal: str, arg: Any = None, **_: Any) -> None:
        await asyncio.sleep(0)  # a round trip: lets concurrent requests interleave
        if self.id not in self.temporal.running:
            raise RPCError("workflow execution not found", RPCStatusCode.NOT_FOUND, b"")
        self.temporal.signals.append((self.id, signal, arg))


@dataclass
class FakeTemporal:
    """Stands in for temporalio.client.Client with the server's id rules: one running
    workflow per id, signal-with-start signals a running one, a closed id is refused under
    REJECT_DUPLICATE, and a signal to no running workflow is NOT_FOUND."""

    running: dict[str, tuple[str, Any]] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    starts: list[tuple[str, str, Any]] = field(default_factory=list)
    signals: list[tuple[str, str, Any]] = field(default_factory=list)

    async def start_workflow(self, workflow: str, arg: Any, *, id: str, **options: Any) -> FakeHandle:
        await asyncio.sleep(0)
        start_signal = options.get("start_signal")
        rejected = options.get("id_reuse_policy") == WorkflowIDReusePolicy.REJECT_DUPLICATE
        if id in self.running and start_signal is None:
            raise WorkflowAlreadyStartedError(id, workflow)
        if id in self.closed and id not in self.running and rejected:
            raise WorkflowAlreadyStartedError(id, workflow)
        if id not in self.running:
            self.running[id] = (workflow, arg)
            self.starts.append((id, workflow, arg))
        if start_signal is not None:
            for signal_arg in options.get("start_signal_args", []):
                self.signals.append((id, start_signal, signal_arg))
        return FakeHandle(self, id)

    def get_workflow_handle(self, workflow_id: str, **_: Any) -> FakeHandle:
        return FakeHandle(self, workflow_id)

    def close(self, workflow_id: str) -> None:
        self.running.pop(workflow_id, None)
        self.closed.add(workflow_id)


@dataclass
class IntakeWorld:
    engine: Any
    tokens: dict[str, str]

    def auth(self, who: str = "crisis_worker") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}
