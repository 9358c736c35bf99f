"""Hospital notifications over HTTP: the ACK or JSON a sender gets, and what reached Temporal."""

from __future__ import annotations

import asyncio
import json

import hl7
import httpx
import pytest
from fastapi.testclient import TestClient
from intake_world import fixture_bytes
from sqlmodel import Session, select

from handrail.api.app import create_app
from handrail.domain.handoff import HandoffInput
from handrail.domain.intake import EncounterEvent, EncounterEventKind
from handrail.security.audit import verify_chain
from handrail.store.models import AuditEvent

HL7_TYPE = {"Content-Type": "x-application/hl7-v2+er7"}


def post_hl7(api, world, name: str, who: str = "crisis_worker") -> hl7.Message:
    response = api.post("/api/intake/hl7", content=fixture_bytes(name),
                        headers={**HL7_TYPE, **world.auth(who)})
    assert response.status_code == 200, response.text
    return hl7.parse(response.text)


def msa(ack: hl7.Message) -> tuple[str, str, str]:
    seg = ack.segment("MSA")
    return str(seg(1)), str(seg(2)), str(seg(3)) if len(seg) > 3 else ""


def events_to(temporal, workflow_id: str) -> list[EncounterEventKind]:
    return [arg.kind for wid, name, arg in temporal.signals
            if wid == workflow_id and name == "encounter_event"]


def only_start(temporal) -> tuple[str, HandoffInput]:
    assert len(temporal.starts) == 1, temporal.starts
    workflow_id, workflow, arg = temporal.starts[0]
    assert workflow == "PostCrisisHandoff" and workflow_id.startswith("handoff-")
    return workflow_id, arg


# ---- HL7 v2 ------------------------------------------------------------------------------

def test_a03_ed_discharge_starts_the_handoff(api, world, temporal):
    assert msa(post_hl7(api, world, "a03_ed_discharge_v251.hl7"))[:2] == ("AA", "EPC-A03-0002")
    workflow_id, handoff = only_start(temporal)
    assert handoff.transition_id == workflow_id and handoff.team_code == "crisis-north"
    assert handoff.notification.person.phone == "+447700900001"
    assert temporal.signals == []  # a plain start: the handoff begins at its discharge


def test_a03_from_a_crisis_unit_in_v23_with_lf_endings_starts_the_handoff(api, world, temporal):
    assert msa(post_hl7(api, world, "a03_csu_discharge_v23_lf.hl7"))[0] == "AA"
    _, handoff = only_start(temporal)
    assert handoff.notification.source == "crisis_stabilization"


def test_a04_opens_a_handoff_waiting_for_discharge_then_a03_discharges_it(api, world, temporal):
    assert msa(post_hl7(api, world, "a04_ed_registration_v251.hl7"))[0] == "AA"
    workflow_id, _ = only_start(temporal)
    assert events_to(temporal, workflow_id) == [EncounterEventKind.ed_registration]

    assert msa(post_hl7(api, world, "a03_ed_discharge_v251.hl7"))[0] == "AA"
    only_start(temporal)  # still the one workflow
    assert events_to(temporal, workflow_id)[-1] == EncounterEventKind.discharge
    discharge: EncounterEvent = temporal.signals[-1][2]
    assert discharge.message_id == "EPC-A03-0002" and discharge.occurred_at.hour == 16


def test_a06_puts_the_open_handoff_on_hold(api, world, temporal):
    post_hl7(api, world, "a04_ed_registration_v251.hl7")
    assert msa(post_hl7(api, world, "a06_to_inpatient_v251.hl7"))[0] == "AA"
    workflow_id, _ = only_start(temporal)
    assert events_to(temporal, workflow_id) == [EncounterEventKind.ed_registration,
                                                EncounterEventKind.admission]


def test_a01_to_a_behavioural_health_unit_opens_a_held_handoff_and_a11_undoes_it(api, world, temporal):
    assert msa(post_hl7(api, world, "a01_bhu_admission_v28_crlf.hl7"))[0] == "AA"
    workflow_id, handoff = only_start(temporal)
    assert handoff.notification.source == "inpatient"
    assert msa(post_hl7(api, world, "a11_cancel_admit_v23.hl7"))[0] == "AA"
    assert events_to(temporal, workflow_id) == [EncounterEventKind.admission,
                                                EncounterEventKind.cancel_admission]
    assert temporal.signals[-1][2].reason.startswith("A11")


def test_a08_updates_contact_details_of_the_open_handoff(api, world, temporal):
    post_hl7(api, world, "a04_ed_registration_v251.hl7")
    assert msa(post_hl7(api, world, "a08_update_v251.hl7"))[0] == "AA"
    workflow_id, _ = only_start(temporal)
    update: EncounterEvent = temporal.signals[-1][2]
    assert update.kind == EncounterEventKind.update
    assert update.notification.person.phone == "+447700900099"


def test_a13_cancels_the_discharge(api, world, temporal):
    post_hl7(api, world, "a04_ed_registration_v251.hl7")
    post_hl7(api, world, "a03_ed_discharge_v251.hl7")
    assert msa(post_hl7(api, world, "a13_cancel_discharge_v28.hl7"))[0] == "AA"
    workflow_id, _ = only_start(temporal)
    assert events_to(temporal, workflow_id)[-1] == EncounterEventKind.cancel_discharge


@pytest.mark.parametrize("name", ["a08_update_v251.hl7", "a13_cancel_discharge_v28.hl7",
                                  "a11_cancel_admit_v23.hl7"])
def test_follow_up_events_without_an_open_handoff_are_acknowledged_and_ignored(api, world, temporal, name):
    ack_code, _, text = msa(post_hl7(api, world, name))
    assert ack_code == "AA" and text
    assert temporal.starts == [] and temporal.signals == []


def test_out_of_scope_discharge_is_acknowledged_ignored_and_counted_once(api, world, temporal):
    for _ in range(2):  # a resend of the same message is not a second event
        ack_code, _, text = msa(post_hl7(api, world, "a03_out_of_scope_v251.hl7"))
        assert (ack_code, text) == ("AA", "out of scope")
    assert temporal.starts == [] and temporal.signals == []
    post_fhir(api, world, fixture_bytes("fhir_davinci_discharge_out_of_scope.json"))
    counts = api.get("/api/intake/counts", headers=world.auth("supervisor")).json()
    assert {"format": "hl7v2", "outcome": "ignored", "reason": "out of scope", "count": 1} in counts
    assert {"format": "fhir", "outcome": "ignored", "reason": "out of scope", "count": 1} in counts


def test_refusals_are_counted_by_field_in_the_audit_trail_without_personal_data(api, world):
    post_hl7(api, world, "bad_no_pid3_v251.hl7")
    post_hl7(api, world, "a03_out_of_scope_v251.hl7")
    post_fhir(api, world, fixture_bytes("bad_fhir_discharge_no_end.json"))
    counts = api.get("/api/intake/counts", headers=world.auth("supervisor")).json()
    assert {"format": "hl7v2", "outcome": "rejected", "reason": "PID-3", "count": 1} in counts
    assert {"format": "fhir", "outcome": "rejected", "reason": "entry[2].resource.period.end",
            "count": 1} in counts
    with Session(world.engine) as session:
        entries = session.exec(select(AuditEvent)).all()
        assert verify_chain(session).ok
    stored = json.dumps([[e.key, e.detail, e.source] for e in entries])
    for personal in ("Sampleperson", "Robin", "E1000077", "V20261120-0077", "Fhirperson", "LK-500100"):
        assert personal not in stored
    assert api.get("/api/intake/counts", headers=world.auth("crisis_worker")).status_code == 403


def test_without_temporal_unreadable_messages_are_still_answered_and_others_get_503(
    settings, world
):
    app = create_app(settings, engine=world.engine)  # Temporal at 127.0.0.1:1: unreachable
    with TestClient(app) as api:
        assert msa(post_hl7(api, world, "garbage.txt"))[0] == "AR"
        response = api.post("/api/intake/hl7", content=fixture_bytes("a03_ed_discharge_v251.hl7"),
                            headers={**HL7_TYPE, **world.auth()})
        assert response.status_code == 503


@pytest.mark.parametrize(("name", "code", "text"), [
    ("garbage.txt", "AR", "MSH: not an HL7 v2 message"),
    ("bad_no_pid3_v251.hl7", "AE", "PID-3: no patient identifier"),
    ("bad_a03_no_discharge_time_v251.hl7", "AE", "PV1-45: discharge time missing for A03"),
    ("bad_not_adt_v251.hl7", "AR", "MSH-9: unsupported message type"),
])
def test_bad_messages_are_answered_with_the_field_and_create_nothing(api, world, temporal, name, code, text):
    ack_code, _, reason = msa(post_hl7(api, world, name))
    assert ack_code == code and reason.startswith(text)
    assert temporal.starts == [] and temporal.signals == []


def test_the_same_a03_twice_in_a_row_starts_one_workflow(api, world, temporal):
    for _ in range(2):
        assert msa(post_hl7(api, world, "a03_ed_discharge_v251.hl7"))[0] == "AA"
    only_start(temporal)


def test_a03_after_the_handoff_closed_starts_nothing_new(api, world, temporal):
    post_hl7(api, world, "a03_ed_discharge_v251.hl7")
    workflow_id, _ = only_start(temporal)
    temporal.close(workflow_id)
    ack_code, _, text = msa(post_hl7(api, world, "a03_ed_discharge_v251.hl7"))
    assert (ack_code, text) == ("AA", "transition closed")
    only_start(temporal)


async def test_the_same_message_sent_concurrently_starts_one_workflow(app, world, temporal):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake.test") as client:
        async def send(name: str) -> str:
            response = await client.post("/api/intake/hl7", content=fixture_bytes(name),
                                         headers={**HL7_TYPE, **world.auth()})
            return msa(hl7.parse(response.text))[0]

        codes = await asyncio.gather(*[send("a03_ed_discharge_v251.hl7") for _ in range(4)],
                                     *[send("a04_ed_registration_v251.hl7") for _ in range(2)])
    assert codes == ["AA"] * 6
    only_start(temporal)


def test_intake_needs_a_token_with_intake_submit(api, world, temporal):
    raw = fixture_bytes("a03_ed_discharge_v251.hl7")
    assert api.post("/api/intake/hl7", content=raw, headers=HL7_TYPE).status_code == 401
    forbidden = api.post("/api/intake/hl7", content=raw, headers={**HL7_TYPE, **world.auth("clinician")})
    assert forbidden.status_code == 403
    assert temporal.starts == []


# ---- FHIR R4 -----------------------------------------------------------------------------

def post_fhir(api, world, body: bytes) -> httpx.Response:
    return api.post("/api/intake/fhir", content=body,
                    headers={"Content-Type": "application/fhir+json", **world.auth()})


def test_davinci_discharge_starts_the_handoff_and_a_repeat_answers_200(api, world, temporal):
    first = post_fhir(api, world, fixture_bytes("fhir_davinci_discharge_ed.json"))
    assert first.status_code == 202, first.text
    workflow_id, handoff = only_start(temporal)
    assert first.json()["transition_id"] == workflow_id
    assert first.json()["status_url"] == f"/api/transitions/{workflow_id}"
    assert handoff.notification.person.phone == "+15555550141"
    again = post_fhir(api, world, fixture_bytes("fhir_davinci_discharge_ed.json"))
    assert (again.status_code, again.json()["transition_id"]) == (200, workflow_id)
    only_start(temporal)


def test_davinci_admit_then_discharge_is_one_handoff(api, world, temporal):
    admit = post_fhir(api, world, fixture_bytes("fhir_davinci_admit_ed.json"))
    assert (admit.status_code, admit.json()["outcome"]) == (202, "signalled")
    discharge = post_fhir(api, world, fixture_bytes("fhir_davinci_discharge_ed.json"))
    assert discharge.json()["outcome"] == "existing"
    workflow_id, _ = only_start(temporal)
    assert events_to(temporal, workflow_id) == [EncounterEventKind.ed_registration,
                                                EncounterEventKind.discharge]


def test_davinci_transfer_reaches_the_open_handoff(api, world, temporal):
    post_fhir(api, world, fixture_bytes("fhir_davinci_admit_ed.json"))
    transfer = post_fhir(api, world, fixture_bytes("fhir_davinci_transfer.json"))
    assert transfer.status_code == 202 and transfer.json()["event"] == "transfer"
    workflow_id, _ = only_start(temporal)
    assert events_to(temporal, workflow_id)[-1] == EncounterEventKind.transfer


def test_lone_fhir_encounter_from_a_crisis_unit_starts_the_handoff(api, world, temporal):
    response = post_fhir(api, world, fixture_bytes("fhir_encounter_csu_finished.json"))
    assert response.status_code == 202
    assert only_start(temporal)[1].notification.source == "crisis_stabilization"


def test_out_of_scope_fhir_discharge_is_ignored(api, world, temporal):
    response = post_fhir(api, world, fixture_bytes("fhir_davinci_discharge_out_of_scope.json"))
    assert response.status_code == 200
    assert (response.json()["outcome"], response.json()["reason"]) == ("ignored", "out of scope")
    assert temporal.starts == []


@pytest.mark.parametrize(("name", "path"), [
    ("bad_fhir_discharge_no_end.json", "entry[2].resource.period.end"),
    ("bad_fhir_invalid_date.json", "entry[2].resource.period.end"),
    ("bad_fhir_bundle_missing_encounter.json", "entry[0].resource.focus[0].reference"),
    ("bad_fhir_collection_no_encounter.json", "entry"),
])
def test_bad_fhir_answers_422_naming_the_path_and_creates_nothing(api, world, temporal, name, path):
    response = post_fhir(api, world, fixture_bytes(name))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", path]
    assert temporal.starts == [] and temporal.signals == []


def test_fhir_that_is_not_json_answers_422(api, world, temporal):
    response = post_fhir(api, world, b"{not json")
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "$"]


async def test_the_same_fhir_discharge_sent_concurrently_starts_one_workflow(app, world, temporal):
    body = fixture_bytes("fhir_davinci_discharge_ed.json")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake.test") as client:
        responses = await asyncio.gather(*[
            client.post("/api/intake/fhir", content=body,
                        headers={"Content-Type": "application/fhir+json", **world.auth()})
            for _ in range(4)
        ])
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 202]
    only_start(temporal)
    assert len({r.json()["transition_id"] for r in responses}) == 1


def test_an_unknown_default_team_is_refused_naming_team(api, world, temporal, app):
    app.state.policy = app.state.policy.model_copy(update={"default_team": "no-such-team"})
    response = post_fhir(api, world, fixture_bytes("fhir_davinci_discharge_ed.json"))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "team"]
    ack_code, _, text = msa(post_hl7(api, world, "a03_ed_discharge_v251.hl7"))
    assert ack_code == "AE" and text.startswith("team:")
    assert temporal.starts == []


def test_openapi_documents_both_intake_routes(api):
    paths = json.loads(api.get("/openapi.json").text)["paths"]
    assert "/api/intake/hl7" in paths and "/api/intake/fhir" in paths


def test_until_the_workflow_accepts_encounter_events_only_discharges_act(api, world, temporal,
                                                                          monkeypatch):
    from handrail.intake import dispatch

    monkeypatch.setattr(dispatch, "encounter_events_supported", lambda: False)
    ack_code, _, text = msa(post_hl7(api, world, "a04_ed_registration_v251.hl7"))
    assert (ack_code, text) == ("AA", "encounter events await workflow support")
    assert temporal.starts == [] and temporal.signals == []
    assert msa(post_hl7(api, world, "a03_ed_discharge_v251.hl7"))[0] == "AA"
    only_start(temporal)
    assert temporal.signals == []
