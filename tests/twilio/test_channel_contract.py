"""The official twilio client, driven by Handrail's channel, against Twilio's own OpenAPI
description served by Prism: Prism refuses (422) any request the contract does not allow."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select
from twilio.base.exceptions import TwilioRestException

from handrail.channels.base import ChannelKind, OutboundMessage, PermanentDeliveryError
from handrail.channels.twilio import TwilioChannel
from handrail.store.models import Carer, OutreachAttempt, Person
from tests.twilio.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    PERSON_PHONE,
    RecordingHttpClient,
    add_attempt,
)

PUBLIC = "https://handrail.example.org"
API = "https://api.twilio.com/2010-04-01/Accounts/" + ACCOUNT_SID


@pytest.fixture
def http(prism_url) -> RecordingHttpClient:
    return RecordingHttpClient(prism_url)


def channel(http, **kwargs) -> TwilioChannel:
    options = {"from_number": FROM_NUMBER, **kwargs}
    return TwilioChannel(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, public_base_url=PUBLIC + "/",
                         http_client=http, **options)


def message(reached, key: str, kind: ChannelKind = ChannelKind.sms) -> OutboundMessage:
    return OutboundMessage(
        key=key, kind=kind, to=PERSON_PHONE,
        body="Community Mental Health Team: reminder of your appointment on Wed 25 Nov, 10:30. "
             "Reply YES to confirm, or call +441632960000.",
        person_id=reached.person_id, transition_id=reached.transition_id,
        workflow_id=reached.workflow_id,
    )


def attempt(engine, key: str) -> OutreachAttempt:
    with Session(engine) as session:
        return session.exec(select(OutreachAttempt).where(OutreachAttempt.key == key)).one()


def person(engine, person_id: int) -> Person:
    with Session(engine) as session:
        return session.get(Person, person_id)


def test_an_sms_is_sent_as_twilio_expects_and_its_sid_recorded(sqlite_engine, reached, http):
    key = f"{reached.workflow_id}:reminder-1"
    add_attempt(sqlite_engine, reached, key=key)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        receipt = channel(http).send(message(reached, key), session=session)
    [sent] = http.requests
    assert (sent["method"], sent["url"], sent["status"]) == ("POST", f"{API}/Messages.json", 201)
    assert sent["data"]["To"] == PERSON_PHONE
    assert sent["data"]["From"] == FROM_NUMBER
    assert sent["data"]["Body"].startswith("Community Mental Health Team: reminder")
    assert sent["data"]["StatusCallback"] == PUBLIC + "/webhooks/twilio/status"
    assert receipt.provider == "twilio" and receipt.provider_ref.startswith("SM")
    row = attempt(sqlite_engine, key)
    assert (row.provider, row.provider_ref, row.status) == ("twilio", receipt.provider_ref, "sent")


def test_the_same_key_never_sends_a_second_sms(sqlite_engine, reached, http):
    key = f"{reached.workflow_id}:reminder-2"
    add_attempt(sqlite_engine, reached, key=key)
    sms = channel(http)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        first = sms.send(message(reached, key), session=session)
    with Session(sqlite_engine, expire_on_commit=False) as session:  # a retried activity
        second = sms.send(message(reached, key), session=session)
    assert len(http.requests) == 1
    assert second == first


def test_a_messaging_service_sends_instead_of_a_number(sqlite_engine, reached, http):
    key = f"{reached.workflow_id}:booking_confirmation"
    add_attempt(sqlite_engine, reached, key=key)
    service_sid = "MG" + "2e" * 16
    with Session(sqlite_engine, expire_on_commit=False) as session:
        channel(http, from_number=None, messaging_service_sid=service_sid).send(
            message(reached, key), session=session)
    [sent] = http.requests
    assert sent["status"] == 201
    assert sent["data"]["MessagingServiceSid"] == service_sid
    assert "From" not in sent["data"]


def test_a_call_asks_twilio_to_fetch_the_reminder_twiml_for_this_attempt(sqlite_engine, reached, http):
    key = f"{reached.workflow_id}:ladder-1-call"
    attempt_id = add_attempt(sqlite_engine, reached, key=key, channel="call")
    with Session(sqlite_engine, expire_on_commit=False) as session:
        receipt = channel(http).send(message(reached, key, ChannelKind.call), session=session)
    [placed] = http.requests
    assert (placed["url"], placed["status"]) == (f"{API}/Calls.json", 201)
    assert placed["data"]["To"] == PERSON_PHONE and placed["data"]["From"] == FROM_NUMBER
    assert placed["data"]["Url"] == f"{PUBLIC}/webhooks/twilio/voice?attempt={attempt_id}"
    assert placed["data"]["StatusCallback"] == PUBLIC + "/webhooks/twilio/status"
    assert "Body" not in placed["data"]  # nothing about the person travels in the call request
    assert receipt.provider_ref.startswith("CA")
    assert attempt(sqlite_engine, key).provider_ref == receipt.provider_ref


def test_error_21610_records_the_opt_out_and_nothing_is_sent_again(sqlite_engine, reached, http):
    key = f"{reached.workflow_id}:reminder-1"
    add_attempt(sqlite_engine, reached, key=key)
    http.prefer_error = "unsubscribed"
    with Session(sqlite_engine, expire_on_commit=False) as session, \
            pytest.raises(PermanentDeliveryError) as refused:
        channel(http).send(message(reached, key), session=session)
    assert refused.value.code == "21610"
    opted_out = person(sqlite_engine, reached.person_id)
    assert opted_out.opted_out_at is not None
    assert opted_out.consent_source == "twilio-21610"
    assert (attempt(sqlite_engine, key).status, attempt(sqlite_engine, key).error_code) == ("failed", "21610")
    # The next step's message is refused before it reaches Twilio.
    http.prefer_error = None
    add_attempt(sqlite_engine, reached, key=key + "-next")
    with Session(sqlite_engine, expire_on_commit=False) as session, \
            pytest.raises(PermanentDeliveryError, match="opted_out"):
        channel(http).send(message(reached, key + "-next"), session=session)
    assert len(http.requests) == 1


@pytest.mark.parametrize("example,code", [("invalid_number", "21211"), ("not_mobile", "21614")])
def test_an_invalid_or_landline_number_is_marked_unusable(sqlite_engine, reached, http, example, code):
    key = f"{reached.workflow_id}:reminder-1"
    add_attempt(sqlite_engine, reached, key=key)
    http.prefer_error = example
    with Session(sqlite_engine, expire_on_commit=False) as session, \
            pytest.raises(PermanentDeliveryError) as refused:
        channel(http).send(message(reached, key), session=session)
    assert refused.value.code == code
    marked = person(sqlite_engine, reached.person_id)
    assert marked.phone_usable is False
    assert marked.opted_out_at is None  # not an opt-out: a coordinator can still call
    assert attempt(sqlite_engine, key).error_code == code


def carer_update(engine, reached, *, consent_given: bool = True) -> tuple[Carer, str]:
    """The person's named carer, and an attempt to send them an update: (carer, key)."""
    with Session(engine, expire_on_commit=False) as session:
        carer = Carer(person_id=reached.person_id, name="Alex Carer", phone="+447700900654",
                      relationship="partner", consent_given=consent_given)
        session.add(carer)
        session.commit()
    key = f"{reached.workflow_id}:carer-episode_started-1"
    attempt_id = add_attempt(engine, reached, key=key)
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(OutreachAttempt, attempt_id)
        row.carer_id = carer.id
        session.add(row)
        session.commit()
    return carer, key


def test_a_carer_update_goes_on_the_carers_consent_not_the_persons_own(sqlite_engine, reached, http):
    """The person may want no messages themselves yet want their carer kept informed."""
    with Session(sqlite_engine, expire_on_commit=False) as session:
        session.get(Person, reached.person_id).consent_to_messages = False
        session.commit()
    carer, key = carer_update(sqlite_engine, reached)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        channel(http).send(replace(message(reached, key), to=carer.phone), session=session)
    assert attempt(sqlite_engine, key).provider_ref.startswith("SM")

    with Session(sqlite_engine, expire_on_commit=False) as session:
        session.get(Carer, carer.id).consent_withdrawn_at = datetime.now(UTC)
        session.commit()
    again = f"{reached.workflow_id}:carer-episode_ended-1"
    with Session(sqlite_engine, expire_on_commit=False) as session:
        row = session.get(OutreachAttempt, add_attempt(sqlite_engine, reached, key=again))
        row.carer_id = carer.id
        session.add(row)
        session.commit()
    sent_before = len(http.requests)
    with Session(sqlite_engine, expire_on_commit=False) as session, \
            pytest.raises(PermanentDeliveryError, match="no_consent"):
        channel(http).send(replace(message(reached, again), to=carer.phone), session=session)
    assert len(http.requests) == sent_before  # withdrawn: Twilio is not even asked


def test_error_21610_for_a_carer_leaves_the_persons_own_consent_alone(sqlite_engine, reached, http):
    """A carer's STOP is theirs: the admission-avoidance workflow withdraws carer updates."""
    carer, key = carer_update(sqlite_engine, reached)
    http.prefer_error = "unsubscribed"
    to_carer = replace(message(reached, key), to=carer.phone)
    with Session(sqlite_engine, expire_on_commit=False) as session, \
            pytest.raises(PermanentDeliveryError) as refused:
        channel(http).send(to_carer, session=session)
    assert refused.value.code == "21610"
    assert (attempt(sqlite_engine, key).status, attempt(sqlite_engine, key).error_code) == ("failed", "21610")
    still = person(sqlite_engine, reached.person_id)
    assert still.opted_out_at is None and still.consent_source == "confirm-details"
    assert still.phone_usable

def test_other_twilio_refusals_are_left_to_retry_and_change_nothing(sqlite_engine, reached, http):
    key = f"{reached.workflow_id}:reminder-1"
    add_attempt(sqlite_engine, reached, key=key)
    broken = TwilioChannel(account_sid="ACnot-an-account", auth_token=AUTH_TOKEN,
                           public_base_url=PUBLIC, from_number=FROM_NUMBER, http_client=http)
    with Session(sqlite_engine, expire_on_commit=False) as session, \
            pytest.raises(TwilioRestException) as refused:
        broken.send(message(reached, key), session=session)
    assert refused.value.status == 422  # Prism: the contract does not allow that AccountSid
    untouched = person(sqlite_engine, reached.person_id)
    assert untouched.phone_usable is True and untouched.opted_out_at is None
    assert attempt(sqlite_engine, key).provider_ref is None
    with Session(sqlite_engine, expire_on_commit=False) as session:  # the retry, configured right
        channel(http).send(message(reached, key), session=session)
    assert attempt(sqlite_engine, key).provider_ref.startswith("SM")


def test_no_consent_means_no_request_to_twilio(sqlite_engine, reached, http):
    with Session(sqlite_engine, expire_on_commit=False) as session:
        session.get(Person, reached.person_id).consent_to_messages = False
        session.commit()
    key = f"{reached.workflow_id}:reminder-1"
    add_attempt(sqlite_engine, reached, key=key)
    with Session(sqlite_engine, expire_on_commit=False) as session, \
            pytest.raises(PermanentDeliveryError, match="no_consent"):
        channel(http).send(message(reached, key), session=session)
    assert http.requests == []


def test_the_send_activity_through_twilio_records_the_sid_then_the_opt_out(sqlite_engine, reached, http):
    from handrail.activities.contracts import SendChannel, SendStatus, SendToPerson
    from handrail.activities.outreach import OutreachActivities

    activities = OutreachActivities(sqlite_engine, channel(http))

    def send(step: str) -> object:
        return activities.send_to_person(SendToPerson(
            key=f"{reached.workflow_id}:{step}", transition_id=reached.transition_id,
            contact_id=reached.contact_id, workflow_id=reached.workflow_id,
            person_id=reached.person_id, channel=SendChannel.sms, step=step,
            body="Community Mental Health Team: reminder. Reply YES to confirm.",
            at=datetime.now(UTC),
        ))

    first = send("reminder-1")
    assert first.status == SendStatus.sent
    assert attempt(sqlite_engine, f"{reached.workflow_id}:reminder-1").provider_ref.startswith("SM")
    assert send("reminder-1") == first and len(http.requests) == 1  # the activity retried
    http.prefer_error = "unsubscribed"
    refused = send("reminder-2")
    assert (refused.status, refused.error_code) == (SendStatus.failed_permanently, "21610")
    assert person(sqlite_engine, reached.person_id).consent_source == "twilio-21610"
    http.prefer_error = None
    assert send("ladder-0-message").status == SendStatus.skipped_opted_out
    assert len(http.requests) == 2
