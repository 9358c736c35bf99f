"""The embedded channel's outbox: what Handrail 'sent', and replies typed in on the person's behalf."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from ...domain.consent import ReplyKind, classify_reply
from ...domain.policy import Policy
from ...store import queries, records
from ...store.models import OutboxMessage, Person
from ...store.types import utcnow
from ..deps import (
    PolicyDep,
    Principal,
    RowId,
    SessionDep,
    TemporalConnection,
    TemporalConnectionDep,
    require,
)
from ..replies import hand_over

router = APIRouter(prefix="/api/outbox", tags=["outbox"])


class OutboxMessagePublic(BaseModel):
    id: int
    kind: str
    to: str
    body: str
    transition_id: str | None
    created_at: datetime
    reply_text: str | None
    replied_at: datetime | None


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=1000)


@router.get("", response_model=list[OutboxMessagePublic])
def list_outbox(
    user: Annotated[Principal, Depends(require("outbox:read"))],
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[OutboxMessagePublic]:
    """Newest first, only messages of the user's teams' transitions."""
    messages = queries.list_outbox(session=session, team_ids=user.team_ids, limit=limit, offset=offset)
    return [OutboxMessagePublic(**m.model_dump()) for m in messages]


@router.post("/{message_id}/reply", response_model=OutboxMessagePublic)
async def reply(
    message_id: RowId,
    reply_in: ReplyIn,
    user: Annotated[Principal, Depends(require("outbox:reply"))],
    session: SessionDep,
    policy: PolicyDep,
    temporal: TemporalConnectionDep,
) -> OutboxMessagePublic:
    """Deliver a reply as if the person had texted it: the workflow gets `person_reply` (a task
    for a person to read it when that workflow and its pathway have ended)."""
    message = await deliver_reply(session=session, temporal=temporal, policy=policy, user=user,
                                  message_id=message_id, text=reply_in.text)
    return OutboxMessagePublic(**message.model_dump())


async def deliver_reply(
    *, session: Session, temporal: TemporalConnection, policy: Policy, user: Principal,
    message_id: int, text: str,
) -> OutboxMessage:
    """A reply typed into the outbox, for the API and the console alike."""
    message = queries.get_outbox_message(session=session, message_id=message_id, team_ids=user.team_ids)
    if message is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="message not found")
    if message.replied_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="this message already has a reply")
    received_at = utcnow()
    person = session.get(Person, message.person_id)
    answer = classify_reply(text, opted_out=person.opted_out_at is not None)
    if answer.kind in (ReplyKind.opt_out, ReplyKind.opt_in):
        # Typed STOP or START: the same consent record a text to Twilio would make.
        records.record_opt_change(session=session, people=[person],
                                  opt_out=answer.kind == ReplyKind.opt_out, keyword=answer.keyword or "",
                                  channel="outbox", source="outbox", key=f"outbox:{message_id}",
                                  at=received_at)
        message.reply_text = text
        message.replied_at = received_at
        session.add(message)
        session.commit()
        return message
    # As a text to Twilio would be: kept, then told to the workflow that sent the message or
    # its pathway, and a task for a person to read it when both have ended.
    kept = await hand_over(session=session, temporal=temporal, policy=policy, key=f"outbox:{message_id}",
                           person_id=message.person_id, transition_id=message.transition_id,
                           workflow_ids=[message.workflow_id, *filter(None, [message.transition_id])],
                           channel="outbox", text=text, message_id=message_id)
    message.reply_text = text
    message.replied_at = kept.received_at
    session.add(message)
    session.commit()
    return message
