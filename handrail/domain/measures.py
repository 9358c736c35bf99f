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
from collections.abc import Collection, Iterable, Sequence
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


# --- one transition's clock, and a rate over many ---------------------------------------------

RESOLUTION = timedelta(microseconds=1)  # the finest step of a recorded moment


class Clock(NamedTuple):
    """One measure's clock for one transition, independent of when it is read: whether its
    window was met, and the first moment at which the window is closed. Read at `as_of`, a
    clock not met is pending while as_of < closes_at, and counted as not met from then on."""

    met: bool
    closes_at: datetime


def local_midnight(day: date, time_zone: ZoneInfo) -> datetime:
    """The start of a calendar date in a zone: where a window counted in dates closes."""
    return datetime.combine(day, datetime.min.time(), tzinfo=time_zone)


def rate(clocks: Iterable[tuple[str, Clock]], *, as_of: datetime,
         excluded: dict[str, tuple[str, ...]] | None = None) -> Rate:
    """Every figure's arithmetic: met clocks are the numerator; met and closed ones the
    denominator; open ones not met yet are pending and enter neither."""
    numerator, denominator, pending = [], [], []
    for transition_id, clock in clocks:
        if not clock.met and as_of < clock.closes_at:
            pending.append(transition_id)
            continue
        denominator.append(transition_id)
        if clock.met:
            numerator.append(transition_id)
    return Rate(tuple(numerator), tuple(denominator), tuple(pending), excluded or {})


# --- the 72-hour standard, in hours ----------------------------------------------------------


def hours_clock(d: Discharge, window: timedelta) -> Clock:
    """A first contact up to and including discharge + window (72h00m is within)."""
    contact = first_contact(d)
    met = contact is not None and contact - d.discharged_at <= window
    return Clock(met, d.discharged_at + window + RESOLUTION)


def within_hours(discharges: Iterable[Discharge], window: timedelta, *, as_of: datetime) -> Rate:
    return rate(((d.transition_id, hours_clock(d, window)) for d in discharges), as_of=as_of)


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
    clocks = {d.transition_id: follow_up_clocks(d, marks, service_zone=service_zone)
              for d in eligible}
    return {days: rate(((i, found[days]) for i, found in clocks.items()), as_of=as_of,
                       excluded=excluded) for days in marks}


def follow_up_clocks(d: Discharge, marks: Sequence[int], *, service_zone: str) -> dict[int, Clock]:
    """FUM or FUH (by the discharge's setting) at each of `marks` days, in the person's dates:
    FUM counts from the visit's own date, FUH from the day after the discharge."""
    tz = zone(d.time_zone, service_zone)
    discharge_date = local_date(d.discharged_at, tz)
    first = discharge_date + (timedelta(0) if d.setting == Setting.emergency else timedelta(days=1))
    contact_dates = [local_date(c, tz) for c in d.contacts]
    clocks = {}
    for days in marks:
        last = discharge_date + timedelta(days=days)
        clocks[days] = Clock(any(first <= c <= last for c in contact_dates),
                             local_midnight(last + timedelta(days=1), tz))
    return clocks


# --- medication reconciliation ---------------------------------------------------------------


class Reconciliation(NamedTuple):
    transition_id: str
    discharged_at: datetime
    time_zone: str
    reconciled_at: datetime | None
    reconciled_by_role: str | None


def deadline_clock(item: Reconciliation, deadline: timedelta, *, allowed_roles: Collection[str]) -> Clock:
    """Within the policy's deadline (elapsed time from the discharge), by an allowed role."""
    met = (item.reconciled_at is not None and item.reconciled_by_role in allowed_roles
           and item.reconciled_at - item.discharged_at <= deadline)
    return Clock(met, item.discharged_at + deadline + RESOLUTION)


def mrp_window_clock(item: Reconciliation, *, service_zone: str) -> Clock:
    """HEDIS MRP's dates, whoever reconciled: the discharge date through the 30 days after.
    Met only when the reconciler's role is also allowed (see `reconciled_mrp`)."""
    tz = zone(item.time_zone, service_zone)
    first = local_date(item.discharged_at, tz)
    last = first + timedelta(days=MRP_DAYS)
    met = item.reconciled_at is not None and first <= local_date(item.reconciled_at, tz) <= last
    return Clock(met, local_midnight(last + timedelta(days=1), tz))


def reconciled_within_deadline(items: Iterable[Reconciliation], deadline: timedelta, *,
                               allowed_roles: Iterable[str], as_of: datetime) -> Rate:
    roles = set(allowed_roles)
    return rate(((i.transition_id, deadline_clock(i, deadline, allowed_roles=roles)) for i in items),
                as_of=as_of)


def reconciled_mrp(items: Iterable[Reconciliation], *, allowed_roles: Iterable[str],
                   as_of: datetime, service_zone: str) -> Rate:
    """HEDIS MRP: on the discharge date through the 30 days after (dates), by an allowed role."""
    roles = set(allowed_roles)

    def clock(item: Reconciliation) -> Clock:
        window = mrp_window_clock(item, service_zone=service_zone)
        return window._replace(met=window.met and item.reconciled_by_role in roles)

    return rate(((i.transition_id, clock(i)) for i in items), as_of=as_of)


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


def repeat_clock(anchor: Anchor, window: timedelta) -> Clock:
    """Another crisis presentation of the same person strictly after the anchor, up to and
    including anchor + window."""
    following = anchor.next_presentation_at
    met = following is not None and anchor.at < following <= anchor.at + window
    return Clock(met, anchor.at + window)


def repeat_crisis(anchors: Iterable[Anchor], window: timedelta, *, as_of: datetime) -> Rate:
    return rate(((a.transition_id, repeat_clock(a, window)) for a in anchors), as_of=as_of)


def durations(pairs: Iterable[tuple[str, datetime | None, datetime | None]]) -> Durations:
    """(transition id, start, end): the hours of those with both ends."""
    found = [(i, hours_between(start, end)) for i, start, end in pairs
             if start is not None and end is not None]
    return Durations(tuple(h for _, h in found), tuple(i for i, _ in found))


def share(items: Iterable[tuple[str, bool]]) -> Rate:
    """(transition id, counted) pairs: the counted ones over all of them."""
    listed = list(items)
    return Rate(tuple(i for i, counted in listed if counted), tuple(i for i, _ in listed))


def outcome_share(closed: Iterable[tuple[str, str | None]], outcomes: set[str]) -> Rate:
    """Closed transitions whose outcome is one of `outcomes`, over all closed ones."""
    items = list(closed)
    return Rate(tuple(i for i, outcome in items if outcome in outcomes), tuple(i for i, _ in items))
