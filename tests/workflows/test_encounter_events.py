"""Hospital events for a handoff's encounter (issue 4's intake sends them as signals)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from handrail.domain.handoff import HandoffInput, HandoffOutcome, HandoffStage
from handrail.domain.intake import EncounterEvent, EncounterEventKind
from handrail.store.models import AuditEvent, Person, Task, Transition
from handrail.workflows.handoff import PostCrisisHandoff
from tests.workflows.notifications import ed_discharge


def event(kind: EncounterEventKind, message_id: str, notification, trigger: str) -> EncounterEvent:
    return EncounterEvent(kind=kind, trigger=trigger, message_id=message_id,
                          occurred_at=notification.event_time, notification=notification,
                          reason=f"{trigger} test")


def open_kinds(h, transition_id: str) -> list[str]:
    return sorted(t.kind for t in h.rows(Task, Task.transition_id == transition_id,
                                          Task.status == "requested"))


def stage(h, transition_id: str) -> str:
    rows = h.rows(Transition, Transition.id == transition_id)
    return rows[0].stage if rows else ""


async def test_an_ed_registration_waits_for_discharge_and_a_readmission_holds_the_handoff(harness):
    h = harness
    now = await h.now()
    registered = ed_discharge(at=now, encounter="ENC-A04")
    handle = await h.client.start_workflow(
        PostCrisisHandoff.run,
        HandoffInput(
            transition_id="handoff-a04-test", notification=registered, policy=h.policy,
            team_code="crisis-north"),
        id="handoff-a04-test", task_queue=h.task_queue,
        start_signal="encounter_event",
        start_signal_args=[event(EncounterEventKind.ed_registration, "MSG-1", registered, "A04")])
    h.started.append(handle)
    await h.settle(lambda: stage(h, handle.id) == HandoffStage.awaiting_discharge)
    assert open_kinds(h, handle.id) == []  # nothing runs while the person is still in the ED

    await h.advance(timedelta(hours=6), step=timedelta(hours=1))
    discharged = registered.model_copy(update={"event_time": await h.now()})
    await handle.signal(PostCrisisHandoff.encounter_event,
                        event(EncounterEventKind.discharge, "MSG-2", discharged, "A03"))
    # The same message again changes nothing.
    await handle.signal(PostCrisisHandoff.encounter_event,
                        event(EncounterEventKind.discharge, "MSG-2", discharged, "A03"))
    await h.settle(lambda: len(open_kinds(h, handle.id)) == 5)
    transition = h.rows(Transition, Transition.id == handle.id)[0]
    assert transition.first_contact_due == discharged.event_time + timedelta(hours=72)

    # Re-admitted: the handoff holds, its tasks end, nothing is chased while they are inpatient.
    await handle.signal(PostCrisisHandoff.encounter_event,
                        event(EncounterEventKind.admission, "MSG-3", discharged, "A01"))
    await h.settle(lambda: stage(h, handle.id) == HandoffStage.inpatient_hold)
    await h.settle(lambda: open_kinds(h, handle.id) == [])
    await h.advance(timedelta(days=8), step=timedelta(days=1))
    assert not [t for t in h.rows(Task, Task.transition_id == handle.id)
                if t.kind == "supervisor_escalation"]

    # Discharged again: fresh clocks from the new discharge.
    second = registered.model_copy(update={"event_time": await h.now()})
    await handle.signal(PostCrisisHandoff.encounter_event,
                        event(EncounterEventKind.discharge, "MSG-4", second, "A03"))
    await h.settle(lambda: len(open_kinds(h, handle.id)) == 5)
    transition = h.rows(Transition, Transition.id == handle.id)[0]
    assert transition.first_contact_due == second.event_time + timedelta(hours=72)
    assert transition.event_time == second.event_time

    # A13 cancels that discharge: back to waiting for it.
    await handle.signal(PostCrisisHandoff.encounter_event,
                        event(EncounterEventKind.cancel_discharge, "MSG-5", second, "A13"))
    await h.settle(lambda: stage(h, handle.id) == HandoffStage.awaiting_discharge)
    actions = [e.action for e in h.rows(AuditEvent, AuditEvent.transition_id == handle.id)]
    assert "encounter.cancel_discharge" in actions and "encounter.admission" in actions
    # A hold and a second discharge, stopped by flag (SETTLE_BEFORE_CLEARING), kept for replay.
    await h.record_history(handle.id, "handoff_readmitted_and_discharged_again")


async def test_a08_updates_contact_details_and_a11_cancels_a_registration(harness):
    h = harness
    now = await h.now()


    registered = ed_discharge(at=now, encounter="ENC-A11", phone="+447700900111")
    handle = await h.client.start_workflow(
        PostCrisisHandoff.run,
        HandoffInput(transition_id="handoff-a11-test", notification=registered, policy=h.policy,
                     team_code="crisis-north"),
        id="handoff-a11-test", task_queue=h.task_queue, start_signal="encounter_event",
        start_signal_args=[event(EncounterEventKind.ed_registration, "M-1", registered, "A04")])
    h.started.append(handle)
    await h.settle(lambda: stage(h, handle.id) == HandoffStage.awaiting_discharge)
    updated = registered.model_copy(deep=True)
    updated.person.phone = "+447700900222"
    await handle.signal(PostCrisisHandoff.encounter_event,
                        event(EncounterEventKind.update, "M-2", updated, "A08"))
    person_id = h.rows(Transition, Transition.id == handle.id)[0].person_id
    await h.settle(lambda: h.rows(Person, Person.id == person_id)[0].phone == "+447700900222")
    await handle.signal(PostCrisisHandoff.encounter_event,
                        event(EncounterEventKind.cancel_admission, "M-3", registered, "A11"))
    await h.settle(lambda: h.rows(Transition, Transition.id == handle.id)[0].status == "closed")
    assert h.rows(Transition, Transition.id == handle.id)[0].outcome == HandoffOutcome.closed_by_staff
    closed = [e for e in h.rows(AuditEvent, AuditEvent.transition_id == handle.id)
              if e.action == "transition.closed"]
    assert "registration cancelled" in closed[0].detail["reason"]


async def test_a_task_still_being_opened_when_the_person_is_readmitted_does_not_stay_open(
        harness, monkeypatch):
    """The consent task's store step is slow and still running when the admission arrives: the
    hold clears the open tasks only after it has finished, so nothing stays open on a person
    who is back in hospital (the race that once left an urgent task open during a hold)."""
    import threading
    import time

    from handrail.store import records

    h = harness
    opening, original = threading.Event(), records.create_task

    def slow_consent_task(*, session, spec):
        if spec.kind.value == "confirm_consent_and_details":
            opening.set()
            time.sleep(1.5)
        return original(session=session, spec=spec)

    monkeypatch.setattr(records, "create_task", slow_consent_task)
    now = await h.now()
    discharged = ed_discharge(at=now, encounter="ENC-SLOW")
    handle = await h.start(discharged)
    await h.settle(lambda: opening.is_set())
    await handle.signal(PostCrisisHandoff.encounter_event,
                        event(EncounterEventKind.admission, "MSG-1", discharged, "A01"))
    await h.settle(lambda: stage(h, handle.id) == HandoffStage.inpatient_hold)
    await asyncio.sleep(2.0)  # past the slow step, whichever way the race went
    assert open_kinds(h, handle.id) == []
    consent = [t for t in h.rows(Task, Task.transition_id == handle.id)
               if t.kind == "confirm_consent_and_details"]
    assert consent and all(t.status == "cancelled" for t in consent)
