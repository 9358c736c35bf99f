"""Admission avoidance on the time-skipping server: the senior decision with its thresholds and
dissent, the ladder, thresholds crossed, carers kept informed, and the person's feedback."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from handrail.channels.base import PermanentDeliveryError
from handrail.channels.outbox import OutboxChannel
from handrail.domain.admission_avoidance import (
    AvoidanceDecision,
    AvoidanceDecisionKind,
    AvoidanceOutcome,
    AvoidanceReview,
    AvoidanceReviewKind,
    AvoidanceStage,
    Dissent,
    RiskReport,
    WithdrawCarerConsent,
)
from handrail.domain.contact import ContactOutcome, DeliveryFailure, OutcomeReport, PersonReply
from handrail.store.models import (
    AuditEvent,
    AvoidanceEpisode,
    Carer,
    Decision,
    OutboxMessage,
    OutreachAttempt,
    Person,
    Task,
    TransitionFeedback,
)
from handrail.workflows.admission_avoidance import AdmissionAvoidance
from tests.workflows.avoidances import (
    CARER_PHONE,
    add_person,
    approval,
    carer,
    carer_attempts,
    open_episode,
    to_carer,
)
from tests.workflows.step_ups import add_on_call_senior, open_tasks, refusal, transition

HOUR = timedelta(hours=1)


async def finished(h, handle):
    """Closed, then the feedback question's wait runs out (the policy's three days)."""
    await h.advance(timedelta(days=4), step=6 * HOUR,
                    until=lambda: transition(h, handle.id).status == "closed")
    await h.advance(timedelta(days=3, hours=6), step=6 * HOUR)
    return await asyncio.wait_for(handle.result(), timeout=20)


def episode(h, transition_id: str) -> AvoidanceEpisode:
    return h.rows(AvoidanceEpisode, AvoidanceEpisode.transition_id == transition_id)[0]


async def test_an_episode_approved_by_a_clinical_lead_ends_admission_avoided_with_its_length(harness):
    h = harness
    handle = await open_episode(h, add_person(h))
    [asked] = open_tasks(h, handle.id, "avoidance_decision")
    assert asked.owner_id == h.staff.clinical_lead.id and asked.priority == "urgent"
    assert transition(h, handle.id).kind == "admission_avoidance"
    assert handle.id.startswith("avoid-")

    # Misses are not this test's subject: the lead documents a generous threshold for them.
    state = await handle.execute_update(AdmissionAvoidance.decide, args=[
        approval(h, missed_in_a_row=10), h.staff.clinical_lead])
    assert state.stage == AvoidanceStage.intensive and state.owner_id == h.staff.clinician.id
    [decision] = h.rows(Decision, Decision.transition_id == handle.id)
    assert (decision.kind, decision.decision, decision.decided_by_id) == (
        "admission_avoidance", "approve", h.staff.clinical_lead.id)
    assert decision.reason.startswith("Safe at home")
    assert decision.detail["thresholds"]["risk_rating_at_or_above"] == 7
    assert episode(h, handle.id).decided_by_id == h.staff.clinical_lead.id

    # The first home contact within six hours (the policy), chased by the contact routine.
    await h.advance(6 * HOUR, step=HOUR, until=lambda: bool(transition(h, handle.id).stage and
                                                            state.contact_ids))
    await h.settle(lambda: (h.rows(AvoidanceEpisode, AvoidanceEpisode.transition_id == handle.id)
                            [0].started_at is not None))
    status = await handle.query(AdmissionAvoidance.status)
    assert status.contact_ids and status.contact_ids[0] == f"{handle.id}.c1"

    # The senior review after 48 hours: end, the admission was avoided.
    await h.advance(timedelta(days=2), step=HOUR,
                    until=lambda: bool(open_tasks(h, handle.id, "avoidance_review")))
    await h.settle(lambda: bool(open_tasks(h, handle.id, "avoidance_review")))
    await handle.execute_update(AdmissionAvoidance.review, args=[
        AvoidanceReview(decision=AvoidanceReviewKind.end, reason="Settled; back to usual care"),
        h.staff.clinical_lead])
    final = await finished(h, handle)
    assert final.outcome == AvoidanceOutcome.admission_avoided
    row = episode(h, handle.id)
    assert row.outcome == "admission_avoided" and row.outcome_reason == "Settled; back to usual care"
    assert timedelta(days=2) <= timedelta(seconds=row.episode_seconds) < timedelta(days=3)
    assert transition(h, handle.id).outcome == "admission_avoided"
    assert not open_tasks(h, handle.id, "avoidance_review")


async def test_a_decision_records_dissent_and_who_resolved_it_and_refuses_what_it_must(harness):
    h = harness
    handle = await open_episode(h, add_person(h))
    refused = await refusal(handle, AdmissionAvoidance.decide, approval(h), h.staff.clinician)
    assert refused.type == "Forbidden"
    unresolved = approval(h, dissent=[Dissent(staff_id=h.staff.supervisor.id, name="Test supervisor",
                                              view="Admit: two attempts this month")])
    refused = await refusal(handle, AdmissionAvoidance.decide, unresolved, h.staff.clinical_lead)
    assert refused.type == "InvalidAction" and "Test supervisor" in str(refused)

    resolved = approval(h, dissent=[Dissent(
        staff_id=h.staff.supervisor.id, name="Test supervisor", view="Admit: two attempts this month",
        resolution="Agreed on condition of twice-daily contact for the first 72 hours")])
    await handle.execute_update(AdmissionAvoidance.decide, args=[resolved, h.staff.clinical_lead])
    [decision] = h.rows(Decision, Decision.transition_id == handle.id)
    [dissent] = decision.detail["dissent"]
    assert dissent["staff_id"] == h.staff.supervisor.id and dissent["view"].startswith("Admit")
    assert dissent["resolution"].startswith("Agreed on condition")
    assert episode(h, handle.id).dissent == decision.detail["dissent"]
    again = await refusal(handle, AdmissionAvoidance.decide, approval(h), h.staff.clinical_lead)
    assert again.type == "StageConflict"


async def test_a_threshold_crossed_escalates_at_once_to_the_senior_on_call_and_ends_admitted(harness):
    h = harness
    on_call = add_on_call_senior(h)
    handle = await open_episode(h, add_person(h))
    await handle.execute_update(AdmissionAvoidance.decide, args=[approval(h), h.staff.clinical_lead])

    state = await handle.execute_update(AdmissionAvoidance.report_risk, args=[
        RiskReport(rating=8, note="Plans, means, and stopped eating"), h.staff.clinician])
    assert state.crossings == ["risk rating 8 at or above 7"]
    await h.settle(lambda: bool(open_tasks(h, handle.id, "avoidance_threshold")))
    [urgent] = open_tasks(h, handle.id, "avoidance_threshold")
    assert urgent.owner_id == on_call.id and urgent.priority == "urgent"
    refused = await refusal(handle, AdmissionAvoidance.review, AvoidanceReview(
        decision=AvoidanceReviewKind.end, reason="x"), on_call)
    assert refused.type == "InvalidAction"  # continue or admit, nothing else

    await handle.execute_update(AdmissionAvoidance.review, args=[AvoidanceReview(
        decision=AvoidanceReviewKind.admit, reason="Risk above the documented threshold"), on_call])
    final = await finished(h, handle)
    assert final.outcome == AvoidanceOutcome.admitted
    row = episode(h, handle.id)
    assert (row.outcome, row.outcome_reason) == ("admitted", "Risk above the documented threshold")
    kinds = [d.kind for d in h.rows(Decision, Decision.transition_id == handle.id)]
    assert kinds == ["admission_avoidance", "admission_avoidance_threshold"]


async def test_two_missed_contacts_in_a_row_cross_the_threshold(harness):
    h = harness
    add_on_call_senior(h)
    handle = await open_episode(h, add_person(h))
    await handle.execute_update(AdmissionAvoidance.decide, args=[approval(h), h.staff.clinical_lead])
    for sequence in (1, 2):
        await h.advance(timedelta(days=1), step=HOUR,
                        until=lambda n=sequence: len(h.rows(Task, Task.transition_id == handle.id)) > 0
                        and (handle.id + f".c{n}") in [t.workflow_id for t in h.rows(Task)])
        status = await handle.query(AdmissionAvoidance.status)
        if status.active_contact_id:
            await handle.execute_update(AdmissionAvoidance.record_contact, args=[
                OutcomeReport(outcome=ContactOutcome.missed, note="not home"), h.staff.clinician])
    await h.settle(lambda: bool(open_tasks(h, handle.id, "avoidance_threshold")))
    status = await handle.query(AdmissionAvoidance.status)
    assert status.missed_in_a_row == 2 and status.crossings == ["2 missed contacts in a row"]


async def test_no_senior_decision_in_time_climbs_the_ladder(harness):
    h = harness
    on_call = add_on_call_senior(h)
    handle = await open_episode(h, add_person(h))
    await h.advance(2 * HOUR + 10 * timedelta(minutes=1), step=timedelta(minutes=30))
    await h.settle(lambda: bool(open_tasks(h, handle.id, "avoidance_escalation")))
    [first] = open_tasks(h, handle.id, "avoidance_escalation")
    assert first.owner_id == on_call.id and first.priority == "urgent"
    await h.advance(HOUR, step=timedelta(minutes=30))
    await h.settle(lambda: len(open_tasks(h, handle.id, "avoidance_escalation")) == 2)
    status = await handle.query(AdmissionAvoidance.status)
    assert [(e.level, e.role) for e in status.escalations] == [(1, "on_call_senior"), (2, "clinical_lead")]

    await handle.execute_update(AdmissionAvoidance.decide, args=[approval(h), on_call])
    await h.settle(lambda: not open_tasks(h, handle.id, "avoidance_escalation"))
    assert not open_tasks(h, handle.id, "avoidance_decision")
    assert episode(h, handle.id).escalation_level == 2


async def test_carer_updates_go_only_with_consent_and_stop_when_it_is_withdrawn(harness):
    h = harness
    person_id = add_person(h)
    handle = await open_episode(h, person_id)
    await handle.execute_update(AdmissionAvoidance.record_carer, args=[carer(False), h.staff.clinician])
    await handle.execute_update(AdmissionAvoidance.decide, args=[approval(h, missed_in_a_row=10),
                                                                 h.staff.clinical_lead])
    await h.settle(lambda: bool(carer_attempts(h, handle.id)))
    assert carer_attempts(h, handle.id) == [("carer-episode_started-1", "skipped_no_consent")]
    assert to_carer(h) == []

    # With consent: a missed visit being followed up reaches the carer, minimum necessary.
    await handle.execute_update(AdmissionAvoidance.record_carer, args=[carer(True), h.staff.clinician])
    [row] = h.rows(Carer, Carer.person_id == person_id)
    assert row.consent_given and row.consent_source == "verbal, at the assessment"
    await h.advance(6 * HOUR, step=HOUR)
    await h.settle(lambda: (handle.id + ".c1") in [t.workflow_id for t in h.rows(Task)] or True)
    await handle.execute_update(AdmissionAvoidance.record_contact, args=[
        OutcomeReport(outcome=ContactOutcome.missed, note="no answer at the door"), h.staff.clinician])
    await h.settle(lambda: len(to_carer(h)) == 1)
    [update] = to_carer(h)
    assert "following it up" in update.body and "Athomeperson" not in update.body

    # Withdrawn: nothing more, not even the end of the episode.
    await handle.execute_update(AdmissionAvoidance.withdraw_carer_consent, args=[
        WithdrawCarerConsent(note="asked us to stop"), h.staff.clinician])
    assert h.rows(Carer, Carer.person_id == person_id)[0].consent_withdrawn_at is not None
    await h.advance(timedelta(days=2), step=HOUR,
                    until=lambda: bool(open_tasks(h, handle.id, "avoidance_review")))
    await h.settle(lambda: bool(open_tasks(h, handle.id, "avoidance_review")))
    await handle.execute_update(AdmissionAvoidance.review, args=[
        AvoidanceReview(decision=AvoidanceReviewKind.end, reason="Settled"), h.staff.clinical_lead])
    await h.settle(lambda: any(step.startswith("carer-episode_ended") and status == "skipped_no_consent"
                               for step, status in carer_attempts(h, handle.id)))
    assert len(to_carer(h)) == 1


async def test_feedback_is_asked_at_closure_and_a_low_score_is_a_task_for_the_owner(harness):
    h = harness
    on_call = add_on_call_senior(h)
    handle = await open_episode(h, add_person(h))
    await handle.execute_update(AdmissionAvoidance.decide, args=[AvoidanceDecision(
        decision=AvoidanceDecisionKind.admit, rationale="Not safe at home tonight"), on_call])
    await h.settle(lambda: bool(h.rows(TransitionFeedback, TransitionFeedback.transition_id == handle.id)))
    [question] = [m for m in h.rows(OutboxMessage, OutboxMessage.transition_id == handle.id)]
    assert "how confident" in question.body
    assert transition(h, handle.id).status == "closed"

    await handle.signal(AdmissionAvoidance.person_reply, PersonReply(
        message_id=question.id, text="2 not sure who to call", received_at=await h.now()))
    final = await asyncio.wait_for(handle.result(), timeout=20)
    assert final.outcome == AvoidanceOutcome.admitted and final.feedback_rating == 2
    [feedback] = h.rows(TransitionFeedback, TransitionFeedback.transition_id == handle.id)
    assert (feedback.pathway, feedback.rating, feedback.comment) == (
        "admission_avoidance", 2, "not sure who to call")
    [follow_up] = open_tasks(h, handle.id, "feedback_follow_up")
    assert follow_up.owner_id == h.staff.clinician.id


async def test_no_feedback_is_asked_without_consent_to_messages(harness):
    h = harness
    on_call = add_on_call_senior(h)
    handle = await open_episode(h, add_person(h, consent=False))
    await handle.execute_update(AdmissionAvoidance.decide, args=[AvoidanceDecision(
        decision=AvoidanceDecisionKind.admit, rationale="Not safe at home tonight"), on_call])
    final = await asyncio.wait_for(handle.result(), timeout=20)
    assert final.feedback_rating is None
    assert h.rows(OutboxMessage, OutboxMessage.transition_id == handle.id) == []


# --- a carer's STOP: Twilio's 21610 withdraws the consent to carer updates -----------------

def carer_row(h, person_id: int) -> Carer:
    return h.rows(Carer, Carer.person_id == person_id)[0]


def withdrawals(h, transition_id: str) -> list[AuditEvent]:
    return h.rows(AuditEvent, AuditEvent.transition_id == transition_id,
                  AuditEvent.action == "carer.consent_withdrawn")


async def ended_by_a_threshold(h, handle, on_call) -> None:
    await handle.execute_update(AdmissionAvoidance.report_risk, args=[
        RiskReport(rating=8, note="Plans and means"), h.staff.clinician])
    await h.settle(lambda: bool(open_tasks(h, handle.id, "avoidance_threshold")))
    await handle.execute_update(AdmissionAvoidance.review, args=[AvoidanceReview(
        decision=AvoidanceReviewKind.admit, reason="Risk above the documented threshold"), on_call])


async def test_a_carer_who_texted_stop_has_consent_withdrawn_and_hears_nothing_more(harness, monkeypatch):
    h = harness
    on_call = add_on_call_senior(h)
    person_id = add_person(h)
    handle = await open_episode(h, person_id)
    await handle.execute_update(AdmissionAvoidance.record_carer, args=[carer(True), h.staff.clinician])
    send = OutboxChannel.send

    def twilio_refuses_the_carer(channel, message, *, session):
        if message.to == CARER_PHONE:  # as TwilioChannel raises for an unsubscribed recipient
            raise PermanentDeliveryError("21610", "Twilio error 21610")
        return send(channel, message, session=session)

    monkeypatch.setattr(OutboxChannel, "send", twilio_refuses_the_carer)
    await handle.execute_update(AdmissionAvoidance.decide, args=[approval(h), h.staff.clinical_lead])
    await h.settle(lambda: bool(withdrawals(h, handle.id)))
    assert carer_attempts(h, handle.id) == [("carer-episode_started-1", "failed_permanently")]
    [withdrawn] = withdrawals(h, handle.id)
    assert withdrawn.detail == {"source": "twilio-21610"} and withdrawn.actor_id is None
    row = carer_row(h, person_id)
    assert row.consent_withdrawn_at is not None and not row.consent_given
    # The carer's STOP is not the person's: their own messages still go.
    assert h.rows(Person, Person.id == person_id)[0].opted_out_at is None

    await ended_by_a_threshold(h, handle, on_call)
    await h.settle(lambda: any(step.startswith("carer-episode_ended") and status == "skipped_no_consent"
                               for step, status in carer_attempts(h, handle.id)))
    assert to_carer(h) == []


async def test_a_carer_update_that_bounces_later_with_21610_withdraws_the_consent(harness):
    h = harness
    on_call = add_on_call_senior(h)
    person_id = add_person(h)
    handle = await open_episode(h, person_id)
    await handle.execute_update(AdmissionAvoidance.record_carer, args=[carer(True), h.staff.clinician])
    await handle.execute_update(AdmissionAvoidance.decide, args=[approval(h), h.staff.clinical_lead])
    await h.settle(lambda: len(to_carer(h)) == 1)
    [attempt] = [a for a in h.rows(OutreachAttempt, OutreachAttempt.transition_id == handle.id)
                 if a.step.startswith("carer-")]
    # The status callback's failure, as the Twilio webhook signals it.
    await handle.signal(AdmissionAvoidance.delivery_failed, DeliveryFailure(
        message_id=attempt.id, error_code="21610"))
    await h.settle(lambda: bool(withdrawals(h, handle.id)))
    assert carer_row(h, person_id).consent_withdrawn_at is not None

    await ended_by_a_threshold(h, handle, on_call)
    await h.settle(lambda: any(step.startswith("carer-episode_ended") and status == "skipped_no_consent"
                               for step, status in carer_attempts(h, handle.id)))
    assert len(to_carer(h)) == 1  # only the start, before the STOP
