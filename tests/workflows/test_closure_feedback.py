"""The person's own voice at the end of the handoff, the step-up and the step-down, on the
time-skipping server: asked at closure where they consented to messages, the answer stored
against the transition, and a low score a task for the transition's owner."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from handrail.domain.contact import PersonReply
from handrail.domain.handoff import CloseTransition, ConfirmDetails
from handrail.domain.step_down import CloseStepDown
from handrail.domain.step_up import (
    ConfirmProposal,
    StepUpDecision,
    StepUpDecisionKind,
    StepUpOrigin,
    StepUpOutcome,
)
from handrail.store.models import OutboxMessage, OutreachAttempt, Person, Task
from handrail.workflows.handoff import PostCrisisHandoff
from handrail.workflows.step_down import StepDown
from handrail.workflows.step_up import StepUp
from tests.workflows.feedback import answer, feedback_row, follow_ups, questions
from tests.workflows.notifications import ed_discharge
from tests.workflows.step_downs import start_step_down
from tests.workflows.step_ups import add_person, request_step_up, transition

# (reply, rating stored, comment stored, a follow-up task for the owner?)
ANSWERS = [("2 not sure who to call", 2, "not sure who to call", True),
           ("5 - thanks, I know what's next", 5, "thanks, I know what's next", False)]
LONDON = ZoneInfo("Europe/London")
IDS = ["low-score-is-a-task", "high-score-is-not"]


def add_person_without_consent(h) -> int:
    with h.session() as session:
        person = Person(given_name="Robin", family_name="Noconsent", phone="+447700900999",
                        consent_to_messages=False)
        session.add(person)
        session.commit()
        return person.id


async def closed_handoff(h, *, consent: bool):
    """A handoff whose person confirmed (or refused) messages, closed by the supervisor."""
    handle = await h.start(ed_discharge(at=await h.now() - timedelta(hours=1)))
    await h.settle(lambda: bool(h.rows(Task, Task.transition_id == handle.id)))
    await handle.execute_update(PostCrisisHandoff.confirm_details, args=[
        ConfirmDetails(consent_to_messages=consent), h.staff.coordinator])
    await handle.execute_update(PostCrisisHandoff.close, args=[
        CloseTransition(reason="Moved out of area"), h.staff.supervisor])
    return handle


async def declined_step_up(h, person_id: int):
    handle = await request_step_up(h, person_id)
    await handle.execute_update(StepUp.decide, args=[StepUpDecision(
        decision=StepUpDecisionKind.decline, reason="Current plan adequate; review in 2 weeks"),
        h.staff.supervisor])
    return handle


async def closed_step_down(h, person_id: int):
    handle = await start_step_down(h, person_id)
    await handle.execute_update(StepDown.close, args=[
        CloseStepDown(reason="Moved away; GP informed"), h.staff.coordinator])
    return handle


def assert_answer_stored(h, handle, final, pathway: str, rating: int, comment: str,
                         low: bool, owner_id: int) -> None:
    assert final.feedback_rating == rating
    row = feedback_row(h, handle.id)
    assert (row.pathway, row.rating, row.comment) == (pathway, rating, comment)
    assert row.team_id == h.staff.team_id and row.answered_at >= row.asked_at
    [question] = questions(h, handle.id)
    assert "1 (not at all) to 5 (very)" in question.body and "Testperson" not in question.body
    tasks = follow_ups(h, handle.id)
    if low:
        [task] = tasks
        assert (task.owner_id, task.priority, task.status) == (owner_id, "urgent", "requested")
        assert f"{rating} of 5" in task.title
    else:
        assert tasks == []
    # The answer went to the question, not to the pathway's own reply handling.
    assert not [t for t in h.rows(Task, Task.transition_id == handle.id) if t.kind == "read_reply"]


def assert_nothing_asked(h, handle, final) -> None:
    assert final.feedback_rating is None and feedback_row(h, handle.id) is None
    assert questions(h, handle.id) == [] and follow_ups(h, handle.id) == []
    attempts = h.rows(OutreachAttempt, OutreachAttempt.transition_id == handle.id,
                      OutreachAttempt.step == "feedback")
    assert [a.status for a in attempts] == ["skipped_no_consent"]


# --- the warm handoff ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "rating", "comment", "low"), ANSWERS, ids=IDS)
async def test_a_closed_handoff_asks_the_person_and_a_low_score_is_a_task_for_its_coordinator(
        harness, text, rating, comment, low):
    h = harness
    handle = await closed_handoff(h, consent=True)
    final = await answer(h, handle, text)
    assert_answer_stored(h, handle, final, "handoff", rating, comment, low, h.staff.coordinator.id)
    if low:  # the patched path, replayed by test_replay.py from now on
        await h.record_history(handle.id, "handoff_closed_feedback_low")


async def test_a_closed_handoff_asks_nothing_without_consent_to_messages(harness):
    h = harness
    handle = await closed_handoff(h, consent=False)
    final = await asyncio.wait_for(handle.result(), timeout=20)  # no wait for an answer
    assert_nothing_asked(h, handle, final)
    assert h.rows(OutboxMessage, OutboxMessage.transition_id == handle.id) == []


async def test_a_question_held_for_the_morning_is_not_answered_by_a_message_sent_overnight(harness):
    h = harness
    await h.advance(timedelta(hours=12), step=timedelta(hours=6))  # 22:00, in the quiet hours
    handle = await closed_handoff(h, consent=True)
    await h.settle(lambda: transition(h, handle.id).status == "closed")
    await asyncio.sleep(0.5)
    assert questions(h, handle.id) == []  # held until 08:00

    # Sent before anyone asked them anything: a message for staff to read, not a rating.
    await handle.signal(PostCrisisHandoff.person_reply, PersonReply(
        message_id=None, text="1 can't sleep, scared", received_at=await h.now()))
    await h.settle(lambda: any(t.kind == "read_reply"
                               for t in h.rows(Task, Task.transition_id == handle.id)))

    final = await answer(h, handle, "4 better this morning")
    [question] = questions(h, handle.id)
    assert question.created_at.astimezone(LONDON).hour == 8
    assert final.feedback_rating == 4
    assert feedback_row(h, handle.id).comment == "better this morning"
    assert follow_ups(h, handle.id) == []
    await h.record_history(handle.id, "handoff_feedback_held_overnight")  # the patched opening


# --- the step-up --------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "rating", "comment", "low"), ANSWERS, ids=IDS)
async def test_a_closed_step_up_asks_the_person_and_a_low_score_is_a_task_for_its_owner(
        harness, text, rating, comment, low):
    h = harness
    handle = await declined_step_up(h, add_person(h))
    final = await answer(h, handle, text)
    owner_id = transition(h, handle.id).owner_id
    assert owner_id is not None
    assert_answer_stored(h, handle, final, "step_up", rating, comment, low, owner_id)
    if low:  # the patched path, replayed by test_replay.py from now on
        await h.record_history(handle.id, "stepup_declined_feedback_low")


async def test_a_closed_step_up_asks_nothing_without_consent_to_messages(harness):
    h = harness
    handle = await declined_step_up(h, add_person_without_consent(h))
    final = await asyncio.wait_for(handle.result(), timeout=20)
    assert_nothing_asked(h, handle, final)


async def test_a_dismissed_proposal_asks_nothing_the_person_never_took_that_step(harness):
    h = harness
    handle = await request_step_up(h, add_person(h), origin=StepUpOrigin.proposed)
    await handle.execute_update(StepUp.confirm_proposal, args=[
        ConfirmProposal(confirm=False, reason="Missed sessions explained: in hospital for surgery"),
        h.staff.clinician])
    final = await asyncio.wait_for(handle.result(), timeout=20)
    assert final.outcome == StepUpOutcome.proposal_dismissed
    assert final.feedback_rating is None and questions(h, handle.id) == []
    assert h.rows(OutreachAttempt, OutreachAttempt.transition_id == handle.id) == []


# --- the step-down taper ------------------------------------------------------------------

@pytest.mark.parametrize(("text", "rating", "comment", "low"), ANSWERS, ids=IDS)
async def test_a_closed_step_down_asks_the_person_and_a_low_score_is_a_task_for_its_monitoring_owner(
        harness, text, rating, comment, low):
    h = harness
    handle = await closed_step_down(h, add_person(h))
    final = await answer(h, handle, text)
    assert_answer_stored(h, handle, final, "step_down", rating, comment, low,
                         h.staff.care_coordinator.id)
    if low:  # the patched path, replayed by test_replay.py from now on
        await h.record_history(handle.id, "stepdown_closed_feedback_low")


async def test_a_closed_step_down_asks_nothing_without_consent_to_messages(harness):
    h = harness
    handle = await closed_step_down(h, add_person_without_consent(h))
    final = await asyncio.wait_for(handle.result(), timeout=20)
    assert_nothing_asked(h, handle, final)


async def test_no_answer_in_time_leaves_the_question_asked_and_no_task(harness):
    h = harness
    handle = await closed_step_down(h, add_person(h))
    await h.settle(lambda: bool(questions(h, handle.id)))
    await h.advance(h.policy.feedback.reply_within + timedelta(hours=1), step=timedelta(hours=6))
    final = await asyncio.wait_for(handle.result(), timeout=20)
    row = feedback_row(h, handle.id)
    assert final.feedback_rating is None and row.asked_at is not None and row.answered_at is None
    assert follow_ups(h, handle.id) == []
