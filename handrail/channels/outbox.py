"""The embedded channel: messages land in the outbox table, visible in the console."""

from __future__ import annotations

from sqlmodel import Session, select

from ..store.models import OutboxMessage
from .base import OutboundMessage, Receipt


class OutboxChannel:
    name = "outbox"

    def send(self, message: OutboundMessage, *, session: Session) -> Receipt:
        existing = session.exec(select(OutboxMessage).where(OutboxMessage.key == message.key)).first()
        if existing is None:
            existing = OutboxMessage(
                key=message.key,
                kind=message.kind.value,
                to=message.to,
                body=message.body,
                person_id=message.person_id,
                transition_id=message.transition_id,
                workflow_id=message.workflow_id,
            )
            if message.at is not None:
                existing.created_at = message.at
            session.add(existing)
            session.flush()
        return Receipt(provider=self.name, provider_ref=str(existing.id), status="sent")
