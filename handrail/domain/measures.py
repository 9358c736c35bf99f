"""The outcome measures' clocks, as pure rules over plain values (no I/O, safe anywhere).

Published definitions, and how Handrail reads them:
- NHS England 72-hour follow-up: counted in elapsed hours from the discharge; a contact at
  exactly 72h00m is within, 72h01m is not.
- HEDIS FUM (follow-up after an ED visit for mental illness) for every discharge that is not
  from inpatient care: counted in calendar dates; a contact on the visit's own date counts, so
  "7 days" is the visit date plus 7 (8 dates in all) and "30 days" the visit date plus 30.
  Only the first visit of a person in a 31-day period counts, and a visit followed by an
  inpatient admission within 30 days is excluded (its follow-up is the inpatient stay's).
- HEDIS FUH (follow-up after hospitalisation) for discharges from inpatient care: a contact on
  the discharge date does not count; 7 days means dates discharge+1 … discharge+7.
- HEDIS MRP: medication reconciliation on the discharge date through the 30 days after,
  recorded by a role the policy allows. HEDIS counts inpatient discharges only; Handrail
  reconciles after every handoff, so the clock is applied to all of them.
Calendar dates are the person's own (their recorded time zone; the service's zone when it is
missing or unknown), because a "same-day" contact is the same day for the person.

A discharge whose window is still open and not yet met is `pending`: it enters no
denominator until its window closes, so this week's discharges do not drag the rates down.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SEVENTY_TWO_HOURS = timedelta(hours=72)
FUM_DEDUPLICATION_DAYS = 31  # "only the first ED visit in a 31-day period counts"
ADMISSION_LOOKAHEAD_DAYS = 30  # an ED visit followed by admission within this is excluded
MRP_DAYS = 30


class Setting(StrEnum):
    """Where the person was discharged from: picks the clock (FUM or FUH)."""

    emergency = "emergency"  # ED, crisis stabilisation, crisis line: the FUM clock
    inpatient = "inpatient"  # the FUH clock


class Discharge(NamedTuple):  # a tuple: cheap to make a hundred thousand of
    transition_id: str
    person_id: int
    discharged_at: datetime
    setting: Setting
    time_zone: str
    contacts: tuple[datetime, ...] = ()  # attended contacts, any order
    admitted_at: tuple[datetime, ...] = ()  # inpatient admissions after this visit (any transition)


@dataclass(frozen=True)
class Rate:
    """A share with everything behind it: which transitions are counted, and which are not yet."""

    numerator_ids: tuple[str, ...] = ()
    denominator_ids: tuple[str, ...] = ()
    pending_ids: tuple[str, ...] = ()
    excluded: dict[str, tuple[str, ...]] = field(default_factory=dict)  # reason → ids

    @property
    def numerator(self) -> int:
        return len(self.numerator_ids)

    @property
    def denominator(self) -> int:
        return len(self.denominator_ids)

    @property
    def rate(self) -> float | None:
        return round(self.numerator / self.denominator, 4) if self.denominator else None


@dataclass(frozen=True)
class Durations:
    """How long something took, in hours, over the transitions that have both ends."""

    hours: tuple[float, ...] = ()
    transition_ids: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.hours)

    @property
    def median(self) -> float | None:
        return median(self.hours)

    @property
    def p90(self) -> float | None:
        return percentile(self.hours, 90)


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return round(ordered[middle], 2)
    return round((ordered[middle - 1] + ordered[middle]) / 2, 2)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return round(ordered[rank - 1], 2)


@lru_cache(maxsize=512)
def zone(name: str | None, fallback: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or fallback)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


def local_date(moment: datetime, time_zone: ZoneInfo) -> date:
    return moment.astimezone(time_zone).date()


def hours_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 3600


def first_contact(discharge: Discharge) -> datetime | None:
    after = [c for c in discharge.contacts if c >= discharge.discharged_at]
    return min(after) if after else None


# --- the 72-hour standard, in hours ----------------------------------------------------------


def within_hours(discharges: Iterable[Discharge], window: timedelta, *, as_of: datetime) -> Rate:
    numerator, denominator, pending = [], [], []
    for d in discharges:
        contact = first_contact(d)
        met = contact is not None and contact - d.discharged_at <= window
        if not met and as_of - d.discharged_at <= window:
            pending.append(d.transition_id)  # the clock is still running
            continue
        denominator.append(d.transition_id)
        if met:
            numerator.append(d.transition_id)
    return Rate(tuple(numerator), tuple(denominator), tuple(pending))


def time_to_first_contact(discharges: Iterable[Discharge]) -> Durations:
    pairs = [(d.transition_id, hours_between(d.discharged_at, c))
             for d in discharges if (c := first_contact(d)) is not None]
    return Durations(tuple(h for _, h in pairs), tuple(i for i, _ in pairs))


# --- HEDIS FUM and FUH, in calendar dates -----------------------------------------------------


def follow_up_dates(setting: Setting, discharge_date: date, days: int) -> tuple[date, date]:
    """The first and last date a contact counts on: FUM includes the visit's date, FUH not."""
    first = discharge_date if setting == Setting.emergency else discharge_date + timedelta(days=1)
    return first, discharge_date + timedelta(days=days)


def hedis_eligible(discharges: Iterable[Discharge], setting: Setting, *,
                   service_zone: str) -> tuple[list[Discharge], dict[str, tuple[str, ...]]]:
    """The discharges of one setting the measure counts, and the others with why.

    FUM: drop visits followed by an admission, then keep only each person's first visit in
    any 31-day period (after that exclusion, as HEDIS orders it)."""
    chosen = sorted((d for d in discharges if d.setting == setting),
                    key=lambda d: (d.person_id, d.discharged_at, d.transition_id))
    if setting == Setting.inpatient:
        return chosen, {}
    admitted, repeated, kept = [], [], []
    last_kept: dict[int, date] = {}
    for d in chosen:
        tz = zone(d.time_zone, service_zone)
        visit = local_date(d.discharged_at, tz)
        if any(visit <= local_date(a, tz) <= visit + timedelta(days=ADMISSION_LOOKAHEAD_DAYS)
               for a in d.admitted_at):
            admitted.append(d.transition_id)
            continue
        previous = last_kept.get(d.person_id)
        if previous is not None and (visit - previous).days < FUM_DEDUPLICATION_DAYS:
            repeated.append(d.transition_id)
            continue
        last_kept[d.person_id] = visit
        kept.append(d)
    excluded = {"followed_by_admission": tuple(admitted), "repeat_visit_within_31_days": tuple(repeated)}
    return kept, {reason: ids for reason, ids in excluded.items() if ids}


def hedis_follow_up(discharges: Sequence[Discharge], setting: Setting, days: int, *,
                    as_of: datetime, service_zone: str,
                    period: tuple[datetime, datetime] | None = None) -> Rate:
    """FUM (setting emergency) or FUH (setting inpatient) at `days` (7 or 30)."""
    return hedis_follow_ups(discharges, setting, (days,), as_of=as_of, service_zone=service_zone,
                            period=period)[days]


def hedis_follow_ups(discharges: Sequence[Discharge], setting: Setting, marks: Sequence[int], *,
                     as_of: datetime, service_zone: str,
                     period: tuple[datetime, datetime] | None = None) -> dict[int, Rate]:
    """The clock at each of `marks` days, over one eligibility pass.

    `period` [start, end): the visits reported; earlier ones given only so that a visit inside
    the period is known to be a person's second within 31 days."""
    eligible, excluded = hedis_eligible(discharges, setting, service_zone=service_zone)
    if period is not None:
        start, end = period
        eligible = [d for d in eligible if start <= d.discharged_at < end]
        when = {d.transition_id: d.discharged_at for d in discharges}
        excluded = {r: kept for r, ids in excluded.items()
                    if (kept := tuple(i for i in ids if start <= when[i] < end))}
    # FUM counts from the visit's own date, FUH from the day after the discharge.
    first_offset = timedelta(0) if setting == Setting.emergency else timedelta(days=1)
    found = {days: ([], [], []) for days in marks}
    spans = [(days, timedelta(days=days), found[days]) for days in marks]
    today_in: dict[ZoneInfo, date] = {}
    for d in eligible:
        tz = zone(d.time_zone, service_zone)
        today = today_in.get(tz) or today_in.setdefault(tz, local_date(as_of, tz))
        discharge_date = local_date(d.discharged_at, tz)
        first = discharge_date + first_offset
        contact_dates = [local_date(c, tz) for c in d.contacts]
        for _days, span, (numerator, denominator, pending) in spans:
            last = discharge_date + span
            met = any(first <= c <= last for c in contact_dates)
            if not met and today <= last:
                pending.append(d.transition_id)
                continue
            denominator.append(d.transition_id)
            if met:
                numerator.append(d.transition_id)
    return {days: Rate(tuple(n), tuple(dn), tuple(p), excluded) for days, (n, dn, p) in found.items()}


# --- medication reconciliation ---------------------------------------------------------------


class Reconciliation(NamedTuple):
    transition_id: str
    discharged_at: datetime
    time_zone: str
    reconciled_at: datetime | None
    reconciled_by_role: str | None


def reconciled_within_deadline(items: Iterable[Reconciliation], deadline: timedelta, *,
                               allowed_roles: Iterable[str], as_of: datetime) -> Rate:
    """Within the policy's deadline (elapsed time from the discharge), by an allowed role."""
    roles = set(allowed_roles)
    numerator, denominator, pending = [], [], []
    for item in items:
        met = (item.reconciled_at is not None and item.reconciled_by_role in roles
               and item.reconciled_at - item.discharged_at <= deadline)
        if not met and as_of - item.discharged_at <= deadline:
            pending.append(item.transition_id)
            continue
        denominator.append(item.transition_id)
        if met:
            numerator.append(item.transition_id)
    return Rate(tuple(numerator), tuple(denominator), tuple(pending))


def reconciled_mrp(items: Iterable[Reconciliation], *, allowed_roles: Iterable[str],
                   as_of: datetime, service_zone: str) -> Rate:
    """HEDIS MRP: on the discharge date through the 30 days after (dates), by an allowed role."""
    roles = set(allowed_roles)
    numerator, denominator, pending = [], [], []
    today_in: dict[ZoneInfo, date] = {}
    for item in items:
        tz = zone(item.time_zone, service_zone)
        first = local_date(item.discharged_at, tz)
        last = first + timedelta(days=MRP_DAYS)
        met = (item.reconciled_at is not None and item.reconciled_by_role in roles
               and first <= local_date(item.reconciled_at, tz) <= last)
        today = today_in.get(tz) or today_in.setdefault(tz, local_date(as_of, tz))
        if not met and today <= last:
            pending.append(item.transition_id)
            continue
        denominator.append(item.transition_id)
        if met:
            numerator.append(item.transition_id)
    return Rate(tuple(numerator), tuple(denominator), tuple(pending))


# --- attendance, repeat crisis, step-up and step-down ----------------------------------------


def attendance(counts: Iterable[tuple[str, int, int]]) -> Rate:
    """(transition id, attended, missed) per transition: contacts attended over attended plus
    missed (DNA); cancelled and rescheduled contacts are neither. Ids repeat once per contact."""
    numerator: list[str] = []
    denominator: list[str] = []
    for transition_id, attended, missed in counts:
        numerator += [transition_id] * attended
        denominator += [transition_id] * (attended + missed)
    return Rate(tuple(numerator), tuple(denominator))


class Anchor(NamedTuple):
    """A moment after which a new crisis presentation counts as a repeat, and the person's
    next crisis presentation after it (in any team), if any."""

    transition_id: str
    person_id: int
    at: datetime
    next_presentation_at: datetime | None = None


def repeat_crisis(anchors: Iterable[Anchor], window: timedelta, *, as_of: datetime) -> Rate:
    """Anchors followed by another crisis presentation of the same person within `window`
    (strictly after the anchor, up to and including anchor + window)."""
    numerator, denominator, pending = [], [], []
    for anchor in anchors:
        following = anchor.next_presentation_at
        met = following is not None and anchor.at < following <= anchor.at + window
        if not met and as_of < anchor.at + window:
            pending.append(anchor.transition_id)
            continue
        denominator.append(anchor.transition_id)
        if met:
            numerator.append(anchor.transition_id)
    return Rate(tuple(numerator), tuple(denominator), tuple(pending))


def durations(pairs: Iterable[tuple[str, datetime | None, datetime | None]]) -> Durations:
    """(transition id, start, end): the hours of those with both ends."""
    found = [(i, hours_between(start, end)) for i, start, end in pairs
             if start is not None and end is not None]
    return Durations(tuple(h for _, h in found), tuple(i for i, _ in found))


def outcome_share(closed: Iterable[tuple[str, str | None]], outcomes: set[str]) -> Rate:
    """Closed transitions whose outcome is one of `outcomes`, over all closed ones."""
    items = list(closed)
    return Rate(tuple(i for i, outcome in items if outcome in outcomes), tuple(i for i, _ in items))
