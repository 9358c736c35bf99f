"""What a person sends us, kept before any workflow is told, and a task when none hears it.

A text can arrive after every workflow that reached out to the person has ended: weeks after a
handoff closed, "I'm not safe again" must still reach a person. So the message is stored first
(idempotent on the provider's id, so a retried webhook stores nothing twice), then signalled;
if no running workflow took it, it becomes an urgent `read_reply` task for the owner of the
transition it belongs to, completed in the store since no workflow waits on it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from ..domain.tasks import TaskKind
from .models import InboundMessage, Task, Transition
from .records import append_event, open_unwatched_task

UNHEARD_TITLE = "The person sent a message no running pathway heard: read it and respond"


def record_message(*, session: Session, key: str, person_id: int, transition_id: str | None,
                   channel: str, body: str, at: datetime) -> InboundMessage:
    """The message, stored once per `key` (a repeat returns the row already there)."""
    existing = session.exec(select(InboundMessage).where(InboundMessage.key == key)).first()
    if existing is not None:
        return existing
    message = InboundMessage(key=key, person_id=person_id, transition_id=transition_id,
                             channel=channel, body=body, received_at=at)
    session.add(message)
    session.flush()
    append_event(session=session, key=f"inbound:{key}", at=at, action="person.message_received",
                 transition_id=transition_id, person_id=person_id,
                 detail={"message_id": message.id, "channel": channel})  # never the text
    return message


def mark_heard(*, session: Session, message: InboundMessage, workflow_id: str) -> None:
    message.heard_by = workflow_id
    session.add(message)


def task_for_unheard(*, session: Session, message: InboundMessage, at: datetime,
                     due_within: timedelta) -> Task | None:
    """An urgent task to read the message, due `due_within` after it arrived, for the owner of
    its transition (or the team's unowned queue); the same task however often it is asked for.
    None without a transition."""
    if message.task_id is not None:
        return session.get(Task, message.task_id)
    transition = session.get(Transition, message.transition_id) if message.transition_id else None
    if transition is None:
        return None
    task = open_unwatched_task(session=session, key=f"inbound:{message.id}:read", transition=transition,
                               kind=TaskKind.read_reply, title=UNHEARD_TITLE, at=at,
                               due_at=message.received_at + due_within)
    message.task_id = task.id
    session.add(message)
    append_event(session=session, key=f"inbound:{message.id}:unheard", at=at,
                 action="person.message_unheard", transition_id=transition.id,
                 person_id=message.person_id,
                 detail={"message_id": message.id, "task_id": task.id, "kind": task.kind})
    return task

