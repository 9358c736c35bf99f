"""Sending to a person: consent checked at the moment of sending, one attempt per step."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio import activity

from ..channels.base import Channel, ChannelKind, OutboundMessage, PermanentDeliveryError
from ..domain.consent import SendRefusal, may_send, may_update_carer, next_send_time_under_cap
from ..store import records
from ..store.db import session_scope
from ..store.models import Carer, OutreachAttempt, Person
from .contracts import SendChannel, SendResult, SendStatus, SendToPerson

_SKIPPED = {SendRefusal.opted_out: SendStatus.skipped_opted_out,
            SendRefusal.no_consent: SendStatus.skipped_no_consent,
            SendRefusal.no_number: SendStatus.skipped_no_number}


def _refusal(person: Person) -> SendStatus | None:
    refusal = may_send(consent_to_messages=person.consent_to_messages,
                       opted_out_at=person.opted_out_at, phone=person.phone,
                       phone_usable=person.phone_usable)
    return None if refusal is None else _SKIPPED[refusal]


def _carer_refusal(carer: Carer | None) -> SendStatus | None:
    # The person's consent to keep this carer informed, as it stands at the moment of sending.
    if carer is None:
        return SendStatus.skipped_no_consent
    refusal = may_update_carer(consent_given=carer.consent_given,
                               withdrawn_at=carer.consent_withdrawn_at, phone=carer.phone)
    return None if refusal is None else _SKIPPED[refusal]


# Attempts that reached the person's phone (or are on their way) count towards the cap.
_COUNTED = ("sent", "delivered", "queued_at_provider", "sending", "undelivered")


class OutreachActivities:
    def __init__(self, engine: Engine, channel: Channel) -> None:
        self._engine = engine
        self._channel = channel

    @activity.defn
    def send_to_person(self, request: SendToPerson) -> SendResult:
        with session_scope(self._engine) as session:
            done = session.exec(select(OutreachAttempt).where(OutreachAttempt.key == request.key)).first()
            if done is not None and done.status != "queued":
                # A retry after the send: answer what happened the first time, send nothing.
                outbox_id = done.provider_ref if done.provider == "outbox" else None
                return SendResult(
                    status=SendStatus(done.status) if done.status in SendStatus.__members__
                    else SendStatus.sent,
                    attempt_id=done.id,
                    message_id=int(outbox_id) if outbox_id else None,
                    error_code=done.error_code,
                )
            person = session.get(Person, request.person_id)
            if person is None:
                raise RuntimeError(f"person {request.person_id} missing")
            carer = (session.exec(select(Carer).where(Carer.person_id == person.id)).first()
                     if request.to_carer else None)
            attempt = done or records.record_attempt(session=session, attempt=OutreachAttempt(
                key=request.key, transition_id=request.transition_id, contact_id=request.contact_id,
                workflow_id=request.workflow_id, person_id=person.id, step=request.step,
                channel=request.channel.value, status="queued", created_at=request.at,
                updated_at=request.at, carer_id=carer.id if carer else None,
            ))
            refusal = _carer_refusal(carer) if request.to_carer else _refusal(person)
            if refusal is not None:
                attempt.status = refusal.value
                session.add(attempt)
                records.append_event(
                    session=session, key=f"{request.key}:skipped", at=request.at,
                    action="outreach.skipped", transition_id=request.transition_id,
                    person_id=person.id, detail={"step": request.step, "reason": refusal.value},
                )
                return SendResult(status=refusal, attempt_id=attempt.id)
            if request.channel == SendChannel.sms and request.frequency_cap is not None:
                not_before = self._cap_allows_at(session, person.id, request,
                                                 carer_id=carer.id if carer else None)
                if not_before > request.at:
                    return SendResult(status=SendStatus.deferred, attempt_id=attempt.id,
                                      not_before=not_before)
            try:
                receipt = self._channel.send(OutboundMessage(
                    key=request.key, kind=ChannelKind(request.channel.value),
                    to=carer.phone if carer is not None else person.phone,
                    body=request.body, person_id=person.id, transition_id=request.transition_id,
                    workflow_id=request.workflow_id, at=request.at,
                ), session=session)
            except PermanentDeliveryError as err:
                attempt.status = SendStatus.failed_permanently.value
                attempt.error_code = err.code
                session.add(attempt)
                records.append_event(
                    session=session, key=f"{request.key}:failed", at=request.at,
                    action="outreach.failed", transition_id=request.transition_id,
                    person_id=person.id, detail={"step": request.step, "error_code": err.code},
                )
                return SendResult(status=SendStatus.failed_permanently, attempt_id=attempt.id,
                                  error_code=err.code)
            attempt.status = SendStatus.sent.value
            attempt.provider = receipt.provider
            attempt.provider_ref = receipt.provider_ref
            attempt.updated_at = request.at
            session.add(attempt)
            records.append_event(
                session=session, key=f"{request.key}:sent", at=request.at, action="outreach.sent",
                transition_id=request.transition_id, person_id=person.id,
                detail={"step": request.step, "channel": request.channel.value,
                        "provider": receipt.provider, "attempt_id": attempt.id},
            )
            return SendResult(
                status=SendStatus.sent, attempt_id=attempt.id,
                message_id=int(receipt.provider_ref) if receipt.provider == "outbox" else None,
            )

    def _cap_allows_at(self, session, person_id: int, request: SendToPerson,
                       carer_id: int | None) -> datetime:
        """The cap counts each recipient's own messages: the person's, or their carer's (a run
        of texts on a carer's phone says as much to whoever sees it)."""
        cap = request.frequency_cap
        assert cap is not None
        recipient = (col(OutreachAttempt.carer_id).is_(None) if carer_id is None
                     else col(OutreachAttempt.carer_id) == carer_id)
        earlier = session.exec(
            select(OutreachAttempt.updated_at).where(
                OutreachAttempt.person_id == person_id,
                OutreachAttempt.channel == SendChannel.sms.value,
                OutreachAttempt.key != request.key,
                recipient,
                col(OutreachAttempt.status).in_(_COUNTED),
                OutreachAttempt.updated_at > request.at - cap.window,
            )
        ).all()
        return next_send_time_under_cap(request.at, earlier_sends=earlier, cap=cap,
                                        is_reply=request.is_reply)
