"""The person's own voice at the end of any transition: the question asked, then their answer.

Shared by every pathway's closure (workflows/closure_feedback.py); registered under the name
`record_feedback`, as it was when it lived with the admission-avoidance activities.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio import activity

from ..store import records
from ..store.db import session_scope
from ..store.models import TransitionFeedback
from .contracts import FeedbackRecord


class FeedbackActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn
    def record_feedback(self, record: FeedbackRecord) -> None:
        """The question asked, then the person's answer: one row per transition."""
        with session_scope(self._engine) as session:
            row = session.exec(select(TransitionFeedback).where(
                TransitionFeedback.transition_id == record.transition_id)).first()
            row = row or TransitionFeedback(
                transition_id=record.transition_id, pathway=record.pathway, team_id=record.team_id,
                person_id=record.person_id, asked_at=record.asked_at)
            if record.answered_at is not None:
                row.rating, row.comment, row.answered_at = (record.rating, record.comment or None,
                                                            record.answered_at)
            session.add(row)
            if record.answered_at is not None:
                records.append_event(
                    session=session, key=f"{record.transition_id}:feedback:answered",
                    at=record.answered_at, action="feedback.answered",
                    transition_id=record.transition_id, person_id=record.person_id,
                    detail={"rating": record.rating})
