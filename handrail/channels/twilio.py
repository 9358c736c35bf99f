"""Twilio: SMS and voice calls through the official client.

Sending is idempotent by the message's key: the outreach attempt with that key holds the SID of
what was sent, so a retried activity finds it and sends nothing. Twilio's verdicts that retrying
cannot change are recorded on the person and raised as PermanentDeliveryError:
21610 (the person texted STOP) is an opt-out; 21211 and 21614 (invalid, or not a mobile) mean the
number cannot take messages, so the workflow routes to a coordinator's call task instead.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlmodel import Session, select
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ..domain.consent import may_send, may_update_carer
from ..store.models import Carer, OutreachAttempt, Person
from ..store.types import utcnow
from .base import ChannelKind, OutboundMessage, PermanentDeliveryError, Receipt

log = logging.getLogger(__name__)

OPTED_OUT_CODES = {21610}  # "Attempt to send to unsubscribed recipient"
UNUSABLE_NUMBER_CODES = {21211, 21614}  # invalid 'To' number; 'To' is not a valid mobile number

STATUS_PATH = "/webhooks/twilio/status"
VOICE_PATH = "/webhooks/twilio/voice"


class RedirectingHttpClient(TwilioHttpClient):
    """Sends the official client's requests to a stand-in (Prism in tests): scheme and host are
    replaced, path and query kept, so the request is exactly the one Twilio would receive."""

    def __init__(self, base_url: str, **kwargs) -> None:
        super().__init__(**kwargs)
        target = urlsplit(base_url)
        self._scheme, self._netloc = target.scheme, target.netloc

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        parts = urlsplit(url)
        url = urlunsplit((self._scheme, self._netloc, parts.path, parts.query, parts.fragment))
        return super().request(method, url, params=params, data=data, headers=headers, auth=auth,
                               timeout=timeout, allow_redirects=allow_redirects)


class TwilioChannel:
    name = "twilio"

    def __init__(
        self, *, account_sid: str, auth_token: str, public_base_url: str,
        from_number: str | None = None, messaging_service_sid: str | None = None,
        http_client: TwilioHttpClient | None = None, timeout_seconds: float = 15.0,
    ) -> None:
        if not from_number and not messaging_service_sid:
            raise ValueError("TwilioChannel needs a sending number or a Messaging Service SID")
        self._from_number = from_number
        self._messaging_service_sid = messaging_service_sid
        self._public_base_url = public_base_url.rstrip("/")
        self.client = Client(
            account_sid, auth_token, http_client=http_client or TwilioHttpClient(timeout=timeout_seconds)
        )

    def send(self, message: OutboundMessage, *, session: Session) -> Receipt:
        """Send once per key. Commits the session as soon as Twilio has answered, so the SID (or
        the opt-out, or the unusable number) is on record even if the caller fails afterwards."""
        attempt = session.exec(
            select(OutreachAttempt).where(OutreachAttempt.key == message.key)
        ).first()
        if attempt is not None and attempt.provider == self.name and attempt.provider_ref:
            return Receipt(provider=self.name, provider_ref=attempt.provider_ref, status="sent")
        person = session.get(Person, message.person_id)
        if person is None:
            raise PermanentDeliveryError("no_person", f"person {message.person_id} not found")
        carer = (session.get(Carer, attempt.carer_id)
                 if attempt is not None and attempt.carer_id is not None else None)
        if carer is not None:  # an update to the person's carer: the consent to that counts
            refusal = may_update_carer(consent_given=carer.consent_given,
                                       withdrawn_at=carer.consent_withdrawn_at, phone=message.to)
        else:
            refusal = may_send(
                consent_to_messages=person.consent_to_messages, opted_out_at=person.opted_out_at,
                phone=message.to, phone_usable=person.phone_usable,
            )
        if refusal is not None:  # the activity checks first; this is the last line of defence
            raise PermanentDeliveryError(refusal.value, f"not sent: {refusal.value}")
        try:
            sid = self._create(message, attempt)
        except TwilioRestException as err:
            self._record_refusal(err, person=person, attempt=attempt, session=session)
            raise  # anything else (rate limits, outages) retries under the activity's policy
        if attempt is not None:
            attempt.provider = self.name
            attempt.provider_ref = sid
            attempt.status = "sent"
            attempt.updated_at = utcnow()
            session.add(attempt)
            session.commit()
        log.info("twilio %s sent for key %s: %s", message.kind.value, message.key, sid)
        return Receipt(provider=self.name, provider_ref=sid, status="sent")

    def _create(self, message: OutboundMessage, attempt: OutreachAttempt | None) -> str:
        status_callback = self._public_base_url + STATUS_PATH
        if message.kind == ChannelKind.call:
            if not self._from_number:
                raise PermanentDeliveryError("no_caller_id", "calls need TWILIO_FROM_NUMBER")
            query = urlencode({"attempt": attempt.id}) if attempt is not None and attempt.id else ""
            call = self.client.calls.create(
                to=message.to, from_=self._from_number,
                url=self._public_base_url + VOICE_PATH + (f"?{query}" if query else ""),
                method="POST", status_callback=status_callback, status_callback_method="POST",
            )
            return call.sid
        sender = (
            {"messaging_service_sid": self._messaging_service_sid}
            if self._messaging_service_sid else {"from_": self._from_number}
        )
        sms = self.client.messages.create(
            to=message.to, body=message.body, status_callback=status_callback, **sender
        )
        return sms.sid

    def _record_refusal(self, err: TwilioRestException, *, person: Person,
                        attempt: OutreachAttempt | None, session: Session) -> None:
        code = err.code
        if code not in OPTED_OUT_CODES and code not in UNUSABLE_NUMBER_CODES:
            return
        now = utcnow()
        if attempt is not None and attempt.carer_id is not None:
            pass  # the carer's number, not the person's: the workflow withdraws carer updates
        elif code in OPTED_OUT_CODES:
            # Twilio knows of an opt-out Handrail missed: record it as the person's word.
            person.opted_out_at = person.opted_out_at or now
            person.consent_source = f"twilio-{code}"
            person.consent_recorded_at = now
        else:
            person.phone_usable = False
        person.updated_at = now
        session.add(person)
        if attempt is not None:
            attempt.status = "failed"
            attempt.error_code = str(code)
            attempt.updated_at = now
            session.add(attempt)
        session.commit()
        log.warning("twilio refused person %s permanently: error %s", person.id, code)
        raise PermanentDeliveryError(str(code), f"Twilio error {code}") from err
