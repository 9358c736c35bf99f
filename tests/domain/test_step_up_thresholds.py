"""The step-up proposal rules: pure functions over recorded indicators, driven by the policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handrail.domain.indicators import IndicatorKind, Observation, crossed_rules
from handrail.domain.policy import PolicyError, parse_policy

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICIES = Path(__file__).resolve().parents[2] / "policies"
RULES = parse_policy((POLICIES / "default.toml").read_text()).step_up.proposal_rules
MISSED, DECLINE = IndicatorKind.missed_contact, IndicatorKind.functional_decline


def seen(kind: IndicatorKind, days_ago: float) -> Observation:
    return Observation(kind=kind, observed_at=NOW - timedelta(days=days_ago))


def test_two_missed_contacts_in_28_days_with_a_functional_decline_cross_the_default_rule():
    observations = [seen(MISSED, 20), seen(MISSED, 2), seen(DECLINE, 5)]
    assert crossed_rules(RULES, observations, now=NOW) == ["missed contacts with functional decline"]


@pytest.mark.parametrize("observations", [
    [seen(MISSED, 20), seen(MISSED, 2)],  # no decline recorded
    [seen(MISSED, 2), seen(DECLINE, 5)],  # one miss only
    [seen(MISSED, 29), seen(MISSED, 2), seen(DECLINE, 5)],  # the first miss is outside 28 days
    [seen(MISSED, 2), seen(MISSED, 1), seen(DECLINE, -1)],  # a decline "in the future" counts not
    [],
], ids=["no-decline", "one-miss", "outside-window", "future", "nothing"])
def test_indicators_short_of_every_rule_cross_none(observations):
    assert crossed_rules(RULES, observations, now=NOW) == []


def test_three_missed_contacts_cross_on_their_own_and_rules_are_named_in_policy_order():
    observations = [seen(MISSED, 3), seen(MISSED, 2), seen(MISSED, 1), seen(DECLINE, 1)]
    assert crossed_rules(RULES, observations, now=NOW) == [
        "missed contacts with functional decline", "repeated missed contacts"]


def test_a_rule_with_an_unknown_indicator_or_a_zero_count_is_refused():
    text = (POLICIES / "default.toml").read_text()
    bad_kind = text.replace("requires = { missed_contact = 3 }", "requires = { missed_call = 3 }")
    with pytest.raises(PolicyError, match=r"step_up\.proposal_rules\[1\]\.requires"):
        parse_policy(bad_kind)
    zero = text.replace("requires = { missed_contact = 3 }", "requires = { missed_contact = 0 }")
    with pytest.raises(PolicyError, match="at least 1"):
        parse_policy(zero)


def test_the_seconds_policy_shrinks_every_step_up_window_and_keeps_the_ladder():
    seconds = parse_policy((POLICIES / "seconds.toml").read_text()).step_up
    assert seconds.decision_due_urgent < seconds.decision_due_routine <= timedelta(seconds=30)
    assert [level.role.value for level in seconds.escalation_ladder] == ["clinical_lead",
                                                                         "on_call_senior"]
    assert seconds.period <= timedelta(seconds=30)


def test_a_policy_without_a_step_up_section_is_refused_at_start_up():
    text = (POLICIES / "default.toml").read_text()
    start = text.index("[step_up]")
    end = text.index("# Minimum necessary")
    with pytest.raises(PolicyError, match="step_up: Field required"):
        parse_policy(text[:start] + text[end:])
