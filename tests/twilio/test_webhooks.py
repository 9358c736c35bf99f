"""Twilio's webhooks, signed the way Twilio signs them, against a real (SQLite) store and a
Temporal stand-in that records the signals the workflows would receive."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from twilio.request_validator import RequestValidator

from handrail.api.deps import TemporalConnection
from handrail.api.routes import twilio as twilio_routes
from handrail.config import Settings
from handrail.domain.contact import DeliveryFailure, PersonReply
from handrail.store.models import AuditEvent, InboundMessage, OutreachAttempt, Person, Task
from tests.twilio.conftest import AUTH_TOKEN, PERSON_PHONE, FakeTemporal, add_attempt

PUBLIC = "https://handrail.example.org"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, id_key="test-key", policy="default", public_base_url=PUBLIC,
                    temporal_address="127.0.0.1:1", twilio_account_sid="AC" + "1f" * 16,
                    twilio_auth_token=AUTH_TOKEN, twilio_from_number="+15005550006")


@pytest.fixture
def temporal() -> FakeTemporal:
    return FakeTemporal()


def make_app(settings, engine, temporal_connection) -> FastAPI:
    app = FastAPI()
    app.include_router(twilio_routes.router)
    app.state.settings, app.state.engine = settings, engine
    app.state.policy = settings.load_policy()
    app.state.temporal = temporal_connection
    return app


@pytest.fixture
def api(settings, sqlite_engine, temporal) -> TestClient:
    app = make_app(settings, sqlite_engine, TemporalConnection(settings, client=temporal))
    with TestClient(app) as client:
        yield client


def signed(path: str, params: dict[str, str], *, token: str = AUTH_TOKEN, base: str = PUBLIC) -> dict:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(base + path, params)}


def post(api: TestClient, path: str, params: dict[str, str], **signing):
    return api.post(path, data=params, headers=signed(path, params, **signing))


def sms(body: str, **extra) -> dict[str, str]:
    return {"MessageSid": "SM" + "ab" * 16, "AccountSid": "AC" + "1f" * 16, "From": PERSON_PHONE,
            "To": "+15005550006", "Body": body, **extra}


def person(engine, person_id) -> Person:
    with Session(engine) as session:
        return session.get(Person, person_id)


def attempt_row(engine, attempt_id) -> OutreachAttempt:
    with Session(engine) as session:
        return session.get(OutreachAttempt, attempt_id)


# --- signatures --------------------------------------------------------------------------


def test_a_correctly_signed_reply_is_accepted_with_empty_twiml(api, reached, sqlite_engine, temporal):
    add_attempt(sqlite_engine, reached, key="k1", provider_ref="SM1")
    answer = post(api, "/webhooks/twilio/sms", sms("YES"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    twiml = ElementTree.fromstring(answer.text)
    assert twiml.tag == "Response" and len(twiml) == 0
    assert len(temporal.signals) == 1


WEBHOOKS = ["/webhooks/twilio/sms", "/webhooks/twilio/status", "/webhooks/twilio/voice"]


@pytest.mark.parametrize("path", WEBHOOKS)
def test_forged_altered_missing_or_misaddressed_signatures_are_refused(api, reached, sqlite_engine,
                                                                        temporal, path):
    add_attempt(sqlite_engine, reached, key="k1", provider_ref="SM" + "ab" * 16)
    params = sms("STOP", MessageStatus="failed", ErrorCode="30003", Digits="1")
    forged = api.post(path, data=params, headers=signed(path, params, token="not-the-auth-token"))
    altered = api.post(path, data={**params, "Body": "START"}, headers=signed(path, params))
    missing = api.post(path, data=params)
    elsewhere = api.post(path, data=params, headers=signed(path, params, base="http://testserver"))
    assert [r.status_code for r in (forged, altered, missing, elsewhere)] == [403, 403, 403, 403]
    assert temporal.signals == []
    assert person(sqlite_engine, reached.person_id).opted_out_at is None
    with Session(sqlite_engine) as session:
        assert session.exec(select(OutreachAttempt.status)).all() == ["queued"]


def test_without_an_auth_token_every_webhook_is_refused(settings, sqlite_engine, temporal, reached):
    unconfigured = settings.model_copy(update={"twilio_auth_token": None})
    app = make_app(unconfigured, sqlite_engine, TemporalConnection(unconfigured, client=temporal))
    with TestClient(app) as client:
        assert post(client, "/webhooks/twilio/sms", sms("STOP")).status_code == 403


# --- opt-out and opt-in --------------------------------------------------------------------


@pytest.mark.parametrize("word", ["STOP", "stop", "Unsubscribe", "END", "QUIT", "STOPALL", "REVOKE",
                                  "OPTOUT", "CANCEL"])
def test_an_opt_out_keyword_is_recorded_at_once_with_time_and_source(api, reached, sqlite_engine,
                                                                      temporal, word):
    add_attempt(sqlite_engine, reached, key="k1", provider_ref="SM1")
    before = datetime.now(UTC)
    assert post(api, "/webhooks/twilio/sms", sms(word)).status_code == 200
    opted_out = person(sqlite_engine, reached.person_id)
    assert before <= opted_out.opted_out_at <= datetime.now(UTC)
    assert opted_out.consent_source == f"sms-{word.lower()}"
    assert temporal.signals == []  # the next send is refused by the consent check instead
    with Session(sqlite_engine) as session:
        [event] = session.exec(select(AuditEvent).where(AuditEvent.person_id == reached.person_id)).all()
    assert (event.action, event.source, event.detail) == ("person.opted_out", "twilio-sms",
                                                          {"keyword": word.upper()})


def test_twilio_advanced_opt_out_type_stop_opts_out_whatever_the_words(api, reached, sqlite_engine):
    post(api, "/webhooks/twilio/sms", sms("Arrêt", OptOutType="STOP"))
    assert person(sqlite_engine, reached.person_id).opted_out_at is not None


def test_a_repeated_stop_keeps_the_time_of_the_first(api, reached, sqlite_engine):
    post(api, "/webhooks/twilio/sms", sms("STOP"))
    first = person(sqlite_engine, reached.person_id).opted_out_at
    post(api, "/webhooks/twilio/sms", sms("STOP", MessageSid="SM" + "cd" * 16))
    assert person(sqlite_engine, reached.person_id).opted_out_at == first


@pytest.mark.parametrize("word", ["START", "UNSTOP", "yes"])
def test_start_unstop_or_yes_after_an_opt_out_opts_back_in(api, reached, sqlite_engine, temporal, word):
    add_attempt(sqlite_engine, reached, key="k1", provider_ref="SM1")
    post(api, "/webhooks/twilio/sms", sms("STOP"))
    post(api, "/webhooks/twilio/sms", sms(word, MessageSid="SM" + "cd" * 16))
    back = person(sqlite_engine, reached.person_id)
    assert back.opted_out_at is None and back.consent_source == f"sms-{word.lower()}"
    assert temporal.signals == []
    # Opted back in, a YES is a confirmation again and reaches the workflow.
    post(api, "/webhooks/twilio/sms", sms("YES", MessageSid="SM" + "ef" * 16))
    assert [name for _, name, _ in temporal.signals] == ["person_reply"]


def test_help_goes_nowhere_near_the_workflow(api, reached, sqlite_engine, temporal):
    add_attempt(sqlite_engine, reached, key="k1", provider_ref="SM1")
    assert post(api, "/webhooks/twilio/sms", sms("HELP")).status_code == 200
    assert temporal.signals == []
    assert person(sqlite_engine, reached.person_id).opted_out_at is None


# --- replies to the workflow -----------------------------------------------------------------


@pytest.mark.parametrize("body", ["YES", "4", "Can we make it Thursday afternoon instead?"])
def test_a_reply_reaches_the_workflow_that_last_reached_out(api, reached, sqlite_engine, temporal, body):
    earlier = add_attempt(sqlite_engine, reached, key="k-old", provider_ref="SM1",
                          workflow_id=reached.transition_id + ".c0",
                          created_at=datetime.now(UTC) - timedelta(days=2))
    latest = add_attempt(sqlite_engine, reached, key="k-new", provider_ref="SM2")
    assert earlier != latest
    post(api, "/webhooks/twilio/sms", sms(f"  {body} "))
    [(workflow_id, name, reply)] = temporal.signals
    assert (workflow_id, name) == (reached.workflow_id, "person_reply")
    assert isinstance(reply, PersonReply)
    assert (reply.message_id, reply.text) == (latest, body)
    assert abs(reply.received_at - datetime.now(UTC)) < timedelta(seconds=5)


def test_a_reply_after_the_contact_routine_ended_goes_to_its_pathway(api, reached, sqlite_engine, temporal):
    add_attempt(sqlite_engine, reached, key="k1", provider_ref="SM1")
    temporal.closed.add(reached.workflow_id)
    post(api, "/webhooks/twilio/sms", sms("YES"))
    assert [(w, n) for w, n, _ in temporal.signals] == [(reached.transition_id, "person_reply")]


def test_a_text_from_an_unknown_number_is_answered_and_dropped(api, reached, sqlite_engine, temporal):
    add_attempt(sqlite_engine, reached, key="k1", provider_ref="SM1")
    assert post(api, "/webhooks/twilio/sms", sms("YES", From="+447700900999")).status_code == 200
    assert temporal.signals == []


def test_with_temporal_away_a_stop_is_still_recorded_and_a_reply_answers_503(
        settings, sqlite_engine, reached):
    add_attempt(sqlite_engine, reached, key="k1", provider_ref="SM1")
    app = make_app(settings, sqlite_engine, TemporalConnection(settings))  # 127.0.0.1:1: refused
    with TestClient(app) as client:
        assert post(client, "/webhooks/twilio/sms", sms("YES")).status_code == 503
        assert post(client, "/webhooks/twilio/sms", sms("STOP")).status_code == 200
    assert person(sqlite_engine, reached.person_id).opted_out_at is not None


# --- a message no workflow hears ------------------------------------------------------------


def kept(engine) -> list[InboundMessage]:
    with Session(engine) as session:
        return list(session.exec(select(InboundMessage).order_by(InboundMessage.id)).all())


def tasks(engine) -> list[Task]:
    with Session(engine) as session:
        return list(session.exec(select(Task)).all())


def test_a_reply_is_kept_as_sent_and_names_the_workflow_that_heard_it(api, reached, sqlite_engine, temporal):
    add_attempt(sqlite_engine, reached, key="k1", provider_ref="SM1")
    post(api, "/webhooks/twilio/sms", sms("Can we make it Thursday?"))
    [message] = kept(sqlite_engine)
    assert (message.body, message.channel, message.heard_by, message.task_id) == (
        "Can we make it Thursday?", "sms", reached.workflow_id, None)
    assert message.key == "twilio:SM" + "ab" * 16 and message.transition_id == reached.transition_id
    assert tasks(sqlite_engine) == []
    with Session(sqlite_engine) as session:
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "person.message_received")).all()
        assert "Thursday" not in str(event.detail)  # the text is kept once, not in the audit


def test_a_text_after_every_workflow_ended_is_an_urgent_task_however_often_twilio_repeats_it(
        api, reached, sqlite_engine, temporal):
    add_attempt(sqlite_engine, reached, key="k1", provider_ref="SM1")
    temporal.closed |= {reached.workflow_id, reached.transition_id}
    for _ in range(2):  # Twilio repeats a webhook it did not see answered
        assert post(api, "/webhooks/twilio/sms", sms("I'm not safe again")).status_code == 200
    [message] = kept(sqlite_engine)
    [task] = tasks(sqlite_engine)
    assert (message.heard_by, message.task_id) == (None, task.id)
    assert (task.kind, task.priority, task.transition_id, task.workflow_id, task.status) == (
        "read_reply", "urgent", reached.transition_id, None, "requested")
    assert task.due_at - message.received_at == timedelta(hours=4)  # the policy's unheard_reply_due
    assert "not safe" not in task.title


def test_with_temporal_away_a_reply_is_kept_and_read_by_a_person_meanwhile(settings, sqlite_engine, reached):
    add_attempt(sqlite_engine, reached, key="k1", provider_ref="SM1")
    app = make_app(settings, sqlite_engine, TemporalConnection(settings))  # 127.0.0.1:1: refused
    with TestClient(app) as client:
        assert post(client, "/webhooks/twilio/sms", sms("Feeling worse")).status_code == 503
    [message] = kept(sqlite_engine)
    [task] = tasks(sqlite_engine)
    assert message.body == "Feeling worse" and message.task_id == task.id


def test_a_text_from_a_known_number_never_messaged_is_kept_on_their_latest_transition(
        api, reached, sqlite_engine, temporal):
    post(api, "/webhooks/twilio/sms", sms("Who is this? I was told you'd call"))
    [message] = kept(sqlite_engine)
    [task] = tasks(sqlite_engine)
    assert (message.transition_id, message.task_id, task.transition_id) == (
        reached.transition_id, task.id, reached.transition_id)
    assert temporal.signals == []


def test_a_call_back_asked_for_when_nobody_listens_is_still_a_task(api, reached, sqlite_engine, temporal):
    attempt_id = add_attempt(sqlite_engine, reached, key="k1", channel="call", status="sent",
                             provider_ref="CA1")
    temporal.closed |= {reached.workflow_id, reached.transition_id}
    post(api, f"/webhooks/twilio/voice?attempt={attempt_id}", {"CallSid": "CA1", "Digits": "2"})
    [message] = kept(sqlite_engine)
    assert (message.channel, message.body, message.key) == ("call", "CALLBACK", "twilio-call:CA1")
    [task] = tasks(sqlite_engine)
    assert message.task_id == task.id and task.priority == "urgent"


# --- delivery status -------------------------------------------------------------------------


def status(sid: str, state: str, **extra) -> dict[str, str]:
    return {"MessageSid": sid, "SmsSid": sid, "MessageStatus": state, "SmsStatus": state,
            "AccountSid": "AC" + "1f" * 16, "To": PERSON_PHONE, **extra}


def test_status_callbacks_in_order_move_the_attempt_to_delivered(api, reached, sqlite_engine, temporal):
    attempt_id = add_attempt(sqlite_engine, reached, key="k1", status="sent", provider_ref="SM1")
    for state in ("sent", "delivered"):
        assert post(api, "/webhooks/twilio/status", status("SM1", state)).status_code == 204
    assert attempt_row(sqlite_engine, attempt_id).status == "delivered"
    assert temporal.signals == []


def test_a_late_sent_after_delivered_does_not_go_back(api, reached, sqlite_engine):
    attempt_id = add_attempt(sqlite_engine, reached, key="k1", status="sent", provider_ref="SM1")
    post(api, "/webhooks/twilio/status", status("SM1", "delivered"))
    post(api, "/webhooks/twilio/status", status("SM1", "sent"))
    post(api, "/webhooks/twilio/status", status("SM1", "sending"))
    assert attempt_row(sqlite_engine, attempt_id).status == "delivered"


def test_an_undelivered_message_is_signalled_once_however_often_and_late_it_comes(
        api, reached, sqlite_engine, temporal):
    attempt_id = add_attempt(sqlite_engine, reached, key="k1", status="sent", provider_ref="SM1")
    post(api, "/webhooks/twilio/status", status("SM1", "undelivered", ErrorCode="30003"))
    post(api, "/webhooks/twilio/status", status("SM1", "undelivered", ErrorCode="30003"))  # repeated
    post(api, "/webhooks/twilio/status", status("SM1", "sent"))  # out of order
    post(api, "/webhooks/twilio/status", status("SM1", "failed", ErrorCode="30005"))
    row = attempt_row(sqlite_engine, attempt_id)
    assert (row.status, row.error_code) == ("undelivered", "30003")
    assert temporal.signals == [
        (reached.workflow_id, "delivery_failed", DeliveryFailure(message_id=attempt_id, error_code="30003"))
    ]


def test_a_failed_message_after_sent_is_signalled_with_its_error_code(api, reached, sqlite_engine, temporal):
    attempt_id = add_attempt(sqlite_engine, reached, key="k1", status="sent", provider_ref="SM1")
    post(api, "/webhooks/twilio/status", status("SM1", "sent"))
    post(api, "/webhooks/twilio/status", status("SM1", "failed", ErrorCode="30006"))
    assert temporal.signals == [
        (reached.workflow_id, "delivery_failed", DeliveryFailure(message_id=attempt_id, error_code="30006"))
    ]


def test_an_unanswered_call_is_a_failed_delivery(api, reached, sqlite_engine, temporal):
    attempt_id = add_attempt(sqlite_engine, reached, key="k1", channel="call", status="sent",
                             provider_ref="CA1")
    for state in ("ringing", "no-answer", "completed"):
        post(api, "/webhooks/twilio/status", {"CallSid": "CA1", "CallStatus": state})
    assert attempt_row(sqlite_engine, attempt_id).status == "no-answer"
    assert temporal.signals == [
        (reached.workflow_id, "delivery_failed",
         DeliveryFailure(message_id=attempt_id, error_code="no-answer"))
    ]


def test_a_status_for_an_unknown_sid_changes_nothing(api, reached, sqlite_engine, temporal):
    attempt_id = add_attempt(sqlite_engine, reached, key="k1", status="sent", provider_ref="SM1")
    assert post(api, "/webhooks/twilio/status", status("SM9", "failed")).status_code == 204
    assert attempt_row(sqlite_engine, attempt_id).status == "sent" and temporal.signals == []


def test_a_failure_while_temporal_is_away_is_kept_for_the_repeat(settings, sqlite_engine, reached, temporal):
    attempt_id = add_attempt(sqlite_engine, reached, key="k1", status="sent", provider_ref="SM1")
    away = make_app(settings, sqlite_engine, TemporalConnection(settings))
    with TestClient(away) as client:
        refused = post(client, "/webhooks/twilio/status", status("SM1", "failed", ErrorCode="30003"))
        assert refused.status_code == 503
    assert attempt_row(sqlite_engine, attempt_id).status == "sent"  # not marked: not yet told
    back = make_app(settings, sqlite_engine, TemporalConnection(settings, client=temporal))
    with TestClient(back) as client:
        post(client, "/webhooks/twilio/status", status("SM1", "failed", ErrorCode="30003"))
    assert attempt_row(sqlite_engine, attempt_id).status == "failed"
    assert len(temporal.signals) == 1


async def test_two_copies_of_a_failure_arriving_together_signal_once(settings, sqlite_engine, reached,
                                                                      temporal):
    attempt_id = add_attempt(sqlite_engine, reached, key="k1", status="sent", provider_ref="SM1")
    temporal.delay = 0.2  # the second copy arrives while the first is still telling the workflow
    app = make_app(settings, sqlite_engine, TemporalConnection(settings, client=temporal))
    params = status("SM1", "failed", ErrorCode="30003")
    path = "/webhooks/twilio/status"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answers = await asyncio.wait_for(asyncio.gather(*(
            client.post(path, data=params, headers=signed(path, params)) for _ in range(2)
        )), timeout=10)
    assert [a.status_code for a in answers] == [204, 204]
    assert attempt_row(sqlite_engine, attempt_id).status == "failed"
    assert [name for _, name, _ in temporal.signals] == ["delivery_failed"]


# --- the reminder call --------------------------------------------------------------------------


def test_the_call_reads_the_minimum_necessary_script_and_gathers_one_digit(api, reached, sqlite_engine):
    attempt_id = add_attempt(sqlite_engine, reached, key="k1", channel="call", status="sent",
                             provider_ref="CA1")
    path = f"/webhooks/twilio/voice?attempt={attempt_id}"
    call = {"CallSid": "CA1", "CallStatus": "in-progress", "To": PERSON_PHONE}
    answer = post(api, path, call)
    assert answer.status_code == 200
    twiml = ElementTree.fromstring(answer.text)
    said = [element.text for element in twiml.iter("Say")]
    assert said[0].startswith("This is Community Mental Health Team.")
    assert "4 4 1 6 3 2 9 6 0 0 0 0" in said[0]  # the service's number, read digit by digit
    gather = twiml.find("Gather")
    assert gather.get("numDigits") == "1" and gather.get("action") == PUBLIC + path
    assert "Press 1 to confirm. Press 2 to ask for a call back." in said
    assert "Sam" not in answer.text and "Synthetic" not in answer.text


@pytest.mark.parametrize("digit,text", [("1", "YES"), ("2", "CALLBACK")])
def test_the_digit_pressed_becomes_the_persons_reply(api, reached, sqlite_engine, temporal, digit, text):
    attempt_id = add_attempt(sqlite_engine, reached, key="k1", channel="call", status="sent",
                             provider_ref="CA1")
    answer = post(api, f"/webhooks/twilio/voice?attempt={attempt_id}",
                  {"CallSid": "CA1", "Digits": digit, "To": PERSON_PHONE})
    [(workflow_id, name, reply)] = temporal.signals
    assert (workflow_id, name, reply.text, reply.message_id) == (
        reached.workflow_id, "person_reply", text, attempt_id)
    assert ElementTree.fromstring(answer.text).find("Hangup") is not None


def test_another_digit_asks_again_and_tells_nobody(api, reached, sqlite_engine, temporal):
    attempt_id = add_attempt(sqlite_engine, reached, key="k1", channel="call", provider_ref="CA1")
    answer = post(api, f"/webhooks/twilio/voice?attempt={attempt_id}", {"CallSid": "CA1", "Digits": "9"})
    assert ElementTree.fromstring(answer.text).find("Gather") is not None
    assert temporal.signals == []


def test_the_application_serves_the_webhooks(settings, sqlite_engine, reached, temporal):
    from handrail.api.app import create_app

    add_attempt(sqlite_engine, reached, key="k1", status="sent", provider_ref="SM1")
    app = create_app(settings, engine=sqlite_engine, temporal_client=temporal)
    with TestClient(app) as client:
        assert post(client, "/webhooks/twilio/sms", sms("5")).status_code == 200
        assert post(client, "/webhooks/twilio/status", status("SM1", "failed")).status_code == 204
        assert client.post("/webhooks/twilio/sms", data=sms("STOP")).status_code == 403  # unsigned
    assert [name for _, name, _ in temporal.signals] == ["person_reply", "delivery_failed"]
    assert "/webhooks/twilio/voice" in app.openapi()["paths"]
