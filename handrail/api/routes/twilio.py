"""Twilio's webhooks: a person's SMS reply, delivery status, and the reminder call's TwiML.

Every request must carry a valid X-Twilio-Signature for the public URL Twilio called; anything
else is refused with 403 before it is read. Callbacks may repeat and arrive out of order: a
status only ever moves forward, and a failure reaches the workflow once.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status
from sqlalchemy import update
from sqlmodel import Session, col, select
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

from ...domain.consent import ReplyKind, classify_reply
from ...domain.contact import DeliveryFailure
from ...domain.messaging import format_local_time
from ...store import queries, records
from ...store.models import Contact, OutreachAttempt, Person
from ...store.types import utcnow
from ..deps import PolicyDep, SessionDep, SettingsDep, TemporalConnection
from ..replies import hand_over, signal_first_running

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks/twilio", tags=["twilio"])

VOICE_DIGITS = {"1": "YES", "2": "CALLBACK"}

# How far along each status is. A callback only ever moves an attempt forward, so a late
# "sent" after "delivered" changes nothing and a repeated one does nothing. Handrail's own
# "queued" (row written, not yet sent) and "sent" (handed to Twilio) sit at the start.
SMS_PROGRESS = {
    "queued": 1, "accepted": 1, "scheduled": 1, "sending": 3, "sent": 4,
    "delivered": 5, "undelivered": 5, "failed": 5, "canceled": 5, "read": 6,
}
CALL_PROGRESS = {
    "queued": 1, "sent": 2, "initiated": 3, "ringing": 4, "in-progress": 5,
    "completed": 6, "busy": 6, "no-answer": 6, "failed": 6, "canceled": 6,
}
SMS_FAILED = {"failed", "undelivered"}
CALL_FAILED = {"failed", "busy", "no-answer", "canceled"}


def public_url(request: Request, settings) -> str:
    """The URL Twilio called, as the public sees it (behind a proxy the host differs)."""
    query = request.url.query
    return settings.public_base_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")


async def signed_form(
    request: Request,
    settings: SettingsDep,
    x_twilio_signature: Annotated[str | None, Header()] = None,
) -> dict[str, str]:
    """The posted form, once X-Twilio-Signature proves Twilio sent it; 403 otherwise."""
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    form = await request.form()
    params = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    if not token or not x_twilio_signature or not RequestValidator(token).validate(
        public_url(request, settings), params, x_twilio_signature
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="invalid or missing Twilio signature")
    return params


TwilioForm = Annotated[dict[str, str], Depends(signed_form)]


def get_temporal_connection(request: Request) -> TemporalConnection:
    # The connection, not the client: an opt-out is recorded even while Temporal is away.
    return request.app.state.temporal


TemporalConnectionDep = Annotated[TemporalConnection, Depends(get_temporal_connection)]


def _twiml(document: object) -> Response:
    return Response(content=str(document), media_type="application/xml")


def _record_opt_change(*, session: Session, people: list[Person], opt_out: bool, keyword: str,
                       message_sid: str) -> None:
    records.record_opt_change(session=session, people=people, opt_out=opt_out, keyword=keyword,
                              channel="sms", source="twilio-sms", key=f"twilio:{message_sid}", at=utcnow())
    session.commit()


@router.post("/sms")
async def inbound_sms(form: TwilioForm, session: SessionDep, policy: PolicyDep,
                      temporal: TemporalConnectionDep) -> Response:
    """A person's text: opt-out and opt-in recorded at once, HELP left to Twilio, anything else
    stored and signalled as `person_reply` to the workflow that last reached out to them (a
    task for a person to read it when that workflow and its pathway have ended)."""
    people = list(session.exec(select(Person).where(Person.phone == form.get("From", ""))).all())
    if not people:
        return _twiml(MessagingResponse())
    reply = classify_reply(
        form.get("Body", ""), opted_out=any(p.opted_out_at is not None for p in people),
        opt_out_type=form.get("OptOutType"),
    )
    message_sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if reply.kind in (ReplyKind.opt_out, ReplyKind.opt_in):
        _record_opt_change(session=session, people=people, opt_out=reply.kind == ReplyKind.opt_out,
                           keyword=reply.keyword or "", message_sid=message_sid)
        return _twiml(MessagingResponse())
    if reply.kind == ReplyKind.help:
        return _twiml(MessagingResponse())  # Twilio answers HELP with the service's help text
    latest = session.exec(
        select(OutreachAttempt)
        .where(col(OutreachAttempt.person_id).in_([p.id for p in people]),
               col(OutreachAttempt.carer_id).is_(None))  # the person's own messages only
        .order_by(col(OutreachAttempt.created_at).desc(), col(OutreachAttempt.id).desc())
    ).first()
    if latest is not None:
        person_id, transition_id = latest.person_id, latest.transition_id
        workflow_ids = [latest.workflow_id, latest.transition_id]
    else:  # never messaged by us: kept on their latest transition, for a person to read
        recent = queries.latest_transition(session=session, person_ids=[p.id for p in people])
        person_id = recent.person_id if recent else people[0].id
        transition_id, workflow_ids = (recent.id if recent else None), []
    await hand_over(session=session, temporal=temporal, policy=policy, key=f"twilio:{message_sid}",
                    person_id=person_id, transition_id=transition_id, workflow_ids=workflow_ids,
                    channel="sms", text=form.get("Body", "").strip(),
                    message_id=latest.id if latest else None)
    return _twiml(MessagingResponse())


def _advances(channel: str, current: str, new: str) -> bool:
    progress = CALL_PROGRESS if channel == "call" else SMS_PROGRESS
    if new not in progress:
        return False
    return progress[new] > progress.get(current, 0) and current != "failed_permanently"


@router.post("/status", status_code=status.HTTP_204_NO_CONTENT)
async def delivery_status(form: TwilioForm, session: SessionDep, temporal: TemporalConnectionDep) -> Response:
    """Move the attempt's status forward; a failure is signalled once, as `delivery_failed`."""
    sid = form.get("MessageSid") or form.get("CallSid") or ""
    new = (form.get("MessageStatus") or form.get("CallStatus") or form.get("SmsStatus") or "").lower()
    attempt = session.exec(select(OutreachAttempt).where(OutreachAttempt.provider_ref == sid)).first()
    if attempt is None or not _advances(attempt.channel, attempt.status, new):
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    attempt_id, current, workflow_id = attempt.id, attempt.status, attempt.workflow_id
    previous_error = attempt.error_code
    failed = CALL_FAILED if attempt.channel == "call" else SMS_FAILED
    error_code = form.get("ErrorCode") or (new if attempt.channel == "call" and new in failed else None)
    error_code = error_code or attempt.error_code
    # Compare-and-set: of two copies of one callback arriving together, only one moves the row.
    # Committed before the signal is awaited: no write lock is held across an await.
    moved = _move_status(session, attempt_id, current, new, error_code)
    if moved and new in failed:
        try:
            await signal_first_running(temporal, [workflow_id], "delivery_failed",
                          DeliveryFailure(message_id=attempt_id, error_code=error_code))
        except HTTPException:
            # Not told: step back, so a repeated callback tries again (the workflow ignores a
            # second copy of one failure, so telling it twice is harmless).
            _move_status(session, attempt_id, new, current, previous_error)
            raise
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _move_status(session: Session, attempt_id: int | None, old: str, new: str,
                 error_code: str | None) -> bool:
    session.rollback()  # end the read: on SQLite a read turned write after another commit fails
    moved = session.execute(
        update(OutreachAttempt)
        .where(col(OutreachAttempt.id) == attempt_id, col(OutreachAttempt.status) == old)
        .values(status=new, error_code=error_code, updated_at=utcnow())
    ).rowcount
    session.commit()
    return bool(moved)


def _spoken_digits(phone: str) -> str:
    return " ".join(ch for ch in phone if ch.isdigit())


def _call_script(*, session: Session, attempt: OutreachAttempt | None, policy) -> str:
    appointment = ""
    if attempt is not None and attempt.contact_id is not None:
        contact = session.get(Contact, attempt.contact_id)
        person = session.get(Person, attempt.person_id)
        if contact is not None and person is not None:
            appointment = format_local_time(contact.appointment_at, person.time_zone)
    return policy.messages.call_script.format(
        service=policy.service_name, phone=_spoken_digits(policy.service_phone),
        time=appointment, reply="1",
    )


@router.post("/voice")
async def voice(
    request: Request, form: TwilioForm, session: SessionDep, policy: PolicyDep,
    settings: SettingsDep, temporal: TemporalConnectionDep,
    attempt_id: Annotated[int | None, Query(alias="attempt")] = None,
) -> Response:
    """The reminder call: the policy's minimum-necessary script, then one digit gathered;
    1 confirms ("YES"), 2 asks for a call back ("CALLBACK"), both signalled as `person_reply`."""
    attempt = session.get(OutreachAttempt, attempt_id) if attempt_id is not None else None
    here = public_url(request, settings)
    response = VoiceResponse()
    digits = form.get("Digits")
    if digits is None:
        response.say(_call_script(session=session, attempt=attempt, policy=policy))
        gather = Gather(num_digits=1, action=here, method="POST", timeout=8)
        gather.say("Press 1 to confirm. Press 2 to ask for a call back.")
        response.append(gather)
        response.say("We did not hear a choice. Goodbye.")
        return _twiml(response)
    if digits not in VOICE_DIGITS:
        gather = Gather(num_digits=1, action=here, method="POST", timeout=8)
        gather.say("Sorry. Press 1 to confirm. Press 2 to ask for a call back.")
        response.append(gather)
        return _twiml(response)
    if attempt is None:
        response.say(f"Please call us on {_spoken_digits(policy.service_phone)}. Goodbye.")
        response.hangup()
        return _twiml(response)
    # "Someone will call you back" is a promise: kept as a message, a task if no pathway hears.
    call_sid = form.get("CallSid") or f"attempt-{attempt.id}"
    await hand_over(session=session, temporal=temporal, policy=policy, key=f"twilio-call:{call_sid}",
                    person_id=attempt.person_id, transition_id=attempt.transition_id,
                    workflow_ids=[attempt.workflow_id, attempt.transition_id], channel="call",
                    text=VOICE_DIGITS[digits], message_id=attempt.id)
    response.say("Thank you. We will see you then. Goodbye." if digits == "1"
                 else "Thank you. Someone from the team will call you back. Goodbye.")
    response.hangup()
    return _twiml(response)
