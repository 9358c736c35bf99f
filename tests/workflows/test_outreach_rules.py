"""The messaging rules inside the contact routine: delivery failures, quiet hours in the
person's own zone, the frequency cap, and what a reply means."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from handrail.domain.contact import DeliveryFailure, PersonReply
from handrail.domain.handoff import Booking, ConfirmDetails
from handrail.store.models import OutboxMessage, OutreachAttempt, Person, Task, Transition
from handrail.workflows.handoff import PostCrisisHandoff
from tests.workflows.notifications import ed_discharge
from tests.workflows.test_handoff import LONDON, afternoon, booked, local, open_tasks

NEW_YORK = ZoneInfo("America/New_York")


async def test_a_failed_delivery_moves_the_ladder_on_at_once(harness):
    h = harness
    handle, appointment = await booked(h)
    await h.advance(appointment + timedelta(hours=4, minutes=5) - await h.now(),
                    step=timedelta(hours=1))

    def ladder_message():
        return [a for a in h.rows(OutreachAttempt, OutreachAttempt.transition_id == handle.id)
                if a.step == "ladder-0-message" and a.status == "sent"]

    await h.settle(lambda: bool(ladder_message()))
    failed_at = await h.now()
    await handle.signal(PostCrisisHandoff.delivery_failed,
                        DeliveryFailure(message_id=ladder_message()[0].id, error_code="30003"))
    # No time passes: the call step follows the failure instead of the 4-hour wait.
    await h.settle(lambda: any(m.kind == "call" for m in h.rows(
        OutboxMessage, OutboxMessage.transition_id == handle.id)))
    call = [m for m in h.rows(OutboxMessage, OutboxMessage.transition_id == handle.id)
            if m.kind == "call"][0]
    assert call.created_at - failed_at < timedelta(minutes=1)


async def test_quiet_hours_follow_the_persons_own_time_zone(harness):
    h = harness
    now = await h.now()
    handle = await h.start(ed_discharge(at=now - timedelta(hours=1), time_zone="America/New_York"))
    await h.settle(lambda: len(open_tasks(h, handle.id)) >= 5)
    await handle.execute_update(PostCrisisHandoff.confirm_details,
                                args=[ConfirmDetails(consent_to_messages=True), h.staff.coordinator])
    local_day = (now.astimezone(NEW_YORK) + timedelta(days=2)).replace(
        hour=9, minute=0, second=0, microsecond=0)
    appointment = local_day.astimezone(ZoneInfo("UTC"))
    await handle.execute_update(PostCrisisHandoff.book,
                                args=[Booking(appointment_at=appointment), h.staff.coordinator])
    await h.advance(appointment - await h.now() - timedelta(minutes=10), step=timedelta(hours=1))
    reminders = [m for m in h.rows(OutboxMessage, OutboxMessage.transition_id == handle.id)
                 if "reminder" in m.body]
    times = [m.created_at.astimezone(NEW_YORK).strftime("%H:%M") for m in reminders]
    # A day before at 09:00; the two-hour reminder falls at 07:00, in quiet hours: sent at 08:00
    # New York time (13:00 in London, where the same rule would not have held it).
    assert times == ["09:00", "08:00"]
    assert all("09:00" in m.body for m in reminders)  # the time shown is the person's own


async def test_the_frequency_cap_spaces_messages_out(harness):
    h = harness
    policy = h.policy.model_copy(update={"handoff": h.policy.handoff.model_copy(
        update={"reminders_before": [timedelta(hours=3), timedelta(hours=2, minutes=30)]})})
    now = await h.now()
    handle = await h.start(ed_discharge(at=now - timedelta(hours=1)), policy=policy)
    await h.settle(lambda: len(open_tasks(h, handle.id)) >= 5)
    await handle.execute_update(PostCrisisHandoff.confirm_details,
                                args=[ConfirmDetails(consent_to_messages=True), h.staff.coordinator])
    appointment = afternoon(now, 2)
    await handle.execute_update(PostCrisisHandoff.book,
                                args=[Booking(appointment_at=appointment), h.staff.coordinator])
    await h.advance(appointment - await h.now() - timedelta(minutes=10), step=timedelta(minutes=30))
    reminders = sorted(m.created_at for m in h.rows(
        OutboxMessage, OutboxMessage.transition_id == handle.id) if "reminder" in m.body)
    # 11:00, then the 11:30 one held to 12:00: the policy keeps an hour between messages.
    assert [local(t)[-5:] for t in reminders] == ["11:00", "12:00"]
    assert reminders[0].astimezone(LONDON).hour == 11


async def test_what_a_reply_means(harness):
    h = harness
    handle, _ = await booked(h)
    now = await h.now()
    for text in ("3", "CALLBACK", "Can't make Tuesday, sorry"):
        await handle.signal(PostCrisisHandoff.person_reply,
                            PersonReply(message_id=None, text=text, received_at=now))
    contact_id = f"{handle.id}.c1"
    await h.settle(lambda: len(h.rows(Task, Task.workflow_id == contact_id)) == 3)
    kinds = sorted(t.kind for t in h.rows(Task, Task.workflow_id == contact_id))
    # A rating and free text are read; CALLBACK (the call's keypad "2") asks for a call.
    assert kinds == ["outreach_call", "read_reply", "read_reply"]
    await handle.signal(PostCrisisHandoff.person_reply,
                        PersonReply(message_id=None, text="STOP", received_at=now))
    await handle.signal(PostCrisisHandoff.person_reply,
                        PersonReply(message_id=None, text="YES", received_at=now))
    from handrail.store.models import Contact

    await h.settle(lambda: h.rows(Contact, Contact.id == contact_id)[0].confirmed_by_person_at)
    assert len(h.rows(Task, Task.workflow_id == contact_id)) == 3  # STOP made no task


async def test_quiet_hours_hold_across_a_daylight_saving_change(harness):
    """London springs forward at 01:00 UTC on Sunday 28 March 2027: 08:00 local is then 07:00 UTC."""
    from datetime import datetime

    h = harness
    await h.env.sleep(datetime(2027, 3, 26, 12, 0, tzinfo=ZoneInfo("UTC")) - await h.now())
    now = await h.now()
    handle = await h.start(ed_discharge(at=now - timedelta(hours=1)))
    await h.settle(lambda: len(open_tasks(h, handle.id)) >= 5)
    await handle.execute_update(PostCrisisHandoff.confirm_details,
                                args=[ConfirmDetails(consent_to_messages=True), h.staff.coordinator])
    appointment = datetime(2027, 3, 28, 9, 0, tzinfo=LONDON)  # 08:00 UTC, British Summer Time
    await handle.execute_update(PostCrisisHandoff.book,
                                args=[Booking(appointment_at=appointment), h.staff.coordinator])
    await h.advance(appointment - await h.now() - timedelta(minutes=10), step=timedelta(hours=1))
    reminders = sorted(m.created_at for m in h.rows(
        OutboxMessage, OutboxMessage.transition_id == handle.id) if "reminder" in m.body)
    # P1D before is 24 hours: 08:00 GMT on Saturday, just outside quiet hours. The two-hour
    # reminder falls at 07:00 BST, inside them, and waits for 08:00 BST, which is 07:00 UTC.
    assert [t.strftime("%Y-%m-%d %H:%M") for t in reminders] == ["2027-03-27 08:00",
                                                                  "2027-03-28 07:00"]


async def test_a_number_that_cannot_take_messages_becomes_one_call_task_before_the_appointment(harness):
    h = harness
    handle, appointment = await booked(h)
    # What the Twilio channel records on error 21211 or 21614 (invalid or landline number).
    with h.session() as session:
        transition = session.get(Transition, handle.id)
        person = session.get(Person, transition.person_id)
        person.phone_usable = False
        session.add(person)
        session.commit()

    def number_tasks():
        return [t for t in open_tasks(h, handle.id, "outreach_call") if "number" in t.title]

    # Both reminders fall due and neither can be sent: one task, due by the appointment.
    await h.advance(appointment - await h.now() - timedelta(minutes=30), step=timedelta(hours=1))
    await h.settle(lambda: bool(number_tasks()))
    tasks = number_tasks()
    assert len(tasks) == 1
    assert tasks[0].priority == "urgent" and tasks[0].owner_id == h.staff.coordinator.id
    assert tasks[0].due_at <= appointment
    skipped = [a.status for a in h.rows(OutreachAttempt, OutreachAttempt.transition_id == handle.id)
               if a.step.startswith("reminder")]
    assert skipped == ["skipped_no_number", "skipped_no_number"]
    assert not [m for m in h.rows(OutboxMessage, OutboxMessage.transition_id == handle.id)
                if "reminder" in m.body]
