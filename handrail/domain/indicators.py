"""Indicators recorded for a person and the policy's thresholds over them: pure rules.

An indicator is one observation (a missed contact, a recorded functional decline, an early
warning sign …) with the time it was observed. A proposal rule is crossed when, inside its
window, every kind it names was observed at least as often as it requires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel


class IndicatorKind(StrEnum):
    missed_contact = "missed_contact"
    functional_decline = "functional_decline"
    risk_indicator = "risk_indicator"
    medication_non_adherence = "medication_non_adherence"
    housing_instability = "housing_instability"
    early_warning_sign = "early_warning_sign"


class Observation(BaseModel):
    kind: IndicatorKind
    observed_at: datetime


class ThresholdRule(Protocol):
    """What a rule asks for: the policy's `ProposalRule` is one."""

    name: str
    window: timedelta
    requires: Mapping[IndicatorKind, int]


def counts_in_window(observations: Sequence[Observation], *, now: datetime,
                     window: timedelta) -> dict[IndicatorKind, int]:
    counts: dict[IndicatorKind, int] = {}
    for observation in observations:
        if now - window <= observation.observed_at <= now:
            counts[observation.kind] = counts.get(observation.kind, 0) + 1
    return counts


def rule_crossed(rule: ThresholdRule, observations: Sequence[Observation], *, now: datetime) -> bool:
    counts = counts_in_window(observations, now=now, window=rule.window)
    return all(counts.get(kind, 0) >= needed for kind, needed in rule.requires.items())


def crossed_rules(rules: Sequence[ThresholdRule], observations: Sequence[Observation], *,
                  now: datetime) -> list[str]:
    """The names of the rules the observations cross at `now`, in the policy's order."""
    return [rule.name for rule in rules if rule_crossed(rule, observations, now=now)]
