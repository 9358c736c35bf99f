"""Step-up slots in the store: atomic claims, a fair waitlist, and a release that hands on."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from handrail.store.capacity import capacity_board, claim_slot, release_slot
from handrail.store.models import Person, StepUpRequest, StepUpSlot, Team, Transition

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def team_with_slots(session: Session, slots: int, code: str = "crisis-north") -> Team:
    team = Team(code=code, name=code)
    session.add(team)
    session.flush()
    session.add_all([StepUpSlot(team_id=team.id, label=f"{code} slot {n}") for n in range(slots)])
    session.commit()
    return team


def step_up(session: Session, team: Team, name: str, *, urgency: str = "routine") -> str:
    person = Person(given_name="Test", family_name=name)
    session.add(person)
    session.flush()
    transition_id = f"stepup-{name}"
    session.add(Transition(id=transition_id, kind="step_up", stage="awaiting_decision",
                           person_id=person.id, team_id=team.id, policy_version="test"))
    session.flush()
    session.add(StepUpRequest(transition_id=transition_id, team_id=team.id, person_id=person.id,
                              origin="clinician", urgency=urgency, reason="test", requested_at=NOW))
    session.commit()
    return transition_id


def claim(engine, transition_id: str, at: datetime = NOW):
    with Session(engine, expire_on_commit=False) as session:
        result = claim_slot(session=session, transition_id=transition_id, at=at)
        session.commit()
        return result


def release(engine, transition_id: str, at: datetime):
    with Session(engine, expire_on_commit=False) as session:
        result = release_slot(session=session, transition_id=transition_id, at=at)
        session.commit()
        return result


def holders(session: Session) -> list[str | None]:
    session.expire_all()
    return [s.holder_transition_id for s in session.exec(select(StepUpSlot).order_by(StepUpSlot.id))]


def test_a_claim_takes_a_free_slot_once_and_a_repeat_returns_the_same_slot(engine, session):
    team = team_with_slots(session, 2)
    first = step_up(session, team, "a")
    taken = claim(engine, first)
    assert taken.slot_id is not None and claim(engine, first).slot_id == taken.slot_id
    assert holders(session).count(first) == 1


def test_the_released_slot_goes_to_the_longest_waiting_urgent_request_first(engine, session):
    team = team_with_slots(session, 1)
    holder = step_up(session, team, "holder")
    routine = step_up(session, team, "routine")
    urgent_early = step_up(session, team, "urgent-early", urgency="urgent")
    urgent_late = step_up(session, team, "urgent-late", urgency="urgent")
    assert claim(engine, holder).slot_id is not None
    for minutes, waiter in enumerate([routine, urgent_early, urgent_late]):
        assert claim(engine, waiter, NOW + timedelta(minutes=minutes)).slot_id is None

    handed = release(engine, holder, NOW + timedelta(hours=2))
    assert handed.handed_to == urgent_early and holders(session) == [urgent_early]
    # The newcomer cannot jump the queue even when it asks at the right moment.
    newcomer = step_up(session, team, "newcomer", urgency="urgent")
    assert claim(engine, newcomer, NOW + timedelta(hours=3)).slot_id is None
    row = session.get(StepUpRequest, urgent_early)
    session.refresh(row)
    assert row.capacity_status == "holding" and row.capacity_wait_seconds == pytest.approx(
        timedelta(hours=2, minutes=-1).total_seconds())
    assert claim(engine, urgent_early).slot_id == handed.slot_id  # the waiter's own re-check

    [board] = capacity_board(session=session, team_ids=[team.id], now=NOW + timedelta(hours=4))
    assert [w["transition_id"] for w in board["waiting"]] == [urgent_late, newcomer, routine]
    assert board["free"] == 0 and board["slots"][0]["holder_transition_id"] == urgent_early

    release(engine, urgent_early, NOW + timedelta(hours=5))
    release(engine, urgent_late, NOW + timedelta(hours=5))  # a waiter leaving: no slot involved
    assert holders(session) == [newcomer]


@pytest.mark.parametrize("store_backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_concurrent_claims_on_the_last_slot_give_exactly_one_holder(engine, session):
    for round_ in range(15):  # a fresh team with one slot each round
        team = team_with_slots(session, 1, code=f"team-{round_}")
        slot = session.exec(select(StepUpSlot).where(StepUpSlot.team_id == team.id)).one()
        contenders = [step_up(session, team, f"r{round_}-{n}") for n in range(2)]
        start = threading.Barrier(len(contenders))
        results: dict[str, object] = {}

        def contend(transition_id: str, start=start, results=results) -> None:
            with Session(engine, expire_on_commit=False) as own:
                own.exec(select(StepUpSlot.id)).all()  # the transaction is open before the race
                start.wait()
                results[transition_id] = claim_slot(session=own, transition_id=transition_id, at=NOW)
                own.commit()

        threads = [threading.Thread(target=contend, args=(c,)) for c in contenders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        won = [c for c in contenders if results[c].slot_id is not None]
        assert len(won) == 1, f"round {round_}: {results}"
        session.expire_all()
        assert session.get(StepUpSlot, slot.id).holder_transition_id == won[0]
        [loser] = set(contenders) - set(won)
        assert session.get(StepUpRequest, loser).capacity_status == "waiting"
        assert release(engine, won[0], NOW).handed_to == loser  # and then it is the loser's
