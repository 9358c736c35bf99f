"""FHIR R4 Encounters and Da Vinci notification Bundles become one notification; errors name the
JSON path."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from intake_world import fixture_bytes

from handrail.domain.intake import EncounterEventKind
from handrail.domain.notification import CrisisSource
from handrail.intake.events import IntakeError
from handrail.intake.fhir import parse_fhir


def test_davinci_discharge_bundle():
    event = parse_fhir(fixture_bytes("fhir_davinci_discharge_ed.json"))
    n = event.notification
    assert (event.kind, event.trigger) == (EncounterEventKind.discharge, "notification-discharge")
    assert n.source == CrisisSource.emergency_department
    assert n.encounter_id == "VN-88001"
    assert n.event_time == datetime(2026, 11, 21, 8, 45, tzinfo=UTC)
    assert [(i.system, i.value) for i in n.person.identifiers][0] == (
        "urn:oid:2.16.840.1.113883.3.999.1", "LK-500100")
    assert n.person.phone == "+15555550141"  # use=mobile preferred over home
    assert event.diagnosis_codes == ["F43.0"] and event.scope.in_scope


def test_davinci_admit_of_an_emergency_encounter_is_an_ed_registration():
    event = parse_fhir(fixture_bytes("fhir_davinci_admit_ed.json"))
    assert event.kind == EncounterEventKind.ed_registration
    assert event.notification.event_time == datetime(2026, 11, 21, 2, 10, tzinfo=UTC)


def test_davinci_transfer_to_a_behavioural_health_unit():
    event = parse_fhir(fixture_bytes("fhir_davinci_transfer.json"))
    assert event.kind == EncounterEventKind.transfer
    assert event.unit == "BHU" and event.notification.source == CrisisSource.inpatient


def test_lone_encounter_with_contained_patient():
    event = parse_fhir(fixture_bytes("fhir_encounter_csu_finished.json"))
    assert event.kind == EncounterEventKind.discharge
    assert event.notification.source == CrisisSource.crisis_stabilization
    assert event.notification.source_system == "harbour-trust"
    assert event.message_id == "Encounter/csu-77/_history/4"
    assert event.scope.reason == "unit:CSU"


@pytest.mark.parametrize(("name", "path", "reason"), [
    ("bad_fhir_discharge_no_end.json", "entry[2].resource.period.end", "discharge time missing"),
    ("bad_fhir_invalid_date.json", "entry[2].resource.period.end", "DateTime"),
    ("bad_fhir_bundle_missing_encounter.json", "entry[0].resource.focus[0].reference", "Encounter"),
    ("bad_fhir_collection_no_encounter.json", "entry", "no Encounter"),
])
def test_bad_fhir_names_the_json_path(name, path, reason):
    with pytest.raises(IntakeError) as caught:
        parse_fhir(fixture_bytes(name))
    assert caught.value.field == path
    assert reason in caught.value.reason


def test_patient_without_identifier_is_refused_at_its_path():
    doc = json.loads(fixture_bytes("fhir_davinci_discharge_ed.json"))
    del doc["entry"][1]["resource"]["identifier"]
    with pytest.raises(IntakeError) as caught:
        parse_fhir(doc)
    assert caught.value.field == "entry[1].resource.identifier"


def test_r5_only_resource_types_and_non_json_are_refused():
    with pytest.raises(IntakeError) as caught:
        parse_fhir(b'{"resourceType": "Patient"}')
    assert caught.value.field == "resourceType"
    with pytest.raises(IntakeError) as caught:
        parse_fhir(b"MSH|^~\\&|not json")
    assert caught.value.field == "$"
