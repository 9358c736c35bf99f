"""The weekly assurance: when it runs (the policy's `[assurance]`), which week it reports, and
the four checks' names. Pure: safe inside the workflow sandbox."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Weekday(StrEnum):
    # ISO order: Monday is 1. Temporal's calendar spec counts Sunday as 0.
    monday = "monday"
    tuesday = "tuesday"
    wednesday = "wednesday"
    thursday = "thursday"
    friday = "friday"
    saturday = "saturday"
    sunday = "sunday"

    @property
    def iso(self) -> int:
        return list(Weekday).index(self) + 1


class AssurancePolicy(BaseModel):
    """When the weekly run fires (service-local), how far back its trend looks, and the window
    that links a crisis to a recent step-down."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    day: Weekday
    time: time
    time_zone: str = Field(min_length=1)
    trend_weeks: int = Field(ge=0, le=52)
    step_down_window: timedelta

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception as err:  # ZoneInfoNotFoundError, or a malformed key
            raise ValueError(f"unknown time zone {value!r}") from err
        return value

    @field_validator("step_down_window")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value


class AssuranceCheck(StrEnum):
    """DESIGN.md's four checks, in its order."""

    missed_first_appointments = "missed_first_appointments"
    delayed_follow_ups = "delayed_follow_ups"
    waiting_for_capacity = "waiting_for_capacity"
    repeat_crisis_after_step_down = "repeat_crisis_after_step_down"


CHECK_TITLES = {
    AssuranceCheck.missed_first_appointments: "Missed first appointment after a transition",
    AssuranceCheck.delayed_follow_ups: "Follow-up after an acute event later than its deadline",
    AssuranceCheck.waiting_for_capacity: "Step-up request waiting for capacity",
    AssuranceCheck.repeat_crisis_after_step_down: "Repeat crisis use after a recent step-down",
}


class IsoWeek(BaseModel):
    model_config = ConfigDict(frozen=True)
    year: int
    week: int

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        """'2026-W48' → IsoWeek; ValueError naming the format otherwise."""
        try:
            year, week = text.split("-W")
            parsed = cls(year=int(year), week=int(week))
            parsed.monday()  # week 53 of a 52-week year is refused here
        except (ValueError, TypeError):
            raise ValueError(f"{text!r} is not an ISO week like 2026-W48") from None
        return parsed

    @classmethod
    def of(cls, day: date) -> IsoWeek:
        year, week, _ = day.isocalendar()
        return cls(year=year, week=week)

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    def previous(self, weeks: int = 1) -> IsoWeek:
        return IsoWeek.of(self.monday() - timedelta(weeks=weeks))

    def bounds(self, time_zone: str) -> tuple[datetime, datetime]:
        """[Monday 00:00, next Monday 00:00) in the service's zone, as aware datetimes."""
        tz = ZoneInfo(time_zone)
        start = datetime.combine(self.monday(), time(0), tzinfo=tz)
        end = datetime.combine(self.monday() + timedelta(days=7), time(0), tzinfo=tz)
        return start, end


def last_complete_week(now: datetime, time_zone: str) -> IsoWeek:
    """The week a run at `now` reports: the last one that has ended (service-local)."""
    today = now.astimezone(ZoneInfo(time_zone)).date()
    last_sunday = today - timedelta(days=today.isoweekday())
    return IsoWeek.of(last_sunday)
