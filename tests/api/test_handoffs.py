"""POST /api/handoffs: a notification starts one warm handoff, however often it is sent."""

from __future__ import annotations

import copy

import pytest
from api_world import NOTIFICATION

from handrail.domain.handoff import HandoffInput
from handrail.domain.ids import handoff_workflow_id


def test_new_notification_starts_a_handoff_and_answers_202(api, world, temporal, settings):
    answer = api.post("/api/handoffs", json=NOTIFICATION, headers=world.auth("coordinator"))

    assert answer.status_code == 202
    expected_id = handoff_workflow_id(
        key=b"test-key", source_system="st-elsewhere-ed", encounter_id="ENC-0001"
    )
    assert answer.json() == {
        "transition_id": expected_id, "status_url": f"/api/transitions/{expected_id}",
    }
    workflow, arg, options = temporal.started[expected_id]
    assert workflow == "PostCrisisHandoff"
    assert isinstance(arg, HandoffInput)
    assert arg.team_code == "crisis-north"  # the seconds policy's default team
    assert arg.notification.encounter_id == "ENC-0001"
    assert options["task_queue"] == settings.task_queue
    assert "MRN" not in expected_id and "ENC" not in expected_id


def test_repeat_of_the_same_encounter_answers_200_with_the_same_transition(api, world, temporal):
    first = api.post("/api/handoffs", json=NOTIFICATION, headers=world.auth("coordinator"))
    again = copy.deepcopy(NOTIFICATION)
    again["summary"]["safety_plan"] = "A later resend with more detail"
    second = api.post("/api/handoffs", json=again, headers=world.auth("clinician"))

    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json()["transition_id"] == first.json()["transition_id"]
    assert len(temporal.started) == 1


def test_named_team_is_used(api, world, temporal):
    body = {**NOTIFICATION, "team": "crisis-south"}
    answer = api.post("/api/handoffs", json=body, headers=world.auth("coordinator"))
    assert answer.status_code == 202
    (_, arg, _), = temporal.started.values()
    assert arg.team_code == "crisis-south"


def _without(path: list[str | int]) -> dict:
    body = copy.deepcopy(NOTIFICATION)
    target = body
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return body


def _with(path: list[str | int], value) -> dict:
    body = copy.deepcopy(NOTIFICATION)
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return body


BAD_INPUT = {
    "missing identifiers": (_without(["person", "identifiers"]), ["body", "person", "identifiers"]),
    "empty identifiers": (_with(["person", "identifiers"], []), ["body", "person", "identifiers"]),
    "identifiers wrong type": (_with(["person", "identifiers"], "MRN-1"), ["body", "person", "identifiers"]),
    "unknown source": (_with(["source"], "walk_in_centre"), ["body", "source"]),
    "naive event_time": (_with(["event_time"], "2026-11-20T14:30:00"), ["body", "event_time"]),
    "not a time": (_with(["event_time"], "yesterday"), ["body", "event_time"]),
    "bad phone": (_with(["person", "phone"], "07700 900123"), ["body", "person", "phone"]),
    "blank encounter": (_with(["encounter_id"], "   "), ["body", "encounter_id"]),
    "unknown field": (_with(["ward"], "7B"), ["body", "ward"]),
    "unknown time zone": (_with(["person", "time_zone"], "Mars/Olympus"), ["body", "person", "time_zone"]),
    "unknown team": (_with(["team"], "no-such-team"), ["body", "team"]),
    "team with a NUL": (_with(["team"], "crisis-north\u0000"), ["body", "team"]),
    "name with a NUL": (_with(["person", "given_name"], "Al\u0000ex"), ["body", "person", "given_name"]),
    "encounter with a control character": (_with(["encounter_id"], "E\u001b[2J"), ["body", "encounter_id"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_notification_is_422_naming_the_field_and_starts_nothing(api, world, temporal, case):
    body, location = BAD_INPUT[case]
    answer = api.post("/api/handoffs", json=body, headers=world.auth("coordinator"))

    assert answer.status_code == 422, answer.text
    locations = [error["loc"] for error in answer.json()["detail"]]
    assert any(loc[: len(location)] == location for loc in locations), locations
    assert all(error["msg"] for error in answer.json()["detail"])
    assert temporal.started == {}


def test_body_that_is_not_json_is_422(api, world, temporal):
    answer = api.post(
        "/api/handoffs", content=b"MSH|^~\\&|", headers={**world.auth("coordinator"),
                                                       "Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert temporal.started == {}


def test_role_without_permission_cannot_start_a_handoff(api, world, temporal):
    answer = api.post("/api/handoffs", json=NOTIFICATION, headers=world.auth("admin"))
    assert answer.status_code == 403
    assert temporal.started == {}
