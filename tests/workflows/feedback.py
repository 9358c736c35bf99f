"""Helpers for the question every pathway asks at its closure (workflows/closure_feedback.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import WorkflowHandle

from handrail.domain.contact import PersonReply
from handrail.store.models import OutboxMessage, Task, Transition, TransitionFeedback


def questions(h, transition_id: str) -> list[OutboxMessage]:
    return [m for m in h.rows(OutboxMessage, OutboxMessage.workflow_id == transition_id)
            if "how confident" in m.body]


def feedback_row(h, transition_id: str) -> TransitionFeedback | None:
    rows = h.rows(TransitionFeedback, TransitionFeedback.transition_id == transition_id)
    return rows[0] if rows else None


def follow_ups(h, transition_id: str) -> list[Task]:
    return [t for t in h.rows(Task, Task.transition_id == transition_id)
            if t.kind == "feedback_follow_up"]


async def asked(h, handle: WorkflowHandle) -> OutboxMessage:
    """The closure question, once it is in the outbox and recorded as asked. Time moves on a
    little if it must: a question right after a check-in waits out the frequency cap's gap,
    and one at night waits for the morning."""
    await h.settle(lambda: h.rows(Transition, Transition.id == handle.id)[0].status == "closed")
    for _ in range(20):  # asked at once, unless a wait holds it
        if questions(h, handle.id):
            break
        await asyncio.sleep(0.05)
    if not questions(h, handle.id):
        await h.advance(timedelta(hours=12), step=timedelta(minutes=30),
                        until=lambda: bool(questions(h, handle.id)))
    await h.settle(lambda: bool(questions(h, handle.id)) and feedback_row(h, handle.id) is not None)
    [question] = questions(h, handle.id)
    return question


async def answer(h, handle: WorkflowHandle, text: str):
    """Reply to the closure question (as the SMS webhook would) and return the final state."""
    question = await asked(h, handle)
    await handle.signal("person_reply", PersonReply(message_id=question.id, text=text,
                                                    received_at=await h.now()))
    return await asyncio.wait_for(handle.result(), timeout=20)
