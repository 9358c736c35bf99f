"""Twilio only when it is fully configured; otherwise every message goes to the outbox."""

from __future__ import annotations

import pytest

from handrail.channels.outbox import OutboxChannel
from handrail.channels.select import select_channel
from handrail.channels.twilio import TwilioChannel
from handrail.config import Settings

SID = "AC" + "1f" * 16


@pytest.fixture(autouse=True)
def no_twilio_environment(monkeypatch):
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER",
                 "TWILIO_MESSAGING_SERVICE_SID"):
        monkeypatch.delenv(name, raising=False)


def test_without_credentials_messages_go_to_the_outbox():
    assert isinstance(select_channel(Settings()), OutboxChannel)


@pytest.mark.parametrize("partial", [
    {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "token"},  # nothing to send from
    {"TWILIO_ACCOUNT_SID": SID, "TWILIO_FROM_NUMBER": "+15005550006"},  # no token
    {"TWILIO_AUTH_TOKEN": "token", "TWILIO_FROM_NUMBER": "+15005550006"},  # no account
])
def test_partly_configured_twilio_falls_back_to_the_outbox(monkeypatch, partial):
    for name, value in partial.items():
        monkeypatch.setenv(name, value)
    assert isinstance(select_channel(Settings()), OutboxChannel)


@pytest.mark.parametrize("sender", [
    {"TWILIO_FROM_NUMBER": "+15005550006"}, {"TWILIO_MESSAGING_SERVICE_SID": "MG" + "2e" * 16},
])
def test_twilio_from_its_own_environment_variables(monkeypatch, sender):
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token")
    for name, value in sender.items():
        monkeypatch.setenv(name, value)
    channel = select_channel(Settings(public_base_url="https://handrail.example.org"))
    assert isinstance(channel, TwilioChannel)
    assert channel.client.username == SID
