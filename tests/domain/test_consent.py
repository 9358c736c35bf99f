"""Consent, opt-out keywords, reply classification and frequency caps: the pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handrail.config import Settings
from handrail.domain.consent import (
    ReplyKind,
    SendRefusal,
    classify_reply,
    may_send,
    next_send_time_under_cap,
    within_cap,
)
from handrail.domain.policy import FrequencyCap, PolicyError, parse_policy

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
DEFAULT_CAP = FrequencyCap()  # 3 per rolling 24 h, an hour apart


@pytest.mark.parametrize(
    "text", ["STOP", "stop", " Stop. ", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "REVOKE",
             "OPTOUT", "CANCEL", "cancel!"],
)
def test_every_twilio_opt_out_keyword_opts_out(text):
    reply = classify_reply(text, opted_out=False)
    assert reply.kind == ReplyKind.opt_out
    assert reply.keyword == text.strip().strip(".!").upper()


def test_a_sentence_that_contains_stop_is_free_text_for_the_owner():
    assert classify_reply("I can't stop worrying about Tuesday", opted_out=False).kind == ReplyKind.free_text


def test_twilio_advanced_opt_out_verdict_wins_over_the_words():
    assert classify_reply("arrêter", opted_out=False, opt_out_type="STOP").kind == ReplyKind.opt_out
    assert classify_reply("go on", opted_out=True, opt_out_type="START").kind == ReplyKind.opt_in
    assert classify_reply("what is this", opted_out=False, opt_out_type="HELP").kind == ReplyKind.help


@pytest.mark.parametrize("text", ["START", "unstop", "Yes"])
def test_start_unstop_or_yes_after_an_opt_out_opts_back_in(text):
    assert classify_reply(text, opted_out=True).kind == ReplyKind.opt_in


def test_yes_without_an_opt_out_confirms_and_start_still_opts_in():
    assert classify_reply("yes", opted_out=False).kind == ReplyKind.yes
    assert classify_reply("Y", opted_out=False).kind == ReplyKind.yes
    assert classify_reply("START", opted_out=False).kind == ReplyKind.opt_in


def test_no_help_callback_and_free_text():
    assert classify_reply("No", opted_out=False).kind == ReplyKind.no
    assert classify_reply("help", opted_out=False).kind == ReplyKind.help
    assert classify_reply("CALLBACK", opted_out=False).kind == ReplyKind.callback
    assert classify_reply("Can we make it Thursday?", opted_out=False).kind == ReplyKind.free_text
    assert classify_reply("", opted_out=False).kind == ReplyKind.free_text


@pytest.mark.parametrize("text,rating", [("1", 1), ("3", 3), (" 5 ", 5), ("4.", 4)])
def test_a_single_digit_one_to_five_is_a_rating(text, rating):
    reply = classify_reply(text, opted_out=False)
    assert (reply.kind, reply.rating) == (ReplyKind.rating, rating)


@pytest.mark.parametrize("text", ["0", "6", "10", "55"])
def test_other_numbers_are_free_text(text):
    assert classify_reply(text, opted_out=False).kind == ReplyKind.free_text


def test_may_send_only_with_consent_no_opt_out_and_a_usable_number():
    ok = dict(consent_to_messages=True, opted_out_at=None, phone="+447700900123", phone_usable=True)
    assert may_send(**ok) is None
    assert may_send(**{**ok, "consent_to_messages": False}) == SendRefusal.no_consent
    assert may_send(**{**ok, "opted_out_at": T0}) == SendRefusal.opted_out
    assert may_send(**{**ok, "phone": None}) == SendRefusal.no_number
    assert may_send(**{**ok, "phone_usable": False}) == SendRefusal.no_number
    # An opt-out outranks a consent recorded before it.
    assert may_send(**{**ok, "opted_out_at": T0, "consent_to_messages": True}) == SendRefusal.opted_out


def test_first_message_goes_at_once():
    assert next_send_time_under_cap(T0, earlier_sends=[], cap=DEFAULT_CAP) == T0


def test_a_second_message_within_the_hour_waits_for_the_hour():
    earlier = [T0 - timedelta(minutes=20)]
    assert next_send_time_under_cap(T0, earlier_sends=earlier, cap=DEFAULT_CAP) == T0 + timedelta(minutes=40)
    assert not within_cap(T0, earlier_sends=earlier, cap=DEFAULT_CAP)


def test_a_reply_to_the_person_skips_the_hour_but_counts_in_the_day():
    earlier = [T0 - timedelta(minutes=5)]
    assert within_cap(T0, earlier_sends=earlier, cap=DEFAULT_CAP, is_reply=True)
    three = [T0 - timedelta(hours=h) for h in (1, 5, 9)]
    assert next_send_time_under_cap(T0, earlier_sends=three, cap=DEFAULT_CAP, is_reply=True) == (
        T0 - timedelta(hours=9) + timedelta(days=1)
    )


def test_a_fourth_message_in_24_hours_waits_until_the_oldest_leaves_the_window():
    three = [T0 - timedelta(hours=h) for h in (2, 6, 20)]
    allowed = next_send_time_under_cap(T0, earlier_sends=three, cap=DEFAULT_CAP)
    assert allowed == T0 + timedelta(hours=4)  # the one 20 h ago is 24 h old then
    # And the cap holds at that moment: only two of the three are still inside the window.
    assert within_cap(allowed, earlier_sends=three, cap=DEFAULT_CAP)
    assert not within_cap(allowed - timedelta(seconds=1), earlier_sends=three, cap=DEFAULT_CAP)


def test_messages_sent_at_the_times_the_cap_allows_never_break_it():
    sends: list[datetime] = []
    at = T0
    for _ in range(12):  # a pathway asking to send every 10 minutes for two hours
        sent_at = next_send_time_under_cap(at, earlier_sends=sends, cap=DEFAULT_CAP)
        sends.append(sent_at)
        at += timedelta(minutes=10)
    for index, sent_at in enumerate(sends):
        in_window = [s for s in sends if sent_at - timedelta(days=1) < s <= sent_at]
        assert len(in_window) <= 3
        if index:
            assert sent_at - sends[index - 1] >= timedelta(hours=1)


def test_no_cap_means_no_waiting():
    assert next_send_time_under_cap(T0, earlier_sends=[T0] * 10, cap=None) == T0


def test_both_shipped_policies_carry_a_frequency_cap():
    default = Settings(policy="default").load_policy().messaging.frequency_cap
    assert default == FrequencyCap(window=timedelta(days=1), max_in_window=3, min_gap=timedelta(hours=1))
    seconds = Settings(policy="seconds").load_policy().messaging.frequency_cap
    assert seconds is not None and seconds.window == timedelta(seconds=60)


def test_a_policy_without_messaging_gets_the_default_cap_and_off_switches_it_off():
    text = Settings(policy="default").policy_path().read_text()
    before_messaging = text.split("[messaging]\n")[0]
    after_cap = text.split('min_gap = "PT1H"\n', 1)[1]
    without = parse_policy(before_messaging + after_cap)
    assert without.messaging.frequency_cap == FrequencyCap()
    assert without.messaging.unheard_reply_due == timedelta(hours=4)
    off = parse_policy(before_messaging + '[messaging]\nfrequency_cap = "off"\n' + after_cap)
    assert off.messaging.frequency_cap is None


def test_an_invalid_cap_is_refused_naming_the_field():
    text = Settings(policy="default").policy_path().read_text().replace(
        "max_in_window = 3", "max_in_window = 0"
    )
    with pytest.raises(PolicyError, match=r"messaging\.frequency_cap\.max_in_window"):
        parse_policy(text)
