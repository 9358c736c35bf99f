"""How a message reaches a person: one interface, an implementation per provider."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlmodel import Session


class ChannelKind(StrEnum):
    sms = "sms"
    call = "call"


@dataclass(frozen=True)
class OutboundMessage:
    key: str  # idempotency key: the same key never sends twice
    kind: ChannelKind
    to: str
    body: str
    person_id: int
    transition_id: str | None
    workflow_id: str
    at: datetime | None = None  # when the workflow asked for it


@dataclass(frozen=True)
class Receipt:
    provider: str  # outbox | twilio
    provider_ref: str  # outbox message id or Twilio SID
    status: str  # queued | sent


class PermanentDeliveryError(Exception):
    """Retrying cannot help: an invalid or non-mobile number, an opted-out recipient."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Channel(Protocol):
    name: str

    def send(self, message: OutboundMessage, *, session: Session) -> Receipt:
        """Send once per key; a repeat with the same key returns the first receipt."""
        ...
