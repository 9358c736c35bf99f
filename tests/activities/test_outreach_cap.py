"""The send activity's frequency cap counts each recipient's own messages: a carer's updates
are spaced out on the carer's phone, and neither's messages hold back the other's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from handrail.activities.contracts import SendChannel, SendStatus, SendToPerson
from handrail.activities.outreach import OutreachActivities
from handrail.channels.outbox import OutboxChannel
from handrail.domain.policy import FrequencyCap
from handrail.store.models import Carer, Person, Team, Transition

AT = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
CAP = FrequencyCap(window=timedelta(days=1), max_in_window=3, min_gap=timedelta(hours=1))
TID = "avoid-00000000-0000-5000-8000-000000000001"


def seed(engine) -> int:
    with Session(engine, expire_on_commit=False) as session:
        team = Team(code="crisis-north", name="Crisis North")
        person = Person(given_name="Sam", family_name="Capperson", phone="+447700900432",
                        consent_to_messages=True)
        session.add_all([team, person])
        session.flush()
        session.add(Transition(id=TID, kind="admission_avoidance", stage="intensive",
                               person_id=person.id, team_id=team.id, policy_version="test"))
        session.add(Carer(person_id=person.id, name="Alex Carer", phone="+447700900654",
                          relationship="partner", consent_given=True, consent_recorded_at=AT))
        session.commit()
        return person.id


def send(activities, person_id: int, step: str, at: datetime, *, to_carer: bool):
    return activities.send_to_person(SendToPerson(
        key=f"{TID}:{step}", transition_id=TID, contact_id=None, workflow_id=TID,
        person_id=person_id, channel=SendChannel.sms, step=step, body="Crisis team: an update.",
        at=at, frequency_cap=CAP, to_carer=to_carer))


def test_a_carers_updates_are_spaced_on_their_own_phone_and_the_persons_are_not_held(sqlite_engine):
    person_id = seed(sqlite_engine)
    activities = OutreachActivities(sqlite_engine, OutboxChannel())

    assert send(activities, person_id, "carer-1", AT, to_carer=True).status == SendStatus.sent
    held = send(activities, person_id, "carer-2", AT + timedelta(minutes=10), to_carer=True)
    assert (held.status, held.not_before) == (SendStatus.deferred, AT + timedelta(hours=1))
    # The person's own reminder is not held back by what their carer was sent.
    assert send(activities, person_id, "reminder-1", AT + timedelta(minutes=10),
                to_carer=False).status == SendStatus.sent
    # And the person's message does not hold back the carer's, once the carer's hour is up.
    assert send(activities, person_id, "carer-2", AT + timedelta(hours=1),
                to_carer=True).status == SendStatus.sent
