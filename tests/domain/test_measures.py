"""The measures' clocks at their edges, each expectation worked out by hand in the comment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handrail.domain.measures import (
    Anchor,
    Discharge,
    Reconciliation,
    Setting,
    attendance,
    durations,
    hedis_follow_up,
    median,
    outcome_share,
    percentile,
    reconciled_mrp,
    reconciled_within_deadline,
    repeat_crisis,
    time_to_first_contact,
    within_hours,
)

LONDON = "Europe/London"
# 14:30 on Monday 2 March 2026 in London (GMT, so UTC too). Long after: every window closed.
DISCHARGE = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
LATER = datetime(2026, 12, 1, tzinfo=UTC)


def visit(transition_id: str = "t1", *, at: datetime = DISCHARGE, contacts=(), person_id: int = 1,
          setting: Setting = Setting.emergency, admitted=(), time_zone: str = LONDON) -> Discharge:
    return Discharge(transition_id=transition_id, person_id=person_id, discharged_at=at,
                     setting=setting, time_zone=time_zone, contacts=tuple(contacts),
                     admitted_at=tuple(admitted))


def fum(discharges, days, **kwargs):
    return hedis_follow_up(discharges, Setting.emergency, days, as_of=LATER, service_zone=LONDON,
                           **kwargs)


def fuh(discharges, days):
    return hedis_follow_up(discharges, Setting.inpatient, days, as_of=LATER, service_zone=LONDON)


# --- 72 hours, in hours from the discharge ----------------------------------------------------


def test_a_contact_at_71h59m_is_within_72_hours():
    rate = within_hours([visit(contacts=[DISCHARGE + timedelta(hours=71, minutes=59)])],
                        timedelta(hours=72), as_of=LATER)
    assert (rate.numerator, rate.denominator) == (1, 1)


def test_a_contact_at_72h01m_is_not_within_72_hours():
    rate = within_hours([visit(contacts=[DISCHARGE + timedelta(hours=72, minutes=1)])],
                        timedelta(hours=72), as_of=LATER)
    assert (rate.numerator, rate.denominator) == (0, 1)


def test_a_discharge_still_inside_its_72_hours_without_contact_is_pending_not_failed():
    as_of = DISCHARGE + timedelta(hours=10)
    rate = within_hours([visit()], timedelta(hours=72), as_of=as_of)
    assert (rate.numerator, rate.denominator, rate.pending_ids) == (0, 0, ("t1",))
    assert rate.rate is None  # an empty denominator says so instead of 0 %


def test_median_and_90th_percentile_of_hours_to_first_contact():
    # Hours 10, 20, 30, 40: median (20+30)/2 = 25; nearest rank of 90 % of 4 is ceil(3.6) = 4th = 40.
    discharges = [visit(f"t{h}", contacts=[DISCHARGE + timedelta(hours=h)]) for h in (40, 10, 30, 20)]
    times = time_to_first_contact(discharges + [visit("never")])
    assert (times.count, times.median, times.p90) == (4, 25.0, 40.0)
    assert median([]) is None and percentile([5.0], 90) == 5.0


# --- HEDIS FUM: the visit's own date counts; 7 days is 8 dates --------------------------------


def test_fum_counts_a_contact_on_the_same_day_as_the_ed_visit():
    rate = fum([visit(contacts=[datetime(2026, 3, 2, 23, 0, tzinfo=UTC)])], 7)
    assert (rate.numerator, rate.denominator) == (1, 1)


def test_fum_counts_day_8_and_not_day_9():
    # Visit on 2 March (day 1): day 8 is 9 March (counted), day 9 is 10 March (not).
    day_8 = fum([visit(contacts=[datetime(2026, 3, 9, 20, 0, tzinfo=UTC)])], 7)
    day_9 = fum([visit(contacts=[datetime(2026, 3, 10, 9, 0, tzinfo=UTC)])], 7)
    assert (day_8.numerator, day_9.numerator) == (1, 0)
    # 30 days means 31 dates: 1 April is visit + 30 (counted), 2 April is not.
    assert fum([visit(contacts=[datetime(2026, 4, 1, 18, 0, tzinfo=UTC)])], 30).numerator == 1
    assert fum([visit(contacts=[datetime(2026, 4, 2, 8, 0, tzinfo=UTC)])], 30).numerator == 0


def test_fum_dates_are_the_persons_own_calendar_days():
    # 23:30 UTC on 2 March is 10:30 on 3 March in Sydney (AEDT, UTC+11), so for a person there
    # the visit is on 3 March and day 8 is 10 March. A contact at 12:00 UTC on 10 March (23:00
    # in Sydney) is day 8 for them and counts; for a person in London it is day 9 and does not.
    late = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    contact = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    sydney = fum([visit(at=late, contacts=[contact], time_zone="Australia/Sydney")], 7)
    london = fum([visit(at=late, contacts=[contact])], 7)
    assert (sydney.numerator, london.numerator) == (1, 0)


def test_fum_dates_follow_summer_time_not_utc():
    # Visit 10:00 UTC on 1 June 2026 (11:00 BST). A contact at 23:30 UTC on 8 June is 00:30 BST
    # on 9 June: day 9 for a person in London, so not counted, though its UTC date is day 8.
    contact = datetime(2026, 6, 8, 23, 30, tzinfo=UTC)
    rate = fum([visit(at=datetime(2026, 6, 1, 10, tzinfo=UTC), contacts=[contact])], 7)
    assert (rate.numerator, rate.denominator) == (0, 1)


def test_fum_counts_only_the_first_ed_visit_in_a_31_day_period():
    # Visits on 2 March and 1 April (30 days later): the second is inside the first's 31-day
    # period and is not counted again; a visit on 2 April (31 days later) starts a new period.
    first = visit("first")
    second = visit("second", at=DISCHARGE + timedelta(days=30))
    third = visit("third", at=DISCHARGE + timedelta(days=61))
    rate = fum([first, second, third], 7)
    assert rate.denominator_ids == ("first", "third")
    assert rate.excluded == {"repeat_visit_within_31_days": ("second",)}


def test_fum_knows_a_visit_before_the_period_to_exclude_a_repeat_inside_it():
    before = visit("before", at=DISCHARGE - timedelta(days=5))
    inside = visit("inside")
    rate = fum([before, inside], 7, period=(DISCHARGE - timedelta(days=1), LATER))
    assert rate.denominator_ids == () and rate.excluded == {"repeat_visit_within_31_days": ("inside",)}


def test_fum_excludes_an_ed_visit_followed_by_an_inpatient_admission():
    admitted = visit("admitted", contacts=[DISCHARGE + timedelta(hours=2)],
                     admitted=[DISCHARGE + timedelta(days=3)])
    rate = fum([admitted, visit("other", person_id=2)], 30)
    assert rate.denominator_ids == ("other",)
    assert rate.excluded == {"followed_by_admission": ("admitted",)}


def test_an_admission_more_than_30_days_after_the_visit_does_not_exclude_it():
    rate = fum([visit(admitted=[DISCHARGE + timedelta(days=31)])], 30)
    assert rate.denominator == 1


# --- HEDIS FUH: a contact on the discharge date does not count --------------------------------


def test_fuh_does_not_count_a_contact_on_the_day_of_discharge():
    same_day = visit(setting=Setting.inpatient, contacts=[DISCHARGE + timedelta(hours=3)])
    next_day = visit("t2", setting=Setting.inpatient, contacts=[DISCHARGE + timedelta(hours=20)])
    rate = fuh([same_day, next_day], 7)
    assert rate.numerator_ids == ("t2",) and rate.denominator == 2


def test_fuh_7_days_are_the_7_dates_after_discharge():
    # Discharged 2 March: 9 March (discharge + 7) counts, 10 March does not.
    assert fuh([visit(setting=Setting.inpatient, contacts=[datetime(2026, 3, 9, 12, tzinfo=UTC)])],
               7).numerator == 1
    assert fuh([visit(setting=Setting.inpatient, contacts=[datetime(2026, 3, 10, 12, tzinfo=UTC)])],
               7).numerator == 0


def test_each_clock_counts_only_its_own_setting():
    rate = fum([visit(setting=Setting.inpatient)], 7)
    assert rate.denominator == 0


# --- medication reconciliation ----------------------------------------------------------------

ROLES = ["clinician", "clinical_lead"]


def reconciliation(at: datetime | None, role: str | None, transition_id: str = "t1") -> Reconciliation:
    return Reconciliation(transition_id=transition_id, discharged_at=DISCHARGE, time_zone=LONDON,
                          reconciled_at=at, reconciled_by_role=role)


def test_mrp_by_a_disallowed_role_is_not_counted():
    by_clinician = reconciliation(DISCHARGE + timedelta(days=2), "clinician", "ok")
    by_coordinator = reconciliation(DISCHARGE + timedelta(days=2), "care_coordinator", "no")
    rate = reconciled_mrp([by_clinician, by_coordinator], allowed_roles=ROLES, as_of=LATER,
                          service_zone=LONDON)
    assert (rate.numerator_ids, rate.denominator) == (("ok",), 2)


def test_mrp_counts_the_discharge_date_through_30_days_after():
    # Discharged 2 March: 1 April (discharge + 30) counts, 2 April does not.
    on_time = reconciliation(datetime(2026, 4, 1, 20, tzinfo=UTC), "clinician", "on-time")
    late = reconciliation(datetime(2026, 4, 2, 9, tzinfo=UTC), "clinician", "late")
    rate = reconciled_mrp([on_time, late], allowed_roles=ROLES, as_of=LATER, service_zone=LONDON)
    assert rate.numerator_ids == ("on-time",)


def test_the_policy_deadline_is_elapsed_time_and_needs_an_allowed_role():
    seven_days = timedelta(days=7)
    items = [reconciliation(DISCHARGE + seven_days, "clinician", "at-deadline"),
             reconciliation(DISCHARGE + seven_days + timedelta(minutes=1), "clinician", "late"),
             reconciliation(DISCHARGE + timedelta(days=1), "supervisor", "wrong-role"),
             reconciliation(None, None, "not-done")]
    rate = reconciled_within_deadline(items, seven_days, allowed_roles=ROLES, as_of=LATER)
    assert (rate.numerator_ids, rate.denominator) == (("at-deadline",), 4)


# --- attendance, repeat crisis, step-up and step-down -----------------------------------------


def test_attendance_counts_attended_over_attended_and_missed():
    # a: one attended, one missed; b: only cancelled (neither); c: one attended → 2 of 3.
    rate = attendance([("a", 1, 1), ("b", 0, 0), ("c", 1, 0)])
    assert (rate.numerator, rate.denominator, rate.rate) == (2, 3, 0.6667)


def test_repeat_crisis_within_30_days_counts_up_to_and_including_day_30():
    window = timedelta(days=30)
    at_30 = repeat_crisis([Anchor("index", 1, DISCHARGE, DISCHARGE + window)], window, as_of=LATER)
    after = repeat_crisis([Anchor("index", 1, DISCHARGE, DISCHARGE + window + timedelta(seconds=1))],
                          window, as_of=LATER)
    same_moment = repeat_crisis([Anchor("index", 1, DISCHARGE, DISCHARGE)], window, as_of=LATER)
    open_window = repeat_crisis([Anchor("index", 1, DISCHARGE)], window,
                                as_of=DISCHARGE + timedelta(days=3))
    assert (at_30.numerator, after.numerator, after.denominator) == (1, 0, 1)
    assert same_moment.numerator == 0  # the index itself is not its own repeat
    assert open_window.pending_ids == ("index",)


def test_durations_and_outcome_shares_are_empty_honestly():
    assert durations([("s", DISCHARGE, None)]).count == 0
    assert durations([("s", DISCHARGE, DISCHARGE + timedelta(hours=36))]).median == 36.0
    empty = outcome_share([], {"completed"})
    assert (empty.numerator, empty.denominator, empty.rate) == (0, 0, None)
    share = outcome_share([("a", "completed"), ("b", "re_escalated")], {"completed"})
    assert (share.numerator_ids, share.denominator) == (("a",), 2)
