"""The outcome report and the assurance checks over rows inserted directly, on SQLite and
PostgreSQL: the store feeds the clocks the right rows, scoped to the team and the period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from handrail.config import Settings
from handrail.domain.assurance import IsoWeek
from handrail.store import assurance, reports
from handrail.store.models import (
    AuditEvent,
    Contact,
    Person,
    Staff,
    StepUpRequest,
    Team,
    Transition,
)

START = datetime(2026, 3, 2, tzinfo=UTC)  # Monday of 2026-W10 (GMT, so UTC is local time)
END = START + timedelta(days=7)
LATER = datetime(2026, 9, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy():
    return Settings(policy="default").load_policy()


class Builder:
    def __init__(self, session: Session):
        self.session = session
        team, other = Team(code="north", name="North"), Team(code="south", name="South")
        self.clinician = Staff(name="Clin", role="clinician")
        self.coordinator = Staff(name="Coord", role="care_coordinator")
        session.add_all([team, other, self.clinician, self.coordinator])
        session.flush()
        self.team, self.other = team, other
        self.count = 0

    def person(self, time_zone: str = "Europe/London") -> Person:
        person = Person(given_name="Test", family_name="Person", time_zone=time_zone)
        self.session.add(person)
        self.session.flush()
        return person

    def transition(self, person: Person, *, kind: str = "handoff", team: Team | None = None,
                   **fields) -> Transition:
        self.count += 1
        fields.setdefault("stage", "monitoring")
        transition = Transition(id=f"{kind}-{self.count:03d}", kind=kind, person_id=person.id,
                                team_id=(team or self.team).id, policy_version="test", **fields)
        self.session.add(transition)
        self.session.flush()
        return transition

    def contact(self, transition: Transition, *, at: datetime, status: str, sequence: int = 1):
        self.session.add(Contact(
            id=f"{transition.id}.c{sequence}", transition_id=transition.id, sequence=sequence,
            purpose="first_contact", appointment_at=at, not_before=at - timedelta(days=1),
            due_at=at + timedelta(hours=4), status=status, outcome=status,
            outcome_at=at if status == "attended" else None))
        self.session.flush()


@pytest.fixture
def world(session) -> Builder:
    return Builder(session)


def _figures(session, world, policy, team_ids=None, as_of=LATER):
    period = reports.Period(start=START, end=END, as_of=as_of)
    report = reports.outcomes_report(session=session, team_ids=team_ids or [world.team.id],
                                     period=period, policy=policy)
    return {f["measure"]: f for f in report["figures"]}


def test_the_outcome_report_counts_the_periods_handoffs_with_their_clocks(session, world, policy):
    discharged = START + timedelta(hours=10)
    quick = world.transition(world.person(), source="emergency_department", event_time=discharged,
                             first_contact_at=discharged + timedelta(hours=71, minutes=59),
                             medication_reconciled_at=discharged + timedelta(days=2),
                             medication_reconciled_by_id=world.clinician.id)
    world.contact(quick, at=discharged + timedelta(hours=71, minutes=59), status="attended")
    slow = world.transition(world.person(), source="emergency_department", event_time=discharged,
                            first_contact_at=discharged + timedelta(hours=72, minutes=1),
                            medication_reconciled_at=discharged + timedelta(days=2),
                            medication_reconciled_by_id=world.coordinator.id)
    world.contact(slow, at=discharged + timedelta(hours=30), status="missed")
    world.contact(slow, at=discharged + timedelta(hours=72, minutes=1), status="attended", sequence=2)
    ward = world.transition(world.person(), source="inpatient", event_time=discharged,
                            first_contact_at=discharged + timedelta(hours=2))  # same day: not FUH
    world.transition(world.person(), source="emergency_department", team=world.other,
                     event_time=discharged)  # another team's: not counted
    world.transition(world.person(), source="emergency_department",
                     event_time=END + timedelta(hours=1))  # after the period: not counted
    session.commit()

    figures = _figures(session, world, policy)

    within = figures["first_contact.within_72h"]
    assert (sorted(within["numerator_ids"]), within["denominator"]) == ([quick.id, ward.id], 3)
    assert figures["fum.7d"]["numerator"] == 2 and figures["fum.7d"]["denominator"] == 2
    assert (figures["fuh.7d"]["numerator"], figures["fuh.7d"]["denominator_ids"]) == (0, [ward.id])
    attendance = figures["follow_up.attendance"]
    assert (attendance["numerator"], attendance["denominator"]) == (2, 3)
    assert figures["medication.mrp_30d"]["numerator_ids"] == [quick.id]  # a coordinator's does not count
    assert figures["first_contact.hours"]["count"] == 3


def test_an_ed_visit_admitted_afterwards_leaves_fum_and_a_second_visit_is_not_counted_twice(
        session, world, policy):
    admitted_person, repeat_person = world.person(), world.person()
    visit = world.transition(admitted_person, source="emergency_department",
                             event_time=START + timedelta(hours=1), stage="inpatient_hold")
    session.add(AuditEvent(at=START + timedelta(hours=5), action="encounter.admission",
                           transition_id=visit.id, person_id=admitted_person.id))
    first = world.transition(repeat_person, source="emergency_department",
                             event_time=START - timedelta(days=10))  # before the period
    second = world.transition(repeat_person, source="emergency_department",
                              event_time=START + timedelta(days=2))
    session.commit()

    figures = _figures(session, world, policy)
    fum = figures["fum.30d"]

    assert fum["denominator"] == 0
    assert fum["excluded"] == {"followed_by_admission": [visit.id],
                               "repeat_visit_within_31_days": [second.id]}
    assert first.id not in str(fum)
    assert visit.id not in figures["first_contact.within_72h"]["denominator_ids"] + \
        figures["first_contact.within_72h"]["pending_ids"]  # in hospital: no clock runs yet


def test_step_up_and_step_down_figures_are_empty_honestly_without_rows(session, world, policy):
    figures = _figures(session, world, policy)
    for name in ("step_up.request_to_decision", "step_up.capacity_wait"):
        assert (figures[name]["count"], figures[name]["median_hours"]) == (0, None)
    for name in ("step_down.taper_completed", "step_down.re_escalated",
                 "repeat_crisis.after_step_down.30d"):
        assert (figures[name]["denominator"], figures[name]["rate"]) == (0, None)


def test_step_downs_give_taper_completion_re_escalation_and_the_cohorts_repeat_crisis(
        session, world, policy):
    person, steady = world.person(), world.person()
    for outcome, who in (("completed", steady), ("re_escalated", person), ("completed", world.person())):
        world.transition(who, kind="step_down", status="closed", outcome=outcome,
                         event_time=START - timedelta(days=100), closed_at=START + timedelta(days=1))
    cohort = world.transition(person, kind="step_down", event_time=START + timedelta(days=1))
    world.transition(person, source="crisis_line", team=world.other,
                     event_time=START + timedelta(days=20))  # a crisis elsewhere still counts
    session.add(StepUpRequest(transition_id=cohort.id, team_id=world.team.id, person_id=person.id,
                              origin="clinician", urgency="routine", reason="r",
                              requested_at=START, decided_at=START + timedelta(hours=6),
                              decision="approve", waiting_since=START + timedelta(hours=6),
                              capacity_wait_seconds=3600 * 30, capacity_status="holding"))
    session.commit()

    figures = _figures(session, world, policy)

    completed = figures["step_down.taper_completed"]
    assert (completed["numerator"], completed["denominator"]) == (2, 3)
    assert figures["step_down.re_escalated"]["numerator"] == 1
    assert figures["repeat_crisis.after_step_down.30d"]["numerator_ids"] == [cohort.id]
    assert figures["step_up.request_to_decision"]["median_hours"] == 6.0
    assert figures["step_up.capacity_wait"]["median_hours"] == 30.0


def test_the_four_assurance_checks_each_find_their_case(session, world, policy):
    missed = world.transition(world.person(), source="emergency_department", event_time=START)
    world.contact(missed, at=START + timedelta(days=1), status="missed")
    late = world.transition(world.person(), source="emergency_department", event_time=START,
                            first_contact_due=START + timedelta(hours=72),
                            first_contact_at=START + timedelta(hours=80))
    world.transition(world.person(), source="emergency_department", event_time=START,
                     first_contact_due=START + timedelta(hours=72),
                     first_contact_at=START + timedelta(hours=70))  # on time: no finding
    waiting_person = world.person()
    step_up = world.transition(waiting_person, kind="step_up")
    session.add(StepUpRequest(transition_id=step_up.id, team_id=world.team.id,
                              person_id=waiting_person.id, origin="clinician", urgency="urgent",
                              reason="r", requested_at=START - timedelta(days=2),
                              waiting_since=START - timedelta(days=1), capacity_status="waiting"))
    stepped = world.person()
    step_down = world.transition(stepped, kind="step_down", event_time=START - timedelta(days=20))
    world.transition(stepped, source="crisis_line", event_time=START + timedelta(days=3))
    session.commit()

    findings = assurance.find(session, world.team.id, IsoWeek.parse("2026-W10"), policy.assurance)

    assert {(f["check"], f["transition_id"]) for f in findings} == {
        ("missed_first_appointments", missed.id), ("delayed_follow_ups", late.id),
        ("waiting_for_capacity", step_up.id), ("repeat_crisis_after_step_down", step_down.id)}
    assert assurance.find(session, world.team.id, IsoWeek.parse("2026-W12"), policy.assurance) == [
        f for f in assurance.find(session, world.team.id, IsoWeek.parse("2026-W12"), policy.assurance)
        if f["check"] == "waiting_for_capacity"]  # two weeks on, only the wait goes on


def test_admission_avoidance_figures_count_avoided_episodes_their_length_and_re_presentation(
        session, world, policy):
    from handrail.store.models import AvoidanceEpisode

    def episode(person, outcome, started, hours):
        transition = world.transition(person, kind="admission_avoidance", stage="closed",
                                      event_time=started)
        session.add(AvoidanceEpisode(transition_id=transition.id, team_id=world.team.id,
                                     person_id=person.id, reason="crisis at home", requested_at=started,
                                     started_at=started, ended_at=started + timedelta(hours=hours),
                                     outcome=outcome))
        session.flush()
        return transition

    back_soon, stayed_well, admitted_person = world.person(), world.person(), world.person()
    day = START + timedelta(hours=9)
    avoided = episode(back_soon, "admission_avoided", day - timedelta(days=6), 6 * 24)  # ends `day`
    quiet = episode(stayed_well, "admission_avoided", day - timedelta(days=1), 50)
    admitted = episode(admitted_person, "admitted", day, 30)
    world.transition(back_soon, source="emergency_department", event_time=day + timedelta(days=29))
    session.commit()

    figures = _figures(session, world, policy)

    share = figures["admission_avoidance.avoided"]
    assert (sorted(share["numerator_ids"]), sorted(share["denominator_ids"])) == (
        sorted([avoided.id, quiet.id]), sorted([avoided.id, quiet.id, admitted.id]))
    length = figures["admission_avoidance.episode_length"]
    assert (length["count"], length["median_hours"]) == (2, (144 + 50) / 2)
    within_30 = figures["repeat_crisis.after_avoidance.30d"]
    assert (within_30["numerator_ids"], within_30["denominator"]) == ([avoided.id], 2)


def test_feedback_figures_by_pathway_answered_confident_and_low(session, world, policy):
    from handrail.store.models import TransitionFeedback

    asked_at = START + timedelta(days=1)
    ratings = {"handoff": [5, 2, None], "step_down": [4], "step_up": []}
    ids = {}
    for pathway, scores in ratings.items():
        for rating in scores:
            transition = world.transition(world.person(), kind=pathway, stage="closed", event_time=asked_at)
            session.add(TransitionFeedback(
                transition_id=transition.id, pathway=pathway, team_id=world.team.id,
                person_id=transition.person_id, asked_at=asked_at, rating=rating,
                answered_at=asked_at + timedelta(hours=2) if rating else None))
            ids.setdefault(pathway, []).append(transition.id)
    session.commit()

    open_window = _figures(session, world, policy, as_of=asked_at + timedelta(hours=3))
    figures = _figures(session, world, policy)

    handoff = ids["handoff"]
    assert open_window["feedback.handoff.answered"]["pending_ids"] == [handoff[2]]
    answered = figures["feedback.handoff.answered"]
    assert (answered["numerator"], answered["denominator"]) == (2, 3)  # the window closed unanswered
    assert figures["feedback.handoff.confident"]["numerator_ids"] == [handoff[0]]
    assert figures["feedback.handoff.low"]["numerator_ids"] == [handoff[1]]
    assert figures["feedback.step_down.confident"]["rate"] == 1.0
    assert figures["feedback.step_up.answered"]["denominator"] == 0
