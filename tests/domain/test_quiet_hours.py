"""Quiet hours in the person's own time zone: a message due at night waits for the morning."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from handrail.domain.messaging import in_quiet_hours, next_allowed_send_time
from handrail.domain.policy import QuietHours

NIGHT = QuietHours()  # the policy default, 21:00 to 08:00 local
LONDON = "Europe/London"
NEW_YORK = "America/New_York"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))


def test_the_same_instant_is_night_in_london_and_afternoon_in_new_york():
    at = utc(2026, 11, 24, 22, 30)  # 22:30 in London, 17:30 in New York
    assert next_allowed_send_time(at, LONDON, NIGHT) == local(LONDON, 2026, 11, 25, 8, 0)
    assert next_allowed_send_time(at, NEW_YORK, NIGHT) == at


def test_late_evening_in_new_york_waits_for_eight_new_york_time():
    at = local(NEW_YORK, 2026, 11, 24, 23, 15)
    allowed = next_allowed_send_time(at, NEW_YORK, NIGHT)
    assert allowed.astimezone(ZoneInfo(NEW_YORK)) == local(NEW_YORK, 2026, 11, 25, 8, 0)
    assert allowed == utc(2026, 11, 25, 13, 0)


def test_small_hours_wait_for_eight_the_same_morning():
    at = local(LONDON, 2026, 11, 24, 3, 0)
    assert next_allowed_send_time(at, LONDON, NIGHT) == local(LONDON, 2026, 11, 24, 8, 0)


@pytest.mark.parametrize("hh,mm,quiet", [(8, 0, False), (20, 59, False), (21, 0, True), (7, 59, True)])
def test_edges_of_quiet_hours(hh, mm, quiet):
    at = local(LONDON, 2026, 6, 1, hh, mm)
    assert in_quiet_hours(at, LONDON, NIGHT) is quiet
    assert (next_allowed_send_time(at, LONDON, NIGHT) != at) is quiet


def test_over_the_autumn_clock_change_in_london_it_is_still_eight_local():
    # Clocks go back at 02:00 BST on Sunday 25 October 2026: 22:00 BST is 21:00 UTC, and the
    # morning's 08:00 is GMT, 08:00 UTC: eleven hours later, not ten.
    at = local(LONDON, 2026, 10, 24, 22, 0)
    allowed = next_allowed_send_time(at, LONDON, NIGHT)
    assert allowed == utc(2026, 10, 25, 8, 0)
    assert allowed - at == timedelta(hours=11)
    assert allowed.astimezone(ZoneInfo(LONDON)).time() == time(8, 0)


def test_over_the_spring_clock_change_in_new_york_it_is_still_eight_local():
    # Clocks go forward at 02:00 EST on Sunday 8 March 2026: the night is an hour shorter.
    at = local(NEW_YORK, 2026, 3, 7, 22, 0)  # 03:00 UTC
    allowed = next_allowed_send_time(at, NEW_YORK, NIGHT)
    assert allowed == utc(2026, 3, 8, 12, 0)  # 08:00 EDT
    assert allowed - at == timedelta(hours=9)


def test_a_quiet_end_inside_the_skipped_hour_moves_forward_not_back():
    quiet = QuietHours(start=time(23, 0), end=time(2, 30))  # 02:30 does not exist on 8 March
    at = local(NEW_YORK, 2026, 3, 8, 1, 0)
    allowed = next_allowed_send_time(at, NEW_YORK, quiet)
    assert allowed > at
    assert not in_quiet_hours(allowed, NEW_YORK, quiet)
    assert allowed.astimezone(ZoneInfo(NEW_YORK)).time() == time(3, 30)


def test_no_quiet_hours_sends_at_once():
    at = local(LONDON, 2026, 11, 24, 23, 0)
    assert next_allowed_send_time(at, LONDON, None) == at


def test_daytime_quiet_hours_end_the_same_day():
    siesta = QuietHours(start=time(13, 0), end=time(14, 0))
    at = local(LONDON, 2026, 11, 24, 13, 20)
    assert next_allowed_send_time(at, LONDON, siesta) == local(LONDON, 2026, 11, 24, 14, 0)
