"""The warm handoff of DESIGN.md, walked step by step on the time-skipping server."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from handrail.domain.contact import ContactOutcome, OutcomeReport, PersonReply
from handrail.domain.handoff import (
    Booking,
    CloseTransition,
    CompleteTask,
    ConfirmDetails,
    HandoffOutcome,
    HandoffStage,
    SupervisorDecision,
    SupervisorDecisionKind,
)
from handrail.store.models import AuditEvent, Contact, OutboxMessage, Task, Transition
from handrail.workflows.handoff import PostCrisisHandoff
from tests.workflows.feedback import answer, follow_ups
from tests.workflows.notifications import ed_discharge

LONDON = ZoneInfo("Europe/London")


def afternoon(now: datetime, days_ahead: int) -> datetime:
    """14:00 London time `days_ahead` days on: clear of quiet hours whenever the test runs."""
    local = (now.astimezone(LONDON) + timedelta(days=days_ahead)).replace(
        hour=14, minute=0, second=0, microsecond=0)
    return local.astimezone(ZoneInfo("UTC"))


def open_tasks(h, transition_id: str, kind: str | None = None) -> list[Task]:
    tasks = h.rows(Task, Task.transition_id == transition_id, Task.status == "requested")
    return [t for t in tasks if kind is None or t.kind == kind]


async def started(h, **kwargs):
    now = await h.now()
    handle = await h.start(ed_discharge(at=now - timedelta(hours=1), **kwargs))
    await h.settle(lambda: len(open_tasks(h, handle.id)) >= 5)
    return handle, now


async def test_happy_path_owner_assigned_summary_routed_booked_reminded_and_closed(harness):
    h = harness
    handle, now = await started(h)

    transition = h.rows(Transition, Transition.id == handle.id)[0]
    assert transition.owner_id == h.staff.coordinator.id
    assert transition.first_contact_due == now - timedelta(hours=1) + timedelta(hours=72)
    kinds = sorted(t.kind for t in open_tasks(h, handle.id))
    assert kinds == ["book_first_contact", "confirm_consent_and_details", "medication_reconciliation",
                     "review_crisis_summary", "review_crisis_summary"]
    summary_owners = {t.owner_id for t in open_tasks(h, handle.id, "review_crisis_summary")}
    assert summary_owners == {h.staff.clinician.id, h.staff.care_coordinator.id}

    await handle.execute_update(PostCrisisHandoff.confirm_details,
                                args=[ConfirmDetails(consent_to_messages=True), h.staff.coordinator])
    appointment = afternoon(now, 2)
    state = await handle.execute_update(PostCrisisHandoff.book,
                                        args=[Booking(appointment_at=appointment, location="clinic"),
                                              h.staff.coordinator])
    assert state.stage == HandoffStage.first_contact_scheduled
    assert not open_tasks(h, handle.id, "confirm_consent_and_details")
    assert not open_tasks(h, handle.id, "book_first_contact")

    await h.advance(appointment - await h.now() - timedelta(minutes=30))
    bodies = [m.body for m in h.rows(OutboxMessage, OutboxMessage.transition_id == handle.id)]
    assert len(bodies) == 3, bodies  # confirmation, the day-before and the two-hour reminders
    assert "appointment is on" in bodies[0] and "14:00" in bodies[0]
    assert all("reminder" in b for b in bodies[1:])
    assert not any("sertraline" in b or "self-harm" in b for b in bodies)

    state = await handle.execute_update(
        PostCrisisHandoff.record_contact,
        args=[OutcomeReport(outcome=ContactOutcome.attended), h.staff.clinician])
    await h.settle(lambda: h.rows(Transition, Transition.id == handle.id)[0].stage == "monitoring")
    contact = h.rows(Contact, Contact.transition_id == handle.id)[0]
    assert contact.status == "attended" and contact.id == f"{handle.id}.c1"

    med_rec = open_tasks(h, handle.id, "medication_reconciliation")[0]
    await handle.execute_update(PostCrisisHandoff.complete_task,
                                args=[CompleteTask(task_id=med_rec.id), h.staff.clinician])
    await h.advance(timedelta(days=91), step=timedelta(days=5),
                    until=lambda: h.rows(Transition, Transition.id == handle.id)[0].status == "closed")
    await h.settle(lambda: h.rows(Transition, Transition.id == handle.id)[0].status == "closed")
    transition = h.rows(Transition, Transition.id == handle.id)[0]
    assert transition.outcome == HandoffOutcome.completed
    assert transition.medication_reconciled_by_id == h.staff.clinician.id
    assert transition.first_contact_at is not None
    final = await answer(h, handle, "5")  # the question at closure: confident, nothing to do
    assert final.outcome == HandoffOutcome.completed and final.feedback_rating == 5
    assert not follow_ups(h, handle.id)
    await h.record_history(handle.id, "handoff_happy_path")
    await h.record_history(f"{handle.id}.c1", "contact_attended")


def local(at: datetime) -> str:
    return at.astimezone(LONDON).strftime("%d %H:%M")


async def booked(h, *, consent: bool = True, days_ahead: int = 2):
    handle, now = await started(h)
    await handle.execute_update(PostCrisisHandoff.confirm_details,
                                args=[ConfirmDetails(consent_to_messages=consent), h.staff.coordinator])
    appointment = afternoon(now, days_ahead)
    await handle.execute_update(PostCrisisHandoff.book,
                                args=[Booking(appointment_at=appointment), h.staff.coordinator])
    return handle, appointment


async def test_missed_first_contact_climbs_every_ladder_step_in_order_at_the_policys_times(harness):
    h = harness
    handle, appointment = await booked(h)
    day = appointment.astimezone(LONDON)

    def supervisor_task():
        return open_tasks(h, handle.id, "supervisor_decision")

    await h.advance(appointment + timedelta(days=4) - await h.now(), step=timedelta(hours=1),
                    until=lambda: bool(supervisor_task()))
    await h.settle(lambda: bool(supervisor_task()))

    ladder = [(m.created_at, m.kind, m.body) for m in h.rows(
        OutboxMessage, OutboxMessage.transition_id == handle.id) if "missed" in m.body]
    tasks = {t.kind: t for t in h.rows(Task, Task.transition_id == handle.id)}
    d0, d1 = day.strftime("%d"), (day + timedelta(days=1)).strftime("%d")
    d2, d3 = (day + timedelta(days=2)).strftime("%d"), (day + timedelta(days=3)).strftime("%d")
    # Missed at 18:00 (14:00 plus the 4-hour grace): the message goes at once.
    assert [(local(at), kind) for at, kind, _ in ladder] == [
        (f"{d0} 18:00", "sms"),
        # The call falls due at 22:00, inside quiet hours: it waits for 08:00 local.
        (f"{d1} 08:00", "call"),
    ]
    assert local(tasks["outreach_call"].created_at) == f"{d1} 16:00"  # 8 hours after the call
    assert local(tasks["rebook_contact"].created_at) == f"{d2} 16:00"  # 24 hours on
    assert local(tasks["supervisor_decision"].created_at) == f"{d3} 16:00"  # 24 hours on
    assert tasks["supervisor_decision"].owner_id == h.staff.supervisor.id
    assert tasks["outreach_call"].owner_id == h.staff.coordinator.id
    # The chasing tasks end with the contact; the supervisor's decision stays open.
    assert tasks["outreach_call"].status == "cancelled"

    state = await handle.query(PostCrisisHandoff.status)
    assert state.stage == HandoffStage.awaiting_supervisor_decision
    await handle.execute_update(PostCrisisHandoff.decide, args=[SupervisorDecision(
        decision=SupervisorDecisionKind.close_disengaged,
        reason="Five attempts over three days; GP informed"), h.staff.supervisor])
    await h.settle(lambda: h.rows(Transition, Transition.id == handle.id)[0].status == "closed")
    transition = h.rows(Transition, Transition.id == handle.id)[0]
    assert transition.outcome == HandoffOutcome.disengaged
    assert h.rows(Task, Task.id == tasks["supervisor_decision"].id)[0].status == "completed"
    actions = [e.action for e in h.rows(AuditEvent, AuditEvent.transition_id == handle.id)]
    assert "decision.handoff_ladder_exhausted" in actions and "transition.closed" in actions
    await answer(h, handle, "4")
    # After the close only the feedback question and its answer (consent was given).
    actions = [e.action for e in h.rows(AuditEvent, AuditEvent.transition_id == handle.id)]
    assert actions[actions.index("transition.closed") + 1:] == ["outreach.sent", "feedback.answered"]
    await h.record_history(handle.id, "handoff_ladder_disengaged")
    await h.record_history(f"{handle.id}.c1", "contact_ladder_exhausted")


async def test_consent_not_confirmed_in_time_escalates_to_the_supervisor(harness):
    h = harness
    handle, _ = await started(h)
    assert not open_tasks(h, handle.id, "supervisor_escalation")
    await h.advance(timedelta(hours=4, minutes=30), until=lambda: bool(
        open_tasks(h, handle.id, "supervisor_escalation")))
    await h.settle(lambda: bool(open_tasks(h, handle.id, "supervisor_escalation")))
    escalation = open_tasks(h, handle.id, "supervisor_escalation")[0]
    assert escalation.owner_id == h.staff.supervisor.id and escalation.priority == "urgent"
    assert "Consent" in escalation.title
    # The coordinator's own task stays open: escalation adds oversight, it does not take over.
    assert open_tasks(h, handle.id, "confirm_consent_and_details")


async def test_a_yes_reply_confirms_the_appointment(harness):
    h = harness
    handle, appointment = await booked(h)
    # (The confirmation itself may be waiting for the morning: the reply needs no message id.)
    await handle.signal(PostCrisisHandoff.person_reply, PersonReply(
        message_id=None, text=" yes ", received_at=await h.now()))
    await h.settle(lambda: any(c.confirmed_by_person_at is not None
                               for c in h.rows(Contact, Contact.transition_id == handle.id)))
    assert not open_tasks(h, handle.id, "read_reply")


async def test_no_message_without_consent(harness):
    h = harness
    handle, appointment = await booked(h, consent=False)
    await h.advance(appointment - await h.now() - timedelta(minutes=30), step=timedelta(hours=2))
    assert h.rows(OutboxMessage, OutboxMessage.transition_id == handle.id) == []
    from handrail.store.models import OutreachAttempt
    statuses = {a.status for a in h.rows(OutreachAttempt, OutreachAttempt.transition_id == handle.id)}
    assert statuses == {"skipped_no_consent"}


async def test_the_same_notification_twice_reaches_one_workflow(harness):
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from handrail.domain.handoff import HandoffInput
    from handrail.domain.ids import handoff_workflow_id

    h = harness
    notification = ed_discharge(at=await h.now(), encounter="ENC-TWICE")
    ids = {handoff_workflow_id(key=b"k", source_system=n.source_system, encounter_id=n.encounter_id)
           for n in (notification, notification.model_copy())}
    assert len(ids) == 1
    workflow_id = ids.pop()
    assert "ENC" not in workflow_id and "Testperson" not in workflow_id
    inp = HandoffInput(transition_id=workflow_id, notification=notification, policy=h.policy,
                       team_code="crisis-north")
    options = dict(id=workflow_id, task_queue=h.task_queue,
                   id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                   id_conflict_policy=WorkflowIDConflictPolicy.FAIL)
    h.started.append(await h.client.start_workflow(PostCrisisHandoff.run, inp, **options))
    with pytest.raises(WorkflowAlreadyStartedError):
        await h.client.start_workflow(PostCrisisHandoff.run, inp, **options)
    await h.settle(lambda: len(h.rows(Transition)) == 1)


async def test_a_second_ed_notification_within_90_days_is_linked_as_a_re_presentation(harness):
    h = harness
    first, _ = await started(h, mrn="MRN-REPEAT")
    await h.advance(timedelta(days=10), step=timedelta(days=1))
    second, _ = await started(h, mrn="MRN-REPEAT")
    await h.settle(lambda: bool(open_tasks(h, first.id, "re_presentation_review")))
    assert h.rows(Transition, Transition.id == second.id)[0].re_presentation_of == first.id
    state = await first.query(PostCrisisHandoff.status)
    assert [r.transition_id for r in state.re_presentations] == [second.id]
    assert len(h.rows(Transition)) == 2
    # Another person's notification is not linked.
    third, _ = await started(h, mrn="MRN-SOMEONE-ELSE")
    assert h.rows(Transition, Transition.id == third.id)[0].re_presentation_of is None


async def test_overdue_medication_reconciliation_escalates(harness):
    h = harness
    handle, _ = await started(h)
    await handle.execute_update(PostCrisisHandoff.confirm_details,
                                args=[ConfirmDetails(consent_to_messages=False), h.staff.coordinator])
    await h.advance(timedelta(days=7), step=timedelta(hours=12), until=lambda: any(
        "Medication" in t.title for t in open_tasks(h, handle.id, "supervisor_escalation")))
    await h.settle(lambda: any("Medication" in t.title
                               for t in open_tasks(h, handle.id, "supervisor_escalation")))
    events = [e.detail.get("what") for e in h.rows(AuditEvent, AuditEvent.transition_id == handle.id)
              if e.action == "handoff.escalated"]
    assert "medication-reconciliation" in events


async def test_updates_at_the_wrong_stage_or_by_the_wrong_role_are_refused_with_a_reason(harness):
    h = harness
    handle, now = await started(h)

    async def refusal(update, *args) -> ApplicationError:
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await handle.execute_update(update, args=list(args))
        assert isinstance(caught.value.cause, ApplicationError)
        return caught.value.cause

    err = await refusal(PostCrisisHandoff.decide, SupervisorDecision(
        decision=SupervisorDecisionKind.close_disengaged, reason="x"), h.staff.supervisor)
    assert err.type == "StageConflict" and "no supervisor decision is pending" in err.message
    err = await refusal(PostCrisisHandoff.record_contact,
                        OutcomeReport(outcome=ContactOutcome.attended), h.staff.clinician)
    assert err.type == "StageConflict" and "no contact is in progress" in err.message
    err = await refusal(PostCrisisHandoff.book, Booking(appointment_at=now - timedelta(hours=1)),
                        h.staff.coordinator)
    assert err.type == "InvalidAction" and err.message.startswith("appointment_at")
    err = await refusal(PostCrisisHandoff.book, Booking(appointment_at=now + timedelta(days=5)),
                        h.staff.coordinator)
    assert err.type == "InvalidAction" and "first-contact deadline" in err.message
    med_rec = open_tasks(h, handle.id, "medication_reconciliation")[0]
    err = await refusal(PostCrisisHandoff.complete_task, CompleteTask(task_id=med_rec.id),
                        h.staff.care_coordinator)
    assert err.type == "Forbidden" and "clinician" in err.message
    # A late booking goes through with its reason.
    state = await handle.execute_update(PostCrisisHandoff.book, args=[
        Booking(appointment_at=now + timedelta(days=5), late_reason="Person away until Friday"),
        h.staff.coordinator])
    assert state.stage == HandoffStage.first_contact_scheduled
    await handle.execute_update(PostCrisisHandoff.close, args=[
        CloseTransition(reason="Moved out of area"), h.staff.supervisor])
    await h.settle(lambda: h.rows(Transition, Transition.id == handle.id)[0].status == "closed")
    assert h.rows(Transition, Transition.id == handle.id)[0].outcome == HandoffOutcome.closed_by_staff
    assert open_tasks(h, handle.id) == []
    # Closed: the validator refuses, or once the workflow has ended, Temporal itself does
    # (the API answers 409 to both).
    from temporalio.service import RPCError
    with pytest.raises((RPCError, WorkflowUpdateFailedError)):
        await handle.execute_update(PostCrisisHandoff.confirm_details, args=[
            ConfirmDetails(consent_to_messages=True), h.staff.coordinator])


def stall_after_commit(monkeypatch, kind: str) -> tuple[threading.Event, threading.Event]:
    """The store step that opens a `kind` task commits it, then stalls until released: the
    task is on the list while its workflow has not heard its id."""
    from handrail.store import records

    committed, release = threading.Event(), threading.Event()
    original = records.open_task

    def open_then_stall(*, session, spec):
        task = original(session=session, spec=spec)
        if spec.kind.value == kind:
            session.commit()
            committed.set()
            release.wait(timeout=20)
        return task

    monkeypatch.setattr(records, "open_task", open_then_stall)
    return committed, release


async def test_a_task_completed_before_its_workflow_has_heard_of_it_waits_instead_of_refusing(
        harness, monkeypatch):
    """The store commits a task before the workflow hears its id, so it is on a clinician's list
    while the workflow does not know it yet. Completing it then waits for the workflow to hear
    of it, and is checked as ever, instead of being refused as 'not open' (the race that once
    failed CI on a step-up's start_step_down task)."""
    h = harness
    committed, release = stall_after_commit(monkeypatch, "medication_reconciliation")
    handle = await h.start(ed_discharge(at=await h.now() - timedelta(hours=1)))
    await h.settle(lambda: committed.is_set())
    [med_rec] = open_tasks(h, handle.id, "medication_reconciliation")

    def complete(task_id: int, actor):
        return asyncio.create_task(handle.execute_update(
            PostCrisisHandoff.complete_task, args=[CompleteTask(task_id=task_id), actor]))

    by_the_wrong_role = complete(med_rec.id, h.staff.care_coordinator)
    unknown = complete(med_rec.id + 1000, h.staff.clinician)
    await asyncio.sleep(0.5)  # both are waiting before the clinician's, which would close it
    by_a_clinician = complete(med_rec.id, h.staff.clinician)
    await asyncio.sleep(0.5)
    assert not (by_the_wrong_role.done() or unknown.done() or by_a_clinician.done())
    release.set()

    state = await asyncio.wait_for(by_a_clinician, timeout=30)
    assert state.medication_reconciled_at is not None
    assert open_tasks(h, handle.id, "medication_reconciliation") == []
    for refused, kind, words in ((by_the_wrong_role, "Forbidden", "clinician"),
                                 (unknown, "StageConflict", "is not open on this transition")):
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await asyncio.wait_for(refused, timeout=30)
        assert caught.value.cause.type == kind and words in caught.value.cause.message
    # With nothing being opened, an id the workflow does not know is refused at once.
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(PostCrisisHandoff.complete_task,
                                    args=[CompleteTask(task_id=med_rec.id + 1000), h.staff.clinician])
    assert caught.value.cause.type == "StageConflict"


async def test_details_confirmed_while_their_task_is_being_opened_complete_that_task(
        harness, monkeypatch):
    """The coordinator confirms the details the moment the handoff starts, while the task that
    asks for them is still being written: the task ends completed, not left open."""
    h = harness
    committed, release = stall_after_commit(monkeypatch, "confirm_consent_and_details")
    handle = await h.start(ed_discharge(at=await h.now() - timedelta(hours=1)))
    await h.settle(lambda: committed.is_set())
    confirming = asyncio.create_task(handle.execute_update(PostCrisisHandoff.confirm_details, args=[
        ConfirmDetails(consent_to_messages=True), h.staff.coordinator]))
    await asyncio.sleep(0.5)
    release.set()
    state = await asyncio.wait_for(confirming, timeout=30)
    assert state.details_confirmed
    [consent] = [t for t in h.rows(Task, Task.transition_id == handle.id)
                 if t.kind == "confirm_consent_and_details"]
    assert consent.status == "completed"
