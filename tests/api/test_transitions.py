"""Transitions: the record with its live state, the audit of every read, and staff actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_world import ON_POSTGRES, add_task, add_transition
from sqlmodel import Session, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from handrail.domain.handoff import Actor, Booking, CloseTransition, HandoffStage, HandoffState
from handrail.security.audit import verify_chain
from handrail.store.models import AuditEvent

TID = "handoff-00000000-0000-5000-8000-000000000001"


def test_detail_merges_the_store_with_the_live_status(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    add_task(world, transition_id=TID, team_id=world.north_id)
    temporal.states[TID] = HandoffState(
        transition_id=TID, stage=HandoffStage.awaiting_booking, team_id=world.north_id
    )

    answer = api.get(f"/api/transitions/{TID}", headers=world.auth("clinician"))

    assert answer.status_code == 200
    body = answer.json()
    assert body["id"] == TID
    assert body["person"]["family_name"] == "Testperson"
    assert [t["title"] for t in body["tasks"]] == ["Book first contact"]
    assert body["status"]["stage"] == "awaiting_booking"


def test_detail_still_answers_from_the_store_when_the_workflow_cannot_be_asked(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id)  # no live state: query fails

    answer = api.get(f"/api/transitions/{TID}", headers=world.auth("clinician"))

    assert answer.status_code == 200
    assert answer.json()["status"] is None
    assert answer.json()["stage"] == "awaiting_booking"


@pytest.mark.parametrize("api_engine", ["sqlite", ON_POSTGRES], indirect=True)
def test_reading_a_record_is_audited_with_who_and_from_where(api, world):
    add_transition(world, transition_id=TID, team_id=world.north_id)

    api.get(f"/api/transitions/{TID}", headers=world.auth("clinician"))

    with Session(world.engine) as session:
        reads = session.exec(select(AuditEvent).where(AuditEvent.action == "read")).all()
        assert [(e.actor_id, e.transition_id, e.person_id, e.source) for e in reads] == [
            (world.staff_ids["clinician"], TID, world.person_id, "203.0.113.9")
        ]
        assert verify_chain(session).ok


def test_a_started_workflow_not_yet_recorded_answers_from_its_query(api, world, temporal):
    temporal.states[TID] = HandoffState(transition_id=TID)

    answer = api.get(f"/api/transitions/{TID}", headers=world.auth("coordinator"))

    assert answer.status_code == 200
    assert answer.json() == {
        "id": TID, "recorded": False, "status": HandoffState(transition_id=TID).model_dump(mode="json"),
    }


def test_unknown_transition_is_404(api, world):
    answer = api.get(f"/api/transitions/{TID}", headers=world.auth("coordinator"))
    assert answer.status_code == 404


def test_live_state_of_another_teams_unrecorded_transition_is_404(api, world, temporal):
    temporal.states[TID] = HandoffState(transition_id=TID, team_id=world.south_id)
    assert api.get(f"/api/transitions/{TID}", headers=world.auth("coordinator")).status_code == 404


def test_list_filters_overdue_and_kind(api, world):
    past = datetime.now(UTC) - timedelta(hours=1)
    future = datetime.now(UTC) + timedelta(hours=1)
    add_transition(world, transition_id="handoff-late", team_id=world.north_id, next_due_at=past)
    add_transition(world, transition_id="handoff-on-time", team_id=world.north_id, next_due_at=future)

    overdue = api.get("/api/transitions?overdue=true", headers=world.auth("coordinator")).json()
    step_ups = api.get("/api/transitions?kind=step_up", headers=world.auth("coordinator")).json()

    assert [t["id"] for t in overdue] == ["handoff-late"]
    assert step_ups == []


def test_list_pages_and_refuses_a_silly_limit(api, world):
    for n in range(3):
        add_transition(world, transition_id=f"handoff-page-{n}", team_id=world.north_id)
    page = api.get("/api/transitions?limit=2&offset=0", headers=world.auth("coordinator")).json()
    rest = api.get("/api/transitions?limit=2&offset=2", headers=world.auth("coordinator")).json()
    assert len(page) == 2 and len(rest) == 1
    assert {t["id"] for t in page + rest} == {f"handoff-page-{n}" for n in range(3)}
    too_many = api.get("/api/transitions?limit=100000", headers=world.auth("coordinator"))
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["query", "limit"]


# --- actions -------------------------------------------------------------------------------


def book(api, world, who="coordinator", body=None, action="book"):
    body = body if body is not None else {"appointment_at": "2026-12-01T10:00:00+00:00"}
    return api.post(f"/api/transitions/{TID}/actions/{action}", json=body, headers=world.auth(who))


def test_action_is_sent_as_the_update_with_the_command_and_the_acting_user(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    temporal.update_result = HandoffState(transition_id=TID, stage=HandoffStage.first_contact_scheduled)

    answer = book(api, world)

    assert answer.status_code == 200
    assert answer.json()["stage"] == "first_contact_scheduled"
    (kind, workflow_id, update, (command, actor)), = [c for c in temporal.calls if c[0] == "update"]
    assert (kind, workflow_id, update) == ("update", TID, "book")
    assert command == Booking(appointment_at=datetime(2026, 12, 1, 10, tzinfo=UTC))
    assert actor == Actor(id=world.staff_ids["coordinator"], role="transition_coordinator",
                          name="Test coordinator")


def test_close_sends_the_close_update(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    answer = book(api, world, body={"reason": "moved out of area"}, action="close")
    assert answer.status_code == 200
    assert temporal.calls[-1][2:] == ("close", [
        CloseTransition(reason="moved out of area"),
        Actor(id=world.staff_ids["coordinator"], role="transition_coordinator", name="Test coordinator"),
    ])


def test_unknown_action_is_404(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    assert book(api, world, action="discharge").status_code == 404
    assert not temporal.calls


def test_role_not_allowed_for_the_action_is_403(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    answer = book(api, world, who="clinician", body={"decision": "close_disengaged", "reason": "x"},
                  action="decide")
    assert answer.status_code == 403
    assert "supervisor" in answer.json()["detail"]
    assert not [c for c in temporal.calls if c[0] == "update"]


@pytest.mark.parametrize("body, field", [
    ({}, "appointment_at"),
    ({"appointment_at": "2026-12-01T10:00:00"}, "appointment_at"),
    ({"appointment_at": "soon"}, "appointment_at"),
    ({"appointment_at": "2026-12-01T10:00:00+00:00", "room": "3"}, "room"),
    ({"appointment_at": "2026-12-01T10:00:00+00:00", "location": "x" * 201}, "location"),
])
def test_bad_command_is_422_naming_the_field_and_sends_nothing(api, world, temporal, body, field):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    answer = book(api, world, body=body)
    assert answer.status_code == 422, answer.text
    assert ["body", field] in [e["loc"] for e in answer.json()["detail"]]
    assert not [c for c in temporal.calls if c[0] == "update"]


def test_body_that_is_not_an_object_is_422(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    answer = book(api, world, body=["appointment_at"])
    assert answer.status_code == 422
    assert not [c for c in temporal.calls if c[0] == "update"]


@pytest.mark.parametrize("refusal, expected", [
    ("StageConflict", 409), ("InvalidAction", 422), ("Forbidden", 403),
])
def test_the_workflows_refusal_keeps_its_reason(api, world, temporal, refusal, expected):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    temporal.update_error = WorkflowUpdateFailedError(
        ApplicationError("nothing to book while the transition is monitoring", type=refusal)
    )
    answer = book(api, world)
    assert answer.status_code == expected
    assert answer.json()["detail"] == "nothing to book while the transition is monitoring"


def test_action_on_a_finished_workflow_is_409(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id, status="closed")
    temporal.update_error = RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")
    answer = book(api, world)
    assert answer.status_code == 409
    assert "closed" in answer.json()["detail"]


def test_malformed_json_is_422(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    answer = api.post(f"/api/transitions/{TID}/actions/book", content=b"{appointment_at: soon",
                      headers={**world.auth("coordinator"), "Content-Type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body"]
    assert not [c for c in temporal.calls if c[0] == "update"]


def test_openapi_documents_every_actions_command(api):
    document = api.get("/openapi.json").json()
    action = document["paths"]["/api/transitions/{transition_id}/actions/{action}"]["post"]
    titles = [s["title"] for s in action["requestBody"]["content"]["application/json"]["schema"]["oneOf"]]
    assert titles == ["ConfirmDetails", "Booking", "OutcomeReport", "CompleteTask", "Reassign",
                      "SupervisorDecision", "CloseTransition",
                      "ConfirmProposal", "StepUpDecision", "StepUpReview",  # a step-up's own
                      "AdjustTaper", "EarlyWarning", "ExitPlan", "CloseStepDown",  # a step-down's
                      "AvoidanceDecision", "AvoidanceReview", "RiskReport", "CarerDetails",
                      "WithdrawCarerConsent"]  # an admission avoidance's


def test_action_on_an_unknown_transition_is_404(api, world, temporal):
    answer = book(api, world)
    assert answer.status_code == 404
    assert not [c for c in temporal.calls if c[0] == "update"]


@pytest.mark.parametrize("api_engine", ["sqlite", ON_POSTGRES], indirect=True)
@pytest.mark.parametrize("method, url, field", [
    ("get", "/api/transitions/handoff-%00x", ["path", "transition_id"]),
    ("get", f"/api/transitions/handoff-{'x' * 500}", ["path", "transition_id"]),
    ("get", "/api/transitions?owner=99999999999999999999", ["query", "owner"]),
    ("get", "/api/transitions?team=north%00", ["query", "team"]),
    ("get", "/api/transitions?kind=everything", ["query", "kind"]),
    ("get", "/api/transitions?status=lost", ["query", "status"]),
    ("post", "/api/tasks/99999999999999999999/complete", ["path", "task_id"]),
    ("post", "/api/tasks/-1/complete", ["path", "task_id"]),
    ("post", "/api/outbox/99999999999999999999/reply", ["path", "message_id"]),
])
def test_silly_ids_and_filters_are_422_never_500(api, world, method, url, field):
    answer = getattr(api, method)(url, headers=world.auth("coordinator"),
                                  **({"json": {"text": "YES"}} if method == "post" else {}))
    assert answer.status_code == 422, answer.text
    assert field in [e["loc"] for e in answer.json()["detail"]]


def test_deeply_nested_json_is_422(api, world, temporal):
    add_transition(world, transition_id=TID, team_id=world.north_id)
    nested = b"[" * 100_000 + b"]" * 100_000
    answer = api.post(f"/api/transitions/{TID}/actions/book", content=nested,
                      headers={**world.auth("coordinator"), "Content-Type": "application/json"})
    assert answer.status_code == 422
