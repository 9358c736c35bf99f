"""Which week a run reports, and the week arithmetic the report and the API share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handrail.domain.assurance import IsoWeek, Weekday, last_complete_week


def test_a_monday_morning_run_reports_the_week_that_just_ended():
    # Monday 30 November 2026, 07:00 in London: the week ended on Sunday 29 November (W48).
    assert str(last_complete_week(datetime(2026, 11, 30, 7, 0, tzinfo=UTC), "Europe/London")) == "2026-W48"


def test_the_week_is_the_services_own_calendar():
    # 23:30 UTC on Sunday 29 November is already Monday in Sydney: there, W48 has ended.
    sunday_night = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
    assert str(last_complete_week(sunday_night, "Australia/Sydney")) == "2026-W48"
    assert str(last_complete_week(sunday_night, "Europe/London")) == "2026-W47"


def test_iso_weeks_parse_bound_and_step_back_across_a_year():
    week = IsoWeek.parse("2026-W01")
    start, end = week.bounds("Europe/London")
    assert (start.date().isoformat(), end.date().isoformat()) == ("2025-12-29", "2026-01-05")
    assert str(week.previous()) == "2025-W52"
    assert str(IsoWeek.parse("2026-W53")) == "2026-W53"  # 2026 has 53 ISO weeks


@pytest.mark.parametrize("text", ["2026-48", "2026-W54", "W48", "", "2025-W53"])
def test_a_malformed_week_is_refused_naming_the_format(text):
    with pytest.raises(ValueError, match="ISO week like 2026-W48"):
        IsoWeek.parse(text)


def test_weekdays_count_from_monday():
    assert (Weekday.monday.iso, Weekday.sunday.iso) == (1, 7)
