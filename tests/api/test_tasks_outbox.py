"""Task lists and completion; the outbox and a reply typed in on the person's behalf."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api_world import add_outbox_message, add_task, add_transition
from sqlmodel import Session, select
from temporalio.service import RPCError, RPCStatusCode

from handrail.domain.contact import PersonReply
from handrail.domain.handoff import Actor, CompleteTask
from handrail.store.models import InboundMessage, OutboxMessage, Task

TID = "handoff-00000000-0000-5000-8000-000000000002"


def test_my_tasks_and_my_teams_tasks(api, world):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    mine = add_task(world, transition_id=TID, team_id=world.north_id,
                    owner_id=world.staff_ids["coordinator"], title="Confirm consent")
    add_task(world, transition_id=TID, team_id=world.north_id, kind="medication_reconciliation",
             owner_id=world.staff_ids["clinician"], title="Reconcile medication")
    add_transition(world, transition_id="handoff-south", team_id=world.south_id)
    add_task(world, transition_id="handoff-south", team_id=world.south_id, title="South's task")

    own = api.get("/api/tasks?view=mine", headers=world.auth("coordinator")).json()
    team = api.get("/api/tasks?view=team", headers=world.auth("coordinator")).json()

    assert [t["id"] for t in own] == [mine.id]
    assert sorted(t["title"] for t in team) == ["Confirm consent", "Reconcile medication"]


def test_overdue_tasks(api, world):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    add_task(world, transition_id=TID, team_id=world.north_id, title="Late",
             due_at=datetime.now(UTC) - timedelta(minutes=5))
    add_task(world, transition_id=TID, team_id=world.north_id, kind="outreach_call", title="Later",
             due_at=datetime.now(UTC) + timedelta(hours=5))

    overdue = api.get("/api/tasks?view=team&overdue=true", headers=world.auth("coordinator")).json()

    assert [(t["title"], t["overdue"]) for t in overdue] == [("Late", True)]


def test_unknown_view_is_422(api, world):
    answer = api.get("/api/tasks?view=everyone", headers=world.auth("coordinator"))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "view"]


def test_completing_a_task_sends_complete_task_to_the_workflow_that_made_it(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    task = add_task(world, transition_id=TID, team_id=world.north_id, workflow_id=f"{TID}.c1")

    answer = api.post(f"/api/tasks/{task.id}/complete", json={"note": "called, left voicemail"},
                      headers=world.auth("clinician"))

    assert answer.status_code == 200
    assert temporal.calls == [("update", f"{TID}.c1", "complete_task", [
        CompleteTask(task_id=task.id, note="called, left voicemail"),
        Actor(id=world.staff_ids["clinician"], role="clinician", name="Test clinician"),
    ])]


def test_completing_a_closed_task_is_409(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    task = add_task(world, transition_id=TID, team_id=world.north_id, status="completed")
    answer = api.post(f"/api/tasks/{task.id}/complete", json={}, headers=world.auth("clinician"))
    assert answer.status_code == 409
    assert temporal.calls == []


def test_a_task_opened_after_its_transition_closed_is_completed_in_the_store(api, world, temporal):
    # A low feedback score's follow-up: the workflow asked its question after closing.
    add_transition(world, transition_id=TID, team_id=world.north_id, status="closed")
    task = add_task(world, transition_id=TID, team_id=world.north_id, workflow_id=TID,
                    kind="feedback_follow_up")

    answer = api.post(f"/api/tasks/{task.id}/complete", json={"note": "Rang them; plan clear now"},
                      headers=world.auth("clinician"))

    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["note"]) == ("completed", "Rang them; plan clear now")
    assert temporal.calls == []


def test_a_task_whose_workflow_has_ended_is_completed_in_the_store(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    task = add_task(world, transition_id=TID, team_id=world.north_id, workflow_id=f"{TID}.c1")
    temporal.update_error = RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")

    answer = api.post(f"/api/tasks/{task.id}/complete", json={}, headers=world.auth("clinician"))

    assert answer.status_code == 200 and answer.json()["status"] == "completed"
    assert [(kind, workflow_id) for kind, workflow_id, *_ in temporal.calls] == [("update", f"{TID}.c1")]


def test_another_teams_task_is_404(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.south_id)
    task = add_task(world, transition_id=TID, team_id=world.south_id)
    answer = api.post(f"/api/tasks/{task.id}/complete", json={}, headers=world.auth("clinician"))
    assert answer.status_code == 404
    assert temporal.calls == []


def test_outbox_lists_the_teams_messages(api, world):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    add_outbox_message(world, transition_id=TID, workflow_id=f"{TID}.c1")
    add_transition(world, transition_id="handoff-south", team_id=world.south_id)
    add_outbox_message(world, transition_id="handoff-south", workflow_id="handoff-south.c1")

    north = api.get("/api/outbox", headers=world.auth("coordinator")).json()

    assert [m["transition_id"] for m in north] == [TID]
    assert north[0]["body"].startswith("Reminder")


def test_reply_signals_the_contact_workflow_and_shows_on_the_message(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    message = add_outbox_message(world, transition_id=TID, workflow_id=f"{TID}.c1")

    answer = api.post(f"/api/outbox/{message.id}/reply", json={"text": "YES"},
                      headers=world.auth("coordinator"))

    assert answer.status_code == 200
    assert answer.json()["reply_text"] == "YES"
    (kind, workflow_id, signal, reply), = temporal.calls
    assert (kind, workflow_id, signal) == ("signal", f"{TID}.c1", "person_reply")
    assert isinstance(reply, PersonReply)
    assert (reply.message_id, reply.text) == (message.id, "YES")
    with Session(world.engine) as session:
        stored = session.get(OutboxMessage, message.id)
        assert stored.reply_text == "YES"
        assert stored.replied_at == reply.received_at


def test_a_reply_no_running_workflow_hears_is_kept_as_an_urgent_task_for_the_owner(api, world, temporal):
    owner_id = world.staff_ids["coordinator"]
    add_transition(world, transition_id=TID, team_id=world.north_id, owner_id=owner_id)
    message = add_outbox_message(world, transition_id=TID, workflow_id=f"{TID}.c1")
    # The contact routine and its pathway have both ended.
    temporal.signal_error = RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")

    answer = api.post(f"/api/outbox/{message.id}/reply", json={"text": "Not doing well again"},
                      headers=world.auth("coordinator"))

    assert answer.status_code == 200
    assert [(w, s) for _, w, s, _ in temporal.calls] == [(f"{TID}.c1", "person_reply"),
                                                         (TID, "person_reply")]
    with Session(world.engine) as session:
        assert session.get(OutboxMessage, message.id).reply_text == "Not doing well again"
        [kept] = session.exec(select(InboundMessage)).all()
        assert (kept.body, kept.channel, kept.heard_by) == ("Not doing well again", "outbox", None)
        task = session.get(Task, kept.task_id)
        assert (task.kind, task.priority, task.owner_id, task.transition_id, task.workflow_id) == (
            "read_reply", "urgent", owner_id, TID, None)
        assert task.due_at - kept.received_at == timedelta(hours=4)

    # No workflow waits on it: completing it is the store's.
    done = api.post(f"/api/tasks/{task.id}/complete", json={"note": "Called back; safe, plan agreed"},
                    headers=world.auth("coordinator"))
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert temporal.calls[2:] == []


def test_empty_reply_is_422(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    message = add_outbox_message(world, transition_id=TID, workflow_id=f"{TID}.c1")
    answer = api.post(f"/api/outbox/{message.id}/reply", json={"text": ""},
                      headers=world.auth("coordinator"))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "text"]
    assert temporal.calls == []


def test_clinician_may_read_the_outbox_but_not_reply(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    message = add_outbox_message(world, transition_id=TID, workflow_id=f"{TID}.c1")
    assert api.get("/api/outbox", headers=world.auth("clinician")).status_code == 200
    answer = api.post(f"/api/outbox/{message.id}/reply", json={"text": "YES"},
                      headers=world.auth("clinician"))
    assert answer.status_code == 403
    assert temporal.calls == []


def test_stop_typed_in_the_outbox_records_the_opt_out_like_a_text_would(api, world, temporal):
    from handrail.store.models import Person

    add_transition(world, transition_id=TID, team_id=world.north_id)
    message = add_outbox_message(world, transition_id=TID, workflow_id=f"{TID}.c1")

    answer = api.post(f"/api/outbox/{message.id}/reply", json={"text": "stop"},
                      headers=world.auth("coordinator"))

    assert answer.status_code == 200
    assert temporal.calls == []  # consent is recorded, not left to the workflow
    with Session(world.engine) as session:
        person = session.get(Person, message.person_id)
        assert person.opted_out_at is not None and person.consent_source == "outbox-stop"
