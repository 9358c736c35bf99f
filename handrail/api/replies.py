"""A message from the person, from any channel (Twilio SMS, a key pressed on a reminder call,
a reply typed into the outbox): stored first, then signalled to the workflow that listens, and
a task for a person to read when none does (store/inbound.py)."""

from __future__ import annotations

import logging

from fastapi import HTTPException, status
from sqlmodel import Session
from temporalio.service import RPCError, RPCStatusCode

from ..domain.contact import PersonReply
from ..domain.policy import Policy
from ..store import inbound
from ..store.models import InboundMessage
from ..store.types import utcnow
from .deps import TemporalConnection
from .errors import TemporalUnavailable

log = logging.getLogger(__name__)


async def signal_first_running(temporal: TemporalConnection, workflow_ids: list[str], name: str,
                               arg) -> str | None:
    """Signal the first of `workflow_ids` that is still running (a contact routine may have
    ended; its pathway still listens) and return its id; None when none is; 503 when Temporal
    is away."""
    try:
        client = await temporal.client()
    except TemporalUnavailable as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="Temporal unavailable") from err
    for workflow_id in dict.fromkeys(workflow_ids):
        try:
            await client.get_workflow_handle(workflow_id).signal(name, arg)
            return workflow_id
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                    detail="Temporal refused the signal") from err
    log.info("%s for %s not delivered: no running workflow", name, workflow_ids[0])
    return None


async def hand_over(*, session: Session, temporal: TemporalConnection, policy: Policy, key: str,
                    person_id: int, transition_id: str | None, workflow_ids: list[str],
                    channel: str, text: str, message_id: int | None) -> InboundMessage:
    """Store the message (once per `key`), then tell the first running workflow of
    `workflow_ids` as `person_reply`. Heard by none: an urgent task to read it. Temporal away:
    the task too, so a person reads it meanwhile, and 503 so the sender tries again."""
    message = inbound.record_message(session=session, key=key, person_id=person_id,
                                     transition_id=transition_id, channel=channel, body=text,
                                     at=utcnow())
    session.commit()
    if message.heard_by is not None:
        return message  # a repeat of a message a workflow already has
    due_within = policy.messaging.unheard_reply_due
    reply = PersonReply(message_id=message_id, text=text, received_at=message.received_at)
    try:
        heard = (await signal_first_running(temporal, workflow_ids, "person_reply", reply)
                 if workflow_ids else None)
    except HTTPException:
        inbound.task_for_unheard(session=session, message=message, at=utcnow(), due_within=due_within)
        session.commit()
        raise
    if heard is not None:
        inbound.mark_heard(session=session, message=message, workflow_id=heard)
    else:
        inbound.task_for_unheard(session=session, message=message, at=utcnow(), due_within=due_within)
    session.commit()
    return message
