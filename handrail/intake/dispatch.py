"""Apply an `IntakeEvent` to its warm handoff through Temporal: start, signal, or ignore.

What each event does:
- A03 discharge, in scope: start the handoff (`start_handoff`, idempotent by source and
  encounter); when it already exists (opened by an A04 or A01), signal the discharge to it.
- A04 ED registration, A01/A06 admission, in scope: signal-with-start, so the handoff opens and
  waits for the discharge (or holds as an inpatient stay) whether or not it exists yet.
- A02, A08, A11, A13, and out-of-scope events of any kind: a signal to the handoff of that
  encounter when one is open; otherwise acknowledged, ignored and counted.
The workflow applies each `message_id` once, so a message sent twice changes nothing.

Until `PostCrisisHandoff` has the `encounter_event` signal, only in-scope discharges act (a
start); every other event is acknowledged and counted as waiting for workflow support, so an
ED registration never starts a handoff as if the person had already left.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ..api.deps import TemporalConnection
from ..api.errors import StartRefused, TemporalUnavailable
from ..api.starting import HANDOFF_WORKFLOW, resolve_team_code, start_handoff
from ..config import Settings
from ..domain.handoff import HandoffInput
from ..domain.ids import handoff_workflow_id
from ..domain.intake import ENCOUNTER_EVENT_SIGNAL, EncounterEventKind
from ..domain.policy import Policy
from . import receipts
from .events import IntakeError, IntakeEvent

log = logging.getLogger(__name__)

OPENING_KINDS = {EncounterEventKind.ed_registration, EncounterEventKind.admission}

@lru_cache
def encounter_events_supported() -> bool:
    """Whether the deployed `PostCrisisHandoff` defines the `encounter_event` signal."""
    from temporalio import workflow

    from ..workflows.handoff import PostCrisisHandoff

    try:
        signals = workflow._Definition.must_from_class(PostCrisisHandoff).signals
    except Exception:  # noqa: BLE001 - a private API: read the attribute the decorator sets
        return callable(getattr(PostCrisisHandoff, ENCOUNTER_EVENT_SIGNAL, None))
    return ENCOUNTER_EVENT_SIGNAL in signals


class Applied(BaseModel):
    outcome: Literal["started", "existing", "signalled", "ignored"]
    transition_id: str | None = None
    reason: str = ""


async def apply_event(
    event: IntakeEvent,
    *,
    client: Client,
    settings: Settings,
    policy: Policy,
    session: Session | None = None,
) -> Applied:
    notification = event.notification
    workflow_id = handoff_workflow_id(
        key=settings.handoff_id_key(),
        source_system=notification.source_system,
        encounter_id=notification.encounter_id,
    )
    supported = encounter_events_supported()
    try:
        if event.scope.in_scope and event.kind == EncounterEventKind.discharge:
            transition_id, started = await start_handoff(
                client=client, settings=settings, policy=policy, notification=notification,
                session=session,
            )
            if started:
                applied = Applied(outcome="started", transition_id=transition_id)
            else:
                signalled = supported and await _signal(client, workflow_id, event)
                applied = Applied(outcome="existing", transition_id=transition_id,
                                  reason="" if signalled or not supported else "transition closed")
        elif not supported:
            applied = Applied(outcome="ignored", reason="encounter events await workflow support")
        elif event.scope.in_scope and event.kind in OPENING_KINDS:
            applied = await _signal_with_start(client, settings, policy, session, workflow_id, event)
        elif await _signal(client, workflow_id, event):
            applied = Applied(outcome="signalled", transition_id=workflow_id)
        elif event.scope.in_scope:
            applied = Applied(outcome="ignored", reason="no open transition for this encounter")
        else:
            applied = Applied(outcome="ignored", reason="out of scope")
    except StartRefused as err:
        raise IntakeError("AE", err.field, err.reason) from None
    except RPCError as err:
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            raise TemporalUnavailable(str(err)) from err
        raise
    log.info("intake %s %s %s: %s %s", event.format, event.trigger, event.kind.value,
             applied.outcome, applied.transition_id or applied.reason)
    return applied


async def _signal(client: Client, workflow_id: str, event: IntakeEvent) -> bool:
    """Signal the encounter's open handoff; False when there is none."""
    try:
        await client.get_workflow_handle(workflow_id).signal(
            ENCOUNTER_EVENT_SIGNAL, event.encounter_event()
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def _signal_with_start(
    client: Client, settings: Settings, policy: Policy, session: Session | None,
    workflow_id: str, event: IntakeEvent,
) -> Applied:
    team_code = resolve_team_code(notification=event.notification, policy=policy, session=session)
    handoff_input = HandoffInput(
        transition_id=workflow_id, notification=event.notification, policy=policy,
        team_code=team_code,
    )
    try:
        await client.start_workflow(
            HANDOFF_WORKFLOW,
            handoff_input,
            id=workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            start_signal=ENCOUNTER_EVENT_SIGNAL,
            start_signal_args=[event.encounter_event()],
        )
    except WorkflowAlreadyStartedError:
        # Only a closed handoff refuses a signal-with-start: this encounter is done with.
        return Applied(outcome="ignored", transition_id=workflow_id, reason="transition closed")
    return Applied(outcome="signalled", transition_id=workflow_id)


ClientSource = Callable[[], Awaitable[Client]]


async def receive_hl7(
    raw: bytes | str,
    *,
    get_client: ClientSource,
    settings: Settings,
    policy: Policy,
    session: Session,
    actor_id: int | None = None,
    source: str | None = None,
) -> str:
    """Parse, apply and answer one HL7 v2 message: AA accepted (or ignored, counted), AE
    understood but unusable, AR unreadable. Temporal is asked for only once the message is
    understood; when it is unreachable this raises `TemporalUnavailable` (HTTP 503; the MLLP
    listener answers AE so the sender resends)."""
    from .hl7 import UnsupportedMessage, build_ack, parse_adt

    try:
        event = parse_adt(raw)
    except UnsupportedMessage as unsupported:
        reason = f"{unsupported.trigger} is not acted on"
        receipts.record(session, fmt="hl7v2", outcome="ignored", reason=reason, actor_id=actor_id,
                        source=source)
        return build_ack(raw, "AA", text=reason)
    except IntakeError as err:
        receipts.record(session, fmt="hl7v2", outcome="rejected", reason=err.field,
                        actor_id=actor_id, source=source)
        return build_ack(raw, err.code, err)
    try:
        applied = await _apply_and_record(event, get_client=get_client, settings=settings,
                                          policy=policy, session=session, actor_id=actor_id,
                                          source=source)
    except IntakeError as err:
        return build_ack(raw, err.code, err)
    return build_ack(raw, "AA", text=applied.reason)


async def receive_fhir(
    body: bytes | str,
    *,
    get_client: ClientSource,
    settings: Settings,
    policy: Policy,
    session: Session,
    actor_id: int | None = None,
    source: str | None = None,
) -> tuple[IntakeEvent, Applied]:
    """Parse and apply one FHIR notification; raises `IntakeError` naming the JSON path."""
    from .fhir import parse_fhir

    try:
        event = parse_fhir(body)
    except IntakeError as err:
        receipts.record(session, fmt="fhir", outcome="rejected", reason=err.field,
                        actor_id=actor_id, source=source)
        raise
    applied = await _apply_and_record(event, get_client=get_client, settings=settings,
                                      policy=policy, session=session, actor_id=actor_id,
                                      source=source)
    return event, applied


async def _apply_and_record(event: IntakeEvent, *, get_client: ClientSource, settings: Settings,
                            policy: Policy, session: Session, actor_id: int | None,
                            source: str | None) -> Applied:
    client = await get_client()
    try:
        applied = await apply_event(event, client=client, settings=settings, policy=policy,
                                    session=session)
    except IntakeError as err:
        receipts.record(session, fmt=event.format, outcome="rejected", reason=err.field,
                        event=event, actor_id=actor_id, source=source)
        raise
    receipts.record(session, fmt=event.format, outcome=applied.outcome, reason=applied.reason,
                    event=event, actor_id=actor_id, source=source)
    return applied


def make_hl7_handler(*, settings: Settings, policy: Policy, engine: Engine,
                     temporal: TemporalConnection):
    """The MLLP listener's message handler: each message in its own store session, ACKed;
    `temporal` is the API's lazy `TemporalConnection`, so the listener outlives Temporal outages
    and answers AE (the sender resends) while Temporal is unreachable."""
    from .hl7 import build_ack

    async def handle(raw: bytes) -> str:
        with Session(engine, expire_on_commit=False) as session:
            try:
                return await receive_hl7(raw, get_client=temporal.client, settings=settings,
                                         policy=policy, session=session, source="mllp")
            except TemporalUnavailable:
                return build_ack(raw, "AE", text="workflow service unavailable; resend later")

    return handle
