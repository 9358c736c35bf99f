"""Each handoff's stored measure clocks (store/measure_facts.py): kept current by the session
hooks whichever record changes, filled in where missing, rebuilt by the command; and the
report's SQL reading of them equal to the pure rules of domain/measures.py over random data,
at as_of moments on both sides of the windows' edges. On SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text
from sqlmodel import Session, select
from typer.testing import CliRunner

from handrail.cli.main import app
from handrail.config import Settings, get_settings
from handrail.domain import measures as m
from handrail.domain.handoff import HOLD_STAGES
from handrail.store import measure_facts, reports
from handrail.store.models import AuditEvent, Contact, HandoffMeasure, Person, Staff, Team, Transition

START = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy():
    return Settings(policy="default").load_policy()


@pytest.fixture
def team(session) -> Team:
    team = Team(code="north", name="North")
    session.add(team)
    session.commit()
    return team


def _person(session, zone: str = "Europe/London") -> Person:
    person = Person(given_name="Test", family_name="Person", time_zone=zone)
    session.add(person)
    session.flush()
    return person


def _handoff(session, team: Team, person: Person, number: int, at: datetime, **fields) -> Transition:
    fields.setdefault("stage", "monitoring")
    fields.setdefault("source", "emergency_department")
    transition = Transition(id=f"handoff-{number:04d}", kind="handoff", person_id=person.id,
                            team_id=team.id, policy_version="test", event_time=at, **fields)
    session.add(transition)
    session.flush()
    return transition


def _contact(session, transition: Transition, at: datetime, outcome: str, sequence: int = 1) -> None:
    session.add(Contact(id=f"{transition.id}.c{sequence}", transition_id=transition.id,
                        sequence=sequence, purpose="first_contact", appointment_at=at,
                        not_before=at - timedelta(days=1), due_at=at + timedelta(hours=4),
                        status=outcome, outcome=outcome,
                        outcome_at=at if outcome == "attended" else None))


def _clocks(session, transition_id: str) -> HandoffMeasure:
    session.expire_all()
    return session.get(HandoffMeasure, transition_id)


def test_the_clocks_follow_each_record_that_changes_them(session, team):
    person = _person(session)
    visit = _handoff(session, team, person, 1, START)
    session.commit()
    assert _clocks(session, visit.id).within_72h_met is False

    _contact(session, visit, START + timedelta(hours=71, minutes=59), "attended")
    session.commit()
    clocks = _clocks(session, visit.id)
    assert (clocks.within_72h_met, clocks.follow_up_7d_met, clocks.attended) == (True, True, 1)
    assert clocks.first_contact_hours == pytest.approx(71 + 59 / 60)

    later = _handoff(session, team, person, 2, START + timedelta(days=20))
    session.commit()
    clocks = _clocks(session, visit.id)
    assert clocks.repeat_30d_met is True  # the next presentation, 20 days on
    assert _clocks(session, later.id).follow_up_excluded == "repeat_visit_within_31_days"

    session.add(AuditEvent(at=START + timedelta(days=20, hours=3), action="encounter.admission",
                           transition_id=later.id, person_id=person.id, detail={}))
    session.commit()
    # Admitted from the second visit (since discharged): its clock is now FUH's, and the first
    # visit, followed by an admission within 30 days, leaves FUM.
    assert _clocks(session, later.id).follow_up_setting == "inpatient"
    assert _clocks(session, visit.id).follow_up_excluded == "followed_by_admission"

    session.delete(session.get(Contact, f"{visit.id}.c1"))
    session.commit()
    assert _clocks(session, visit.id).within_72h_met is False


def test_the_report_reads_its_own_sessions_writes_before_they_are_committed(session, team, policy):
    visit = _handoff(session, team, _person(session), 1, START + timedelta(hours=1),
                     first_contact_at=START + timedelta(hours=5))
    report = reports.outcomes_report(session=session, team_ids=[team.id], policy=policy,
                                     period=reports.Period(START, START + timedelta(days=7),
                                                           START + timedelta(days=90)))
    figures = {f["measure"]: f for f in report["figures"]}
    assert figures["first_contact.within_72h"]["numerator_ids"] == [visit.id]


def test_handoffs_written_around_the_session_are_filled_in_by_the_report(session, team, policy):
    person = _person(session)
    session.commit()
    # A bulk load or a restore: a Core insert, around the ORM and its session hooks.
    session.execute(insert(Transition.__table__).values(
        id="handoff-bulk", kind="handoff", status="open", stage="monitoring", person_id=person.id,
        team_id=team.id, source="emergency_department", event_time=START, policy_version="test",
        summary={}, first_contact_at=START + timedelta(hours=3), created_at=START, updated_at=START))
    session.commit()
    assert _clocks(session, "handoff-bulk") is None

    report = reports.outcomes_report(session=session, team_ids=[team.id], policy=policy,
                                     period=reports.Period(START, START + timedelta(days=7),
                                                           START + timedelta(days=90)))

    figures = {f["measure"]: f for f in report["figures"]}
    assert figures["first_contact.within_72h"]["numerator_ids"] == ["handoff-bulk"]
    assert _clocks(session, "handoff-bulk") is not None


def test_refresh_measures_rebuilds_the_clocks_and_says_what_had_drifted(sqlite_engine, monkeypatch,
                                                                        tmp_path):
    monkeypatch.setenv("HANDRAIL_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("HANDRAIL_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    with Session(sqlite_engine) as session:
        team = Team(code="north", name="North")
        session.add(team)
        session.flush()
        person = _person(session)
        for n in range(3):
            _handoff(session, team, person, n, START + timedelta(days=40 * n))
        session.commit()
        session.execute(text("UPDATE handoffmeasure SET within_72h_met = 1"
                             " WHERE transition_id = 'handoff-0001'"))
        session.commit()
    try:
        first = CliRunner().invoke(app, ["report", "refresh-measures"])
        again = CliRunner().invoke(app, ["report", "refresh-measures"])
    finally:
        get_settings.cache_clear()
    assert first.exit_code == 0, first.output
    assert "recomputed the measure clocks of 3 handoffs; 1 had changed" in first.output
    assert "3 handoffs; 0 had changed" in again.output


# --- the SQL reading of the clocks against the pure rules --------------------------------------


def _random_service(session, team: Team, other: Team, clinician: Staff, coordinator: Staff,
                    rng: random.Random) -> None:
    zones = ["Europe/London", "America/New_York", "Asia/Kolkata"]
    people = [_person(session, rng.choice(zones)) for _ in range(25)]
    sources = ["emergency_department", "crisis_stabilization", "inpatient"]
    for n in range(120):
        at = START + timedelta(minutes=rng.randrange(40 * 24 * 60))
        contact_at = at + timedelta(hours=rng.choice([2, 23, 71.9, 72.1, 100, 24 * 8, 24 * 31]))
        reconciled = at + timedelta(days=rng.choice([0.5, 6.9, 7.1, 29, 32])) if rng.random() < 0.7 else None
        transition = _handoff(
            session, team if rng.random() < 0.8 else other, rng.choice(people), n, at,
            source=rng.choice(sources),
            stage=rng.choice(["monitoring"] * 6 + ["inpatient_hold", "closed"]),
            first_contact_at=contact_at if rng.random() < 0.3 else None,
            medication_reconciled_at=reconciled,
            medication_reconciled_by_id=rng.choice([clinician, coordinator]).id if reconciled else None)
        for sequence in range(1, rng.randrange(1, 4)):
            _contact(session, transition, contact_at + timedelta(days=sequence - 1),
                     rng.choice(["attended", "attended", "missed", "cancelled"]), sequence)
        if rng.random() < 0.08:
            session.add(AuditEvent(at=at + timedelta(hours=rng.choice([2, 24 * 10, 24 * 40])),
                                   action="encounter.admission", transition_id=transition.id,
                                   person_id=transition.person_id, detail={}))
    session.commit()


def _expected(session, team_ids, period: reports.Period, policy) -> dict[str, m.Rate]:
    """The figures computed straight from the records with domain/measures.py's rate functions."""
    people = session.exec(select(Transition.person_id).where(Transition.kind == "handoff")).all()
    handoffs, moments, admissions = measure_facts._load(session, set(people))
    discharges = measure_facts._discharges(handoffs, moments, admissions)
    by_id = {h.id: h for h in handoffs}
    in_scope = {h.id for h in handoffs if h.team_id in team_ids
                and period.start <= h.event_time < period.end}
    current = [d for d in discharges if d.transition_id in in_scope
               and by_id[d.transition_id].stage not in HOLD_STAGES]
    zone = "Europe/London"
    found = {"first_contact.within_72h": m.within_hours(current, m.SEVENTY_TWO_HOURS, as_of=period.as_of)}
    for setting, name in ((m.Setting.emergency, "fum"), (m.Setting.inpatient, "fuh")):
        rates = m.hedis_follow_ups(discharges, setting, (7, 30), as_of=period.as_of, service_zone=zone)
        for days, rate in rates.items():
            kept = lambda ids: tuple(i for i in ids if i in in_scope)  # noqa: E731
            found[f"{name}.{days}d"] = m.Rate(
                kept(rate.numerator_ids), kept(rate.denominator_ids), kept(rate.pending_ids),
                {r: kept(ids) for r, ids in rate.excluded.items() if kept(ids)})
    items = [m.Reconciliation(d.transition_id, d.discharged_at, d.time_zone,
                              by_id[d.transition_id].reconciled_at,
                              by_id[d.transition_id].reconciled_by_role) for d in current]
    roles = policy.handoff.medication_reconciliation_roles
    found["medication.within_policy"] = m.reconciled_within_deadline(
        items, policy.handoff.medication_reconciliation_due, allowed_roles=roles, as_of=period.as_of)
    found["medication.mrp_30d"] = m.reconciled_mrp(items, allowed_roles=roles, as_of=period.as_of,
                                                   service_zone=zone)
    ordered = sorted(handoffs, key=lambda h: (h.person_id, h.event_time, h.id))
    following = {h.id: (later.event_time if later and later.person_id == h.person_id else None)
                 for h, later in zip(ordered, [*ordered[1:], None], strict=True)}
    anchors = [m.Anchor(h.id, h.person_id, h.event_time, following[h.id]) for h in handoffs
               if h.id in in_scope]
    for days in (30, 90):
        found[f"repeat_crisis.{days}d"] = m.repeat_crisis(anchors, timedelta(days=days), as_of=period.as_of)
    return found


@pytest.mark.parametrize("seed", [1, 2])
def test_the_report_from_stored_clocks_equals_the_rules_over_the_records(session, team, policy, seed):
    rng = random.Random(seed)
    other = Team(code="south", name="South")
    clinician = Staff(name="Clin", role="clinician")
    coordinator = Staff(name="Coord", role="care_coordinator")
    session.add_all([other, clinician, coordinator])
    session.flush()
    _random_service(session, team, other, clinician, coordinator, rng)
    # as_of moments inside the windows (pending) and past them, in the period and after it.
    exercised = []
    for as_of in (START + timedelta(days=12, hours=5), START + timedelta(days=33),
                  START + timedelta(days=200)):
        period = reports.Period(START + timedelta(days=3), START + timedelta(days=31), as_of)
        report = reports.outcomes_report(session=session, team_ids=[team.id], period=period, policy=policy)
        figures = {f["measure"]: f for f in report["figures"]}
        for measure, rate in _expected(session, {team.id}, period, policy).items():
            figure = figures[measure]
            assert sorted(figure["numerator_ids"]) == sorted(rate.numerator_ids), (measure, as_of)
            assert sorted(figure["denominator_ids"]) == sorted(rate.denominator_ids), (measure, as_of)
            assert sorted(figure["pending_ids"]) == sorted(rate.pending_ids), (measure, as_of)
            assert ({r: sorted(ids) for r, ids in figure["excluded"].items()}
                    == {r: sorted(ids) for r, ids in rate.excluded.items()}), (measure, as_of)
        exercised.append({name: (len(f.get("pending_ids", [])), f.get("denominator", 0))
                          for name, f in figures.items()})
    # Not a vacuous comparison: the data reaches pending clocks, counted ones and exclusions.
    assert exercised[0]["fum.30d"][0] > 0 and exercised[0]["repeat_crisis.90d"][0] > 0
    assert all(exercised[-1][name][1] > 0 for name in ("fum.7d", "fuh.7d", "medication.mrp_30d",
                                                       "repeat_crisis.30d", "first_contact.within_72h"))


@pytest.fixture
def pg_one_person(postgres_url):
    """A migrated PostgreSQL store with a team and one person: (engine, team, person)."""
    from handrail.store.db import make_engine
    from handrail.store.migrate import upgrade

    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    with Session(engine, expire_on_commit=False) as session:
        team = Team(code="north", name="North")
        session.add(team)
        session.flush()
        person = _person(session)
        session.commit()
    yield engine, team, person
    engine.dispose()


@pytest.mark.postgres
def test_concurrent_writers_for_one_person_leave_clocks_computed_from_both(pg_one_person):
    """Two transactions each record a contact for one person's two handoffs. The second's
    refresh waits for the first's commit and then sees both contacts: the rows it writes last
    are not computed from records older than the ones they replace."""
    engine, team, person = pg_one_person
    with Session(engine) as session:
        first, second = (_handoff(session, team, person, n, START + timedelta(days=n))
                         for n in (1, 2))
        session.commit()
        first_id, second_id = first.id, second.id

    holding = Session(engine)
    seen = START + timedelta(days=1, hours=5)  # five hours after the first discharge
    holding.add(Contact(id=f"{first_id}.c1", transition_id=first_id, sequence=1,
                        purpose="first_contact", appointment_at=seen, not_before=seen,
                        due_at=seen, status="attended", outcome="attended", outcome_at=seen))
    measure_facts.apply_pending(holding)  # holds the person's lock, not committed yet
    finished = threading.Event()

    def other_writer():
        with Session(engine) as session:
            at = START + timedelta(days=2, hours=6)
            session.add(Contact(id=f"{second_id}.c1", transition_id=second_id, sequence=1,
                                purpose="first_contact", appointment_at=at, not_before=at,
                                due_at=at, status="attended", outcome="attended", outcome_at=at))
            session.commit()
        finished.set()

    thread = threading.Thread(target=other_writer)
    thread.start()
    assert not finished.wait(1.0), "the second writer did not wait for the first"
    holding.commit()
    holding.close()
    thread.join(10)
    assert finished.is_set()

    with Session(engine) as session:
        stored = {row.transition_id: row.within_72h_met for row in session.exec(select(HandoffMeasure))}
    assert stored == {first_id: True, second_id: True}


@pytest.mark.postgres
def test_two_new_handoffs_for_one_person_at_once_do_not_deadlock(pg_one_person):
    """Inserting a handoff takes a KEY SHARE lock on its person; the refresh's lock must not
    conflict with it, or two transactions each inserting one would wait for each other."""
    engine, team, person = pg_one_person
    person_id, team_id = person.id, team.id
    sessions = [Session(engine), Session(engine)]
    for n, session in enumerate(sessions):  # both hold a KEY SHARE on the person
        session.add(Transition(id=f"handoff-{n}", kind="handoff", person_id=person_id,
                               team_id=team_id, policy_version="test", stage="monitoring",
                               event_time=START + timedelta(days=n)))
        session.flush()
    errors = []

    def commit(session):
        try:
            session.commit()
        except Exception as error:  # a deadlock is reported here
            errors.append(error)
        finally:
            session.close()

    threads = [threading.Thread(target=commit, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    with Session(engine) as session:
        assert len(session.exec(select(HandoffMeasure)).all()) == 2


def test_a_handoff_without_its_event_time_yet_has_no_clocks_and_breaks_no_others(session, team):
    person = _person(session)
    counted = _handoff(session, team, person, 1, START)
    waiting = _handoff(session, team, person, 2, None, stage="recorded")
    session.add(AuditEvent(at=START + timedelta(days=1), action="encounter.admission",
                           transition_id=waiting.id, person_id=person.id, detail={}))
    session.commit()
    assert _clocks(session, waiting.id) is None
    assert _clocks(session, counted.id).follow_up_excluded is None


def test_a_defect_computing_the_clocks_never_stops_a_record_being_written(session, team, monkeypatch,
                                                                          caplog):
    person = _person(session)
    visit = _handoff(session, team, person, 1, START)
    session.commit()
    assert _clocks(session, visit.id) is not None

    def broken(*_args):
        raise KeyError("a defect")

    monkeypatch.setattr(measure_facts, "compute", broken)
    _contact(session, visit, START + timedelta(hours=3), "attended")
    session.commit()  # the contact is recorded all the same

    assert session.get(Contact, f"{visit.id}.c1") is not None
    assert _clocks(session, visit.id) is None  # left for the next report to compute
    assert "measure clocks not computed for 1 people (KeyError)" in caplog.text
    monkeypatch.undo()
    with pytest.raises(KeyError):  # a rebuild by hand says what is wrong
        monkeypatch.setattr(measure_facts, "compute", broken)
        measure_facts.refresh_all(session)


def test_only_writes_that_can_change_a_clock_recompute_it(session, team, monkeypatch):
    visit = _handoff(session, team, _person(session), 1, START, stage="awaiting_booking")
    session.commit()
    refreshed = []
    real = measure_facts.refresh
    monkeypatch.setattr(measure_facts, "refresh",
                        lambda s, people, **kw: refreshed.append(set(people)) or real(s, people, **kw))

    visit.stage, visit.next_due_at = "first_contact_scheduled", START + timedelta(hours=4)
    session.commit()  # a running stage to another, a due date: no clock depends on them
    assert refreshed == []

    visit.stage = "inpatient_hold"  # admitted: no follow-up clock runs now
    session.commit()
    assert refreshed == [{visit.person_id}]
    assert _clocks(session, visit.id).discharged is False
