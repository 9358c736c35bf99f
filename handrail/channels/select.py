"""Which channel this deployment sends through: Twilio when it is configured, else the outbox."""

from __future__ import annotations

import logging

from twilio.http.http_client import TwilioHttpClient

from ..config import Settings
from .base import Channel
from .outbox import OutboxChannel
from .twilio import TwilioChannel

log = logging.getLogger(__name__)


def twilio_configured(settings: Settings) -> bool:
    return bool(
        settings.twilio_account_sid
        and settings.twilio_auth_token is not None
        and settings.twilio_auth_token.get_secret_value()
        and (settings.twilio_from_number or settings.twilio_messaging_service_sid)
    )


def select_channel(settings: Settings, *, http_client: TwilioHttpClient | None = None) -> Channel:
    """Twilio with TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and a sending number or Messaging
    Service SID; otherwise every message goes to the outbox, visible in the console."""
    if not twilio_configured(settings):
        if settings.twilio_account_sid or settings.twilio_auth_token is not None:
            log.warning("Twilio is partly configured (needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN "
                        "and TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID): using the outbox")
        return OutboxChannel()
    assert settings.twilio_account_sid is not None and settings.twilio_auth_token is not None
    return TwilioChannel(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        from_number=settings.twilio_from_number,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        public_base_url=settings.public_base_url,
        http_client=http_client,
    )


channel_from_settings = select_channel  # the name worker.run_worker imports
