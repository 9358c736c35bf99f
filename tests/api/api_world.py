"""The API tests' world: a Temporal stand-in that records every call, and store rows made
directly (as the workflows' activities would have written them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from handrail.store.models import OutboxMessage, Task, Transition

# For `@pytest.mark.parametrize("api_engine", ["sqlite", ON_POSTGRES], indirect=True)`.
ON_POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)

# A synthetic ED discharge notification (no real person).
NOTIFICATION = {
    "source": "emergency_department",
    "source_system": "st-elsewhere-ed",
    "encounter_id": "ENC-0001",
    "event_time": "2026-11-20T14:30:00+00:00",
    "person": {
        "identifiers": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "MRN-TEST-1"}],
        "given_name": "Alex",
        "family_name": "Testperson",
        "phone": "+447700900123",
    },
    "summary": {"risk_factors": ["recent self-harm"], "safety_plan": "Call the crisis line"},
}


class FakeHandle:
    def __init__(self, temporal: FakeTemporal, workflow_id: str) -> None:
        self.temporal = temporal
        self.workflow_id = workflow_id

    async def execute_update(self, update: str, *, args: list[Any] = (), **_: Any) -> Any:
        self.temporal.calls.append(("update", self.workflow_id, update, list(args)))
        if self.temporal.update_error is not None:
            raise self.temporal.update_error
        return self.temporal.update_result

    async def signal(self, signal: str, arg: Any = None, **_: Any) -> None:
        self.temporal.calls.append(("signal", self.workflow_id, signal, arg))
        if self.temporal.signal_error is not None:
            raise self.temporal.signal_error

    async def query(self, query: str, *_: Any, result_type: Any = None, **__: Any) -> Any:
        self.temporal.calls.append(("query", self.workflow_id, query, None))
        if self.workflow_id not in self.temporal.states:
            raise RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")
        return self.temporal.states[self.workflow_id]


class FakeServiceClient:
    def __init__(self, temporal: FakeTemporal) -> None:
        self.temporal = temporal

    async def check_health(self, **_: Any) -> bool:
        if not self.temporal.healthy:
            raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
        return True


@dataclass
class FakeTemporal:
    """Stands in for temporalio.client.Client: records starts, updates, signals and queries."""

    started: dict[str, tuple[str, Any, dict[str, Any]]] = field(default_factory=dict)
    calls: list[tuple[str, str, str, Any]] = field(default_factory=list)
    states: dict[str, Any] = field(default_factory=dict)
    update_result: Any = None
    update_error: BaseException | None = None
    signal_error: BaseException | None = None
    healthy: bool = True

    def __post_init__(self) -> None:
        self.service_client = FakeServiceClient(self)

    async def start_workflow(self, workflow: str, arg: Any, *, id: str, **options: Any) -> FakeHandle:
        if id in self.started:
            raise WorkflowAlreadyStartedError(id, workflow)
        self.started[id] = (workflow, arg, options)
        return FakeHandle(self, id)

    def get_workflow_handle(self, workflow_id: str, **_: Any) -> FakeHandle:
        return FakeHandle(self, workflow_id)


@dataclass
class World:
    """Two teams; staff in each role that the tests need, each with a bearer token."""

    engine: Any
    north_id: int
    south_id: int
    tokens: dict[str, str]
    staff_ids: dict[str, int]
    person_id: int

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def add_transition(world: World, *, transition_id: str, team_id: int, **values: Any) -> Transition:
    now = datetime.now(UTC)
    with Session(world.engine, expire_on_commit=False) as session:
        values = {"kind": "handoff", "stage": "awaiting_booking", **values}
        row = Transition(
            id=transition_id, person_id=world.person_id, team_id=team_id, policy_version="test",
            event_time=now - timedelta(hours=1), **values,
        )
        session.add(row)
        session.commit()
        return row


def add_task(world: World, *, transition_id: str, team_id: int, **values: Any) -> Task:
    with Session(world.engine, expire_on_commit=False) as session:
        task = Task(
            key=f"{transition_id}-{values.get('kind', 'book_first_contact')}-{len(values)}",
            transition_id=transition_id, workflow_id=values.pop("workflow_id", transition_id),
            kind=values.pop("kind", "book_first_contact"), title=values.pop("title", "Book first contact"),
            team_id=team_id, **values,
        )
        session.add(task)
        session.commit()
        return task


def add_outbox_message(world: World, *, transition_id: str, workflow_id: str) -> OutboxMessage:
    with Session(world.engine, expire_on_commit=False) as session:
        message = OutboxMessage(
            key=f"{workflow_id}-reminder-1", kind="sms", to="+447700900123",
            body="Reminder: your appointment with Community Mental Health Team. Reply YES.",
            person_id=world.person_id, transition_id=transition_id, workflow_id=workflow_id,
        )
        session.add(message)
        session.commit()
        return message
