"""The person's own voice at closure: one question (how confident they feel about what happens
next, 1–5, with any comment), asked only where they consented to messages (the send checks),
the answer stored against the transition, and a low score a task for the owner.

Used by a pathway's workflow after it has closed its transition: the workflow lingers for the
policy's `reply_within` so that the answer, which arrives as its `person_reply` signal, has a
workflow to reach. `offer` is what that signal calls while the question is open: from the
moment it goes out (not while it waits for the morning) until the answer or `reply_within`.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ..activities.contracts import FeedbackRecord, SendChannel, SendStatus, SendToPerson
    from ..activities.feedback import FeedbackActivities
    from ..domain.consent import ReplyKind, classify_reply
    from ..domain.feedback import is_low_score, read_feedback
    from ..domain.messaging import render
    from ..domain.policy import Policy
    from ..domain.tasks import Role, TaskKind
    from .common import STORE, open_task, send_to_person, wait_until

_CONSENT_KEYWORDS = (ReplyKind.help, ReplyKind.opt_in, ReplyKind.opt_out)
# The question is open from the moment it goes out, not from the closure: a closure in the
# evening sends it in the morning, and a message the person sends overnight is theirs to be
# read by staff, not an answer to a question they have not been asked. Replay keeps the old
# opening for runs that began before.
OPEN_WHEN_SENT = "feedback-open-when-sent"


class ClosureFeedback:
    def __init__(self) -> None:
        self.asking = False
        self._replies: list[str] = []

    def offer(self, text: str) -> bool:
        """Take a reply as feedback if the question is open (True), else leave it (False).
        Consent keywords (STOP, HELP) are the messaging layer's, never an answer."""
        if not self.asking or classify_reply(text, opted_out=False).kind in _CONSENT_KEYWORDS:
            return False
        self._replies.append(text)
        return True

    def _open(self, going_out: bool) -> None:
        self.asking = going_out

    def _rated(self) -> bool:
        return any(read_feedback(text).rating is not None for text in self._replies)

    async def ask(self, *, policy: Policy, pathway: str, transition_id: str, person_id: int,
                  team_id: int, owner_id: int | None, time_zone: str,
                  open_tasks: dict[int, str]) -> int | None:
        """Ask, wait for the answer, store it; the rating, or None when none came."""
        feedback = policy.feedback
        if feedback is None:
            return None
        asked_at = workflow.now()
        record = FeedbackRecord(transition_id=transition_id, pathway=pathway, team_id=team_id,
                                person_id=person_id, asked_at=asked_at)
        open_when_sent = workflow.patched(OPEN_WHEN_SENT)
        if not open_when_sent:
            self.asking = True
        sent = await send_to_person(
            SendToPerson(key=f"{transition_id}:feedback", transition_id=transition_id,
                         contact_id=None, workflow_id=workflow.info().workflow_id,
                         person_id=person_id, channel=SendChannel.sms, step="feedback",
                         body=render(feedback.question, service=policy.service_name,
                                     phone=policy.service_phone, at=None, time_zone=time_zone),
                         at=asked_at, frequency_cap=policy.messaging.frequency_cap),
            time_zone=time_zone, quiet_hours=policy.quiet_hours, interrupted=lambda: False,
            deadline=asked_at + feedback.reply_within, sending=self._open if open_when_sent else None)
        if sent is None or sent.status != SendStatus.sent:
            self.asking = False  # no consent, opted out, no number: nothing is asked
            return None
        await workflow.execute_activity_method(FeedbackActivities.record_feedback, record, **STORE)
        await wait_until(self._rated, asked_at + feedback.reply_within)
        self.asking = False
        if not self._replies:
            return None
        answers = [read_feedback(text) for text in self._replies]
        rating = next((a.rating for a in answers if a.rating is not None), None)
        comment = " / ".join(a.comment for a in answers if a.comment)
        await workflow.execute_activity_method(
            FeedbackActivities.record_feedback,
            record.model_copy(update={"rating": rating, "comment": comment,
                                      "answered_at": workflow.now()}), **STORE)
        if is_low_score(rating, feedback.low_score_at_or_below):
            await open_task(
                open_tasks, key=f"{transition_id}:feedback-follow-up", transition_id=transition_id,
                team_id=team_id, kind=TaskKind.feedback_follow_up,
                title=f"The person rated their confidence in what happens next {rating} of 5: "
                      "call them", due=workflow.now() + feedback.follow_up_due,
                owner_id=owner_id, role=None if owner_id else Role.clinician, priority="urgent")
        return rating
