"""The step-down taper's arithmetic: plain values in, plain values out (no I/O, no clock).

A taper is a list of planned contacts, each `every` after the one before it (the first after
the start) with a `window` either side of its date. The workflow keeps the contacts still to
come and an anchor (the date the next interval counts from); adjustments rewrite that list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

from .policy import StabilizationCriterion, TaperPhase, WarningSeverity


class PlannedContact(BaseModel):
    """One contact still to come: how long after the previous one, and its window."""

    every: timedelta
    window: timedelta


@dataclass(frozen=True)
class ContactWindow:
    not_before: datetime
    appointment_at: datetime
    due_at: datetime


def planned_contacts(schedule: Sequence[TaperPhase]) -> list[PlannedContact]:
    """The policy's phases as one contact after another (weekly ×4 is four contacts)."""
    return [PlannedContact(every=phase.every, window=phase.window)
            for phase in schedule for _ in range(phase.contacts)]


def contact_window(anchor: datetime, planned: PlannedContact) -> ContactWindow:
    appointment = anchor + planned.every
    return ContactWindow(not_before=appointment - planned.window, appointment_at=appointment,
                         due_at=appointment + planned.window)


def taper_dates(start: datetime, remaining: Sequence[PlannedContact]) -> list[datetime]:
    """Every remaining contact's date if nothing changes: what the plan shows the person."""
    dates, anchor = [], start
    for planned in remaining:
        anchor += planned.every
        dates.append(anchor)
    return dates


class AdjustmentKind(StrEnum):
    slower = "slower"  # stay longer at the current frequency
    faster = "faster"  # move on sooner: fewer contacts before discharge
    pause = "pause"  # no contact until a date (a holiday, an admission elsewhere)
    resume = "resume"  # end a pause early


def slower(remaining: Sequence[PlannedContact], *, by: int,
           current: PlannedContact | None) -> list[PlannedContact]:
    """`by` more contacts at the frequency the person is at now (the contact in progress, or
    the next one when none is)."""
    at_now = current or (remaining[0] if remaining else None)
    if at_now is None:
        return list(remaining)
    return [at_now.model_copy() for _ in range(by)] + list(remaining)


def faster(remaining: Sequence[PlannedContact], *, by: int,
           keep_at_least: int) -> list[PlannedContact]:
    """Drop the next `by` contacts, never fewer than `keep_at_least` left (a taper still ends
    with a contact, not with silence)."""
    drop = max(0, min(by, len(remaining) - keep_at_least))
    return list(remaining[drop:])


def anchor_after_pause(anchor: datetime, paused_until: datetime) -> datetime:
    """After a pause the next interval counts from its end, never from before it."""
    return max(anchor, paused_until)


def missing_criteria(criteria: Sequence[StabilizationCriterion], confirmed: Sequence[str],
                     overridden: Mapping[str, str]) -> list[str]:
    """The criteria neither confirmed nor overridden with a reason, in the policy's order."""
    reasons = {name for name, reason in overridden.items() if reason.strip()}
    return [c.name for c in criteria if c.name not in confirmed and c.name not in reasons]


def unknown_criteria(criteria: Sequence[StabilizationCriterion], named: Sequence[str]) -> list[str]:
    known = {c.name for c in criteria}
    return sorted(set(named) - known)


_SEVERITY_ORDER = list(WarningSeverity)


def at_or_above(severity: WarningSeverity, threshold: WarningSeverity) -> bool:
    return _SEVERITY_ORDER.index(severity) >= _SEVERITY_ORDER.index(threshold)


def rating_is_warning(rating: int | None, at_or_below: int) -> bool:
    """A check-in rating the policy reads as an early warning sign (0 switches it off)."""
    return rating is not None and rating <= at_or_below


def review_due_after_misses(consecutive_misses: int, threshold: int) -> bool:
    """A review each time the run of misses reaches the threshold (2, then 4 …)."""
    return consecutive_misses > 0 and consecutive_misses % threshold == 0


def check_in_times(discharged_at: datetime, after: Sequence[timedelta]) -> list[datetime]:
    return [discharged_at + offset for offset in sorted(after)]


def check_in_reply_is_good(*, confirmed: bool, rating: int | None, good_at_or_above: int) -> bool:
    """A check-in answer that needs nobody to call: a good rating, or a plain YES."""
    return confirmed or (rating is not None and rating >= good_at_or_above)
