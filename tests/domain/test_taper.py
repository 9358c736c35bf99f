"""The step-down taper's arithmetic and its policy: dates, windows, adjustments, thresholds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handrail.domain.policy import PolicyError, TaperPhase, WarningSeverity, parse_policy
from handrail.domain.step_down import AdjustTaper
from handrail.domain.taper import (
    AdjustmentKind,
    PlannedContact,
    anchor_after_pause,
    at_or_above,
    check_in_reply_is_good,
    check_in_times,
    contact_window,
    faster,
    missing_criteria,
    planned_contacts,
    rating_is_warning,
    review_due_after_misses,
    slower,
    taper_dates,
    unknown_criteria,
)

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
POLICIES = Path(__file__).resolve().parents[2] / "policies"
DEFAULT = parse_policy((POLICIES / "default.toml").read_text())
STEP_DOWN = DEFAULT.step_down
WEEK, FORTNIGHT = timedelta(days=7), timedelta(days=14)


def test_the_default_taper_is_weekly_four_fortnightly_four_monthly_two():
    planned = planned_contacts(STEP_DOWN.taper)
    assert [p.every.days for p in planned] == [7] * 4 + [14] * 4 + [28] * 2
    dates = taper_dates(START, planned)
    assert dates[0] == START + WEEK and dates[3] == START + 4 * WEEK
    assert dates[-1] == START + timedelta(days=4 * 7 + 4 * 14 + 2 * 28)  # 140 days


def test_each_contact_has_its_window_either_side_of_its_date():
    window = contact_window(START, PlannedContact(every=FORTNIGHT, window=timedelta(days=3)))
    assert window.appointment_at == START + FORTNIGHT
    assert (window.not_before, window.due_at) == (START + timedelta(days=11), START + timedelta(days=17))


def test_slower_repeats_the_current_frequency_and_faster_drops_contacts_but_never_all():
    remaining = planned_contacts([TaperPhase(every=WEEK, contacts=1, window=timedelta(days=2)),
                                  TaperPhase(every=FORTNIGHT, contacts=2, window=timedelta(days=3))])
    current = PlannedContact(every=WEEK, window=timedelta(days=2))
    assert [p.every.days for p in slower(remaining, by=2, current=current)] == [7, 7, 7, 14, 14]
    assert [p.every.days for p in slower(remaining[1:], by=1, current=None)] == [14, 14, 14]
    assert [p.every.days for p in faster(remaining, by=1, keep_at_least=1)] == [14, 14]
    assert [p.every.days for p in faster(remaining, by=5, keep_at_least=1)] == [14]
    assert faster(remaining, by=5, keep_at_least=0) == []


def test_after_a_pause_the_next_interval_counts_from_its_end():
    assert anchor_after_pause(START, START + timedelta(days=10)) == START + timedelta(days=10)
    assert anchor_after_pause(START, START - timedelta(days=1)) == START


def test_a_pause_must_name_when_contact_resumes():
    with pytest.raises(ValueError, match="until"):
        AdjustTaper(kind=AdjustmentKind.pause, reason="holiday")
    assert AdjustTaper(kind=AdjustmentKind.slower, reason="agreed").by == 1


def test_stabilization_names_every_criterion_neither_confirmed_nor_overridden_with_a_reason():
    criteria = STEP_DOWN.stabilization_criteria
    assert missing_criteria(criteria, ["symptom_control"], {"adherence": "  "}) == [
        "functional_markers", "adherence", "safety_plan_reliability"]
    assert missing_criteria(criteria, ["symptom_control", "functional_markers", "adherence"],
                            {"safety_plan_reliability": "reviewed at the first contact"}) == []
    assert unknown_criteria(criteria, ["symptom_control", "mood"]) == ["mood"]


def test_severity_threshold_low_ratings_and_reviews_follow_the_policy():
    assert at_or_above(WarningSeverity.severe, STEP_DOWN.fast_track_severity)
    assert at_or_above(WarningSeverity.high, WarningSeverity.high)
    assert not at_or_above(WarningSeverity.moderate, STEP_DOWN.fast_track_severity)
    assert rating_is_warning(2, STEP_DOWN.warning_rating_at_or_below)
    assert not rating_is_warning(3, 2) and not rating_is_warning(None, 2)
    assert [review_due_after_misses(n, 2) for n in range(5)] == [False, False, True, False, True]
    assert check_in_reply_is_good(confirmed=False, rating=4, good_at_or_above=4)
    assert not check_in_reply_is_good(confirmed=False, rating=3, good_at_or_above=4)
    assert check_in_reply_is_good(confirmed=True, rating=None, good_at_or_above=4)


def test_check_ins_come_two_and_six_weeks_after_discharge():
    assert check_in_times(START, STEP_DOWN.check_ins_after) == [START + 2 * WEEK, START + 6 * WEEK]


def test_the_seconds_policy_runs_a_taper_in_seconds():
    seconds = parse_policy((POLICIES / "seconds.toml").read_text()).step_down
    total = sum((p.every for p in planned_contacts(seconds.taper)), timedelta(0))
    assert total + max(seconds.check_ins_after) + seconds.check_in_reply_within < timedelta(seconds=40)


def test_a_policy_without_a_step_down_section_or_with_overlapping_windows_is_refused():
    text = (POLICIES / "default.toml").read_text()
    start, end = text.index("# The step-down taper (StepDown)"), text.index("# The weekly assurance run")
    with pytest.raises(PolicyError, match="step_down: Field required"):
        parse_policy(text[:start] + text[end:])
    overlapping = text.replace('{ every = "P7D", contacts = 4, window = "P2D" }',
                               '{ every = "P7D", contacts = 4, window = "P4D" }')
    with pytest.raises(PolicyError, match="window must be at most half"):
        parse_policy(overlapping)
