"""A seeded week (2026-W10, Monday 2 March, GMT) holding one case of each assurance check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from handrail.store.models import Contact, Person, StepUpRequest, Transition

WEEK = "2026-W10"
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)


def seed_week(engine: Engine, team_id: int, monday: datetime = MONDAY) -> dict[str, str]:
    """The transition each check should find, by check name, in the week from `monday`."""
    with Session(engine) as session:
        people = [Person(given_name="Week", family_name=f"Person{n}") for n in range(5)]
        session.add_all(people)
        session.flush()

        def transition(name: str, person: Person, kind: str = "handoff", **fields) -> str:
            session.add(Transition(id=f"{kind}-{name}", kind=kind, stage="monitoring",
                                   person_id=person.id, team_id=team_id, policy_version="test",
                                   **fields))
            session.flush()
            return f"{kind}-{name}"

        missed = transition("missed", people[0], source="emergency_department", event_time=monday)
        appointment = monday + timedelta(days=1)
        session.add(Contact(id=f"{missed}.c1", transition_id=missed, sequence=1, purpose="first",
                            appointment_at=appointment, not_before=monday, status="missed",
                            due_at=appointment + timedelta(hours=4), outcome="missed"))
        late = transition("late", people[1], source="emergency_department", event_time=monday,
                          first_contact_due=monday + timedelta(hours=72))
        waiting = transition("waiting", people[2], kind="step_up")
        session.add(StepUpRequest(transition_id=waiting, team_id=team_id, person_id=people[2].id,
                                  origin="clinician", urgency="urgent", reason="deteriorating",
                                  requested_at=monday - timedelta(days=2),
                                  waiting_since=monday - timedelta(days=1), capacity_status="waiting"))
        stepped_down = transition("tapering", people[3], kind="step_down",
                                  event_time=monday - timedelta(days=30))
        transition("crisis-again", people[3], source="crisis_line",
                   event_time=monday + timedelta(days=4))
        session.commit()
    return {"missed_first_appointments": missed, "delayed_follow_ups": late,
            "waiting_for_capacity": waiting, "repeat_crisis_after_step_down": stepped_down}
