"""The read model as a user meets it: their teams' rows only, filtered and ordered as asked."""

from __future__ import annotations

from datetime import timedelta

from handrail.store import queries
from handrail.store.models import AuditEvent, Contact, Decision, OutreachAttempt

HOUR = timedelta(hours=1)


def _ids(rows) -> list:
    return [row["id"] if isinstance(row, dict) else row.id for row in rows]


def test_transitions_list_shows_only_my_teams_newest_first_with_names(world, rows, now):
    ada = rows.person("Ada", "Synthetic")
    older = rows.transition(world.north, person=ada, created_at=now - 2 * HOUR)
    newer = rows.transition(world.north, created_at=now - HOUR)
    rows.transition(world.east, created_at=now)

    listed = queries.list_transitions(session=world.session, team_ids=[world.north.id], now=now)

    assert _ids(listed) == [newer.id, older.id]
    assert listed[1]["person_name"] == "Ada Synthetic"
    assert listed[1]["team"] == "crisis-north"


def test_transitions_filters_narrow_the_list(world, rows, now):
    coordinator = world.staff(world.north, "transition_coordinator")
    mine = rows.transition(world.north, owner=coordinator)
    step_up = rows.transition(world.north, kind="step_up")
    closed = rows.transition(world.north, status="closed")
    east = rows.transition(world.east)
    both = [world.north.id, world.east.id]

    def listed(**filters):
        return set(_ids(queries.list_transitions(
            session=world.session, team_ids=both, now=now, **filters)))

    assert listed(owner_id=coordinator.id) == {mine.id}
    assert listed(kind="step_up") == {step_up.id}
    assert listed(status="closed") == {closed.id}
    assert listed(team_id=world.east.id) == {east.id}
    assert listed(team_code="community-east") == {east.id}
    assert listed() == {mine.id, step_up.id, closed.id, east.id}


def test_overdue_means_open_and_past_its_next_due_time(world, rows, now):
    late = rows.transition(world.north, next_due_at=now - HOUR)
    rows.transition(world.north, status="closed", next_due_at=now - HOUR)
    on_time = rows.transition(world.north, next_due_at=now + HOUR)
    undated = rows.transition(world.north)
    north = [world.north.id]

    overdue = queries.list_transitions(session=world.session, team_ids=north, now=now, overdue=True)
    not_overdue = queries.list_transitions(
        session=world.session, team_ids=north, now=now, overdue=False)

    assert _ids(overdue) == [late.id] and overdue[0]["overdue"] is True
    assert set(_ids(not_overdue)) >= {on_time.id, undated.id}
    assert late.id not in _ids(not_overdue)
    assert not any(row["overdue"] for row in not_overdue)


def test_transitions_page_with_limit_and_offset(world, rows, now):
    made = [rows.transition(world.north, created_at=now - n * HOUR) for n in range(5)]

    first = queries.list_transitions(
        session=world.session, team_ids=[world.north.id], now=now, limit=2)
    third = queries.list_transitions(
        session=world.session, team_ids=[world.north.id], now=now, limit=2, offset=4)

    assert _ids(first) == [made[0].id, made[1].id]
    assert _ids(third) == [made[4].id]


def test_transition_detail_gathers_everything_with_the_timeline_in_time_order(world, rows, now):
    owner = world.staff(world.north, "transition_coordinator")
    transition = rows.transition(world.north, owner=owner)
    task = rows.task(transition, owner=owner, due_at=now + HOUR)
    contact_id = f"{transition.id}.c1"
    session = world.session
    session.add(Contact(id=contact_id, transition_id=transition.id, sequence=1,
                        purpose="first_contact", appointment_at=now, not_before=now - HOUR,
                        due_at=now + HOUR))
    session.flush()
    session.add(OutreachAttempt(key=f"{contact_id}.reminder-1", transition_id=transition.id,
                                contact_id=contact_id, workflow_id=contact_id,
                                person_id=transition.person_id, step="reminder-1", channel="sms",
                                status="sent"))
    session.add(Decision(key=f"{transition.id}.decision", transition_id=transition.id,
                         kind="ladder_end", decision="disengaged", reason="no contact",
                         decided_at=now))
    # Written out of order: the timeline is ordered by when things happened.
    for minutes, action in ((30, "booked"), (0, "recorded"), (10, "read"), (20, "owner_assigned")):
        session.add(AuditEvent(key=f"{transition.id}.{action}", at=now + timedelta(minutes=minutes),
                               action=action, transition_id=transition.id, actor_id=owner.id))
    session.flush()

    detail = queries.get_transition_detail(
        session=session, transition_id=transition.id, team_ids=[world.north.id], now=now)

    assert detail["person"]["display_name"] == "Test Person1"
    assert detail["owner"]["name"] == owner.name and detail["team"]["code"] == "crisis-north"
    assert [t["id"] for t in detail["tasks"]] == [task.id]
    assert [c["id"] for c in detail["contacts"]] == [contact_id]
    assert [a["step"] for a in detail["outreach_attempts"]] == ["reminder-1"]
    assert [d["decision"] for d in detail["decisions"]] == ["disengaged"]
    assert [e["action"] for e in detail["timeline"]] == ["recorded", "owner_assigned", "booked"]
    assert detail["timeline"][0]["actor_name"] == owner.name
    assert "hash" not in detail["timeline"][0]


def test_transition_detail_of_another_team_or_unknown_is_none(world, rows):
    east = rows.transition(world.east)

    assert queries.get_transition_detail(
        session=world.session, transition_id=east.id, team_ids=[world.north.id]) is None
    assert queries.get_transition_detail(
        session=world.session, transition_id="handoff-nope", team_ids=[world.north.id]) is None


def test_my_tasks_are_mine_and_overdue_ones_come_first(world, rows, now):
    me = world.staff(world.north, "transition_coordinator")
    colleague = world.staff(world.north, "clinician")
    transition = rows.transition(world.north)
    later = rows.task(transition, owner=me, due_at=now + 2 * HOUR)
    undated = rows.task(transition, owner=me)
    overdue = rows.task(transition, owner=me, due_at=now - HOUR)
    very_overdue = rows.task(transition, owner=me, due_at=now - 5 * HOUR)
    rows.task(transition, owner=colleague, due_at=now - 9 * HOUR)
    rows.task(transition, owner=me, due_at=now - 9 * HOUR, status="completed")

    mine = queries.list_tasks(
        session=world.session, team_ids=[world.north.id], mine_staff_id=me.id, now=now)
    mine_overdue = queries.list_tasks(session=world.session, team_ids=[world.north.id],
                                      mine_staff_id=me.id, overdue=True, now=now)

    assert _ids(mine) == [very_overdue.id, overdue.id, later.id, undated.id]
    assert _ids(mine_overdue) == [very_overdue.id, overdue.id]


def test_team_tasks_include_unowned_and_colleagues_but_never_another_teams(world, rows, now):
    me = world.staff(world.north, "transition_coordinator")
    colleague = world.staff(world.north, "clinician")
    north = rows.transition(world.north)
    unowned = rows.task(north, due_at=now + HOUR)
    theirs = rows.task(north, owner=colleague, due_at=now)
    done = rows.task(north, owner=me, status="completed")
    rows.task(rows.transition(world.east), due_at=now - HOUR)

    team = queries.list_tasks(session=world.session, team_ids=[world.north.id], now=now)
    closed = queries.list_tasks(
        session=world.session, team_ids=[world.north.id], status_open=False, now=now)

    assert _ids(team) == [theirs.id, unowned.id]
    assert _ids(closed) == [done.id]


def test_get_task_is_scoped_to_my_teams(world, rows):
    east_task = rows.task(rows.transition(world.east))

    assert queries.get_task(
        session=world.session, task_id=east_task.id, team_ids=[world.east.id]).id == east_task.id
    assert queries.get_task(
        session=world.session, task_id=east_task.id, team_ids=[world.north.id]) is None


def test_outbox_lists_my_teams_messages_newest_first_with_their_transition(world, rows, now):
    north = rows.transition(world.north)
    first = rows.outbox(north, created_at=now - HOUR)
    second = rows.outbox(north, created_at=now)
    east_message = rows.outbox(rows.transition(world.east), created_at=now + HOUR)
    rows.outbox(None, created_at=now + 2 * HOUR)  # no transition: nobody's

    listed = queries.list_outbox(session=world.session, team_ids=[world.north.id])

    assert _ids(listed) == [second.id, first.id]
    assert {message.transition_id for message in listed} == {north.id}
    assert queries.get_outbox_message(
        session=world.session, message_id=east_message.id, team_ids=[world.north.id]) is None
    assert queries.get_outbox_message(
        session=world.session, message_id=first.id, team_ids=[world.north.id]).id == first.id
