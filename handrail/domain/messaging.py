"""Pure rules for messages to people: rendering, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from .policy import QuietHours


def format_local_time(at: datetime, time_zone: str) -> str:
    """`Tue 24 Nov, 10:00` in the person's own time zone."""
    local = at.astimezone(ZoneInfo(time_zone))
    return local.strftime("%a %d %b, %H:%M")


def render(template: str, *, service: str, phone: str, at: datetime | None, time_zone: str,
           reply: str = "YES") -> str:
    when = format_local_time(at, time_zone) if at is not None else ""
    return template.format(service=service, phone=phone, time=when, reply=reply)


def in_quiet_hours(at: datetime, time_zone: str, quiet: QuietHours | None) -> bool:
    if quiet is None or quiet.start == quiet.end:
        return False
    local = at.astimezone(ZoneInfo(time_zone)).time()
    if quiet.start < quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end


def next_allowed_send_time(at: datetime, time_zone: str, quiet: QuietHours | None) -> datetime:
    """`at` itself, or the end of the quiet hours it falls in, in the person's time zone.

    Works on wall-clock time, so a daylight-saving change between now and the morning still
    lands on the policy's local hour."""
    if not in_quiet_hours(at, time_zone, quiet):
        return at
    assert quiet is not None
    zone = ZoneInfo(time_zone)
    local = at.astimezone(zone)
    end_day = local.date()
    if local.time() >= quiet.end:
        end_day += timedelta(days=1)
    local_end = datetime.combine(end_day, quiet.end, tzinfo=zone)
    # Answered in UTC: converting to the zone `at` came in would hand back the wall time as is
    # (a time skipped by spring-forward stays skipped), and arithmetic between datetimes of one
    # zone ignores a clock change. Through UTC, a skipped wall time moves forward by the gap.
    return local_end.astimezone(UTC)
