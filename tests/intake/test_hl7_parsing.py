"""HL7 v2 ADT as vendors send it (2.3, 2.5.1, 2.8) becomes one notification; bad input names
the segment and field, and the ACK says so."""

from __future__ import annotations

from datetime import UTC, datetime

import hl7
import pytest
from intake_world import fixture_bytes

from handrail.domain.intake import EncounterEventKind
from handrail.domain.notification import CrisisSource
from handrail.intake.events import IntakeError
from handrail.intake.hl7 import UnsupportedMessage, build_ack, normalise_segments, parse_adt

EXPECTED = {
    # fixture: (kind, control id, source, encounter id, in scope)
    "a04_ed_registration_v251.hl7": (EncounterEventKind.ed_registration, "EPC-A04-0001",
                                     CrisisSource.emergency_department, "V20261120-0001", True),
    "a03_ed_discharge_v251.hl7": (EncounterEventKind.discharge, "EPC-A03-0002",
                                  CrisisSource.emergency_department, "V20261120-0001", True),
    "a03_csu_discharge_v23_lf.hl7": (EncounterEventKind.discharge, "CRN5550002",
                                     CrisisSource.crisis_stabilization, "NGV-4410", True),
    "a01_bhu_admission_v28_crlf.hl7": (EncounterEventKind.admission, "MT-A01-3003",
                                       CrisisSource.inpatient, "RVV-3003", True),
    "a06_to_inpatient_v251.hl7": (EncounterEventKind.admission, "EPC-A06-0003",
                                  CrisisSource.inpatient, "V20261120-0001", True),
    "a08_update_v251.hl7": (EncounterEventKind.update, "EPC-A08-0004",
                            CrisisSource.emergency_department, "V20261120-0001", False),
    "a11_cancel_admit_v23.hl7": (EncounterEventKind.cancel_admission, "MT-A11-3004",
                                 CrisisSource.inpatient, "RVV-3003", True),
    "a13_cancel_discharge_v28.hl7": (EncounterEventKind.cancel_discharge, "EPC-A13-0005",
                                     CrisisSource.emergency_department, "V20261120-0001", False),
    "a03_out_of_scope_v251.hl7": (EncounterEventKind.discharge, "EPC-A03-0006",
                                  CrisisSource.emergency_department, "V20261120-0077", False),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_vendor_message_becomes_one_notification(name):
    kind, control_id, source, encounter_id, in_scope = EXPECTED[name]
    event = parse_adt(fixture_bytes(name))
    assert (event.kind, event.message_id, event.notification.source) == (kind, control_id, source)
    assert event.notification.encounter_id == encounter_id
    assert event.scope.in_scope is in_scope


def test_every_pid3_repetition_is_an_identifier_with_its_assigning_authority():
    person = parse_adt(fixture_bytes("a04_ed_registration_v251.hl7")).notification.person
    assert [(i.system, i.value) for i in person.identifiers] == [
        ("STELSEWHERE", "E1000001"), ("SSA", "999-00-0001"),
    ]


def test_mobile_number_is_preferred_from_component_12():
    # PID-13 holds a landline first and the mobile (equipment CP) second.
    person = parse_adt(fixture_bytes("a04_ed_registration_v251.hl7")).notification.person
    assert person.phone == "+447700900001"


def test_mobile_number_from_components_5_to_7_in_v28_with_crlf_endings():
    event = parse_adt(fixture_bytes("a01_bhu_admission_v28_crlf.hl7"))
    assert event.notification.person.phone == "+447700900003"
    assert event.scope.reason == "flag"  # ZMH|Y


def test_v23_with_lf_endings_escape_sequences_and_z_segment():
    event = parse_adt(fixture_bytes("a03_csu_discharge_v23_lf.hl7"))
    person = event.notification.person
    assert person.family_name == "Ashby&Cole"  # \T\ unescaped
    assert person.phone == "+15555550199"  # the CP repetition, not the PRN landline
    assert person.birth_date == "1985-11-03"
    assert event.scope.reason == "unit:CSU"


def test_discharge_time_comes_from_pv1_45_with_its_offset():
    event = parse_adt(fixture_bytes("a03_ed_discharge_v251.hl7"))
    assert event.notification.event_time == datetime(2026, 11, 20, 16, 20, tzinfo=UTC)
    assert event.diagnosis_codes == ["F32.1"]


def test_naive_hl7_times_are_read_in_the_hospital_time_zone():
    event = parse_adt(fixture_bytes("a03_csu_discharge_v23_lf.hl7"))
    assert event.notification.event_time.utcoffset() is not None
    assert event.notification.event_time.astimezone(UTC) == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def test_missing_optional_fields_are_simply_absent():
    person = parse_adt(fixture_bytes("a08_update_v251.hl7")).notification.person
    assert person.birth_date is None and person.email is None
    assert person.phone == "+447700900099"


@pytest.mark.parametrize(("name", "code", "field", "reason"), [
    ("garbage.txt", "AR", "MSH", "not an HL7 v2 message"),
    ("bad_no_pid3_v251.hl7", "AE", "PID-3", "no patient identifier"),
    ("bad_a03_no_discharge_time_v251.hl7", "AE", "PV1-45", "discharge time missing for A03"),
    ("bad_not_adt_v251.hl7", "AR", "MSH-9", "unsupported message type"),
])
def test_bad_messages_name_the_segment_and_field(name, code, field, reason):
    with pytest.raises(IntakeError) as caught:
        parse_adt(fixture_bytes(name))
    assert (caught.value.code, caught.value.field) == (code, field)
    assert reason in caught.value.reason


def test_an_adt_event_handrail_does_not_act_on_is_unsupported_not_an_error():
    a05 = fixture_bytes("a04_ed_registration_v251.hl7").replace(b"ADT^A04^ADT_A01", b"ADT^A05^ADT_A05")
    with pytest.raises(UnsupportedMessage):
        parse_adt(a05)


def test_ae_ack_carries_the_reason_in_msa3_and_err_for_v25():
    raw = fixture_bytes("bad_no_pid3_v251.hl7")
    ack = hl7.parse(build_ack(raw, "AE", IntakeError("AE", "PID-3", "no patient identifier")))
    assert str(ack.segment("MSA")(1)) == "AE"
    assert str(ack.segment("MSA")(2)) == "EPC-BAD-0007"
    assert str(ack.segment("MSA")(3)) == "PID-3: no patient identifier"
    err = ack.segment("ERR")
    assert str(err(2)) == "PID^1^3" and str(err(4)) == "E"
    assert str(ack.segment("MSH")(9)) == "ACK^A03^ACK"


def test_ack_for_v23_uses_err1():
    raw = fixture_bytes("a11_cancel_admit_v23.hl7")
    ack = hl7.parse(build_ack(raw, "AE", IntakeError("AE", "PV1-19", "no visit number")))
    assert str(ack.segment("ERR")(1)(1)(1)) == "PV1"
    assert str(ack.segment("MSH")(12)) == "2.3"


def test_garbage_is_answered_ar_from_a_minimal_header():
    ack = hl7.parse(build_ack(b"\x00\x01 not hl7", "AR", IntakeError("AR", "MSH", "not HL7")))
    assert str(ack.segment("MSA")(1)) == "AR"


def test_line_endings_are_normalised_to_carriage_returns():
    assert normalise_segments(b"MSH|a\r\nPID|b\nPV1|c\r") == "MSH|a\rPID|b\rPV1|c"


def test_account_and_visit_numbers_in_pid3_are_not_person_identifiers():
    raw = fixture_bytes("a08_update_v251.hl7").replace(
        b"E1000001^^^STELSEWHERE^MR", b"ACC-1^^^STELSEWHERE^AN~E1000001^^^STELSEWHERE^MR")
    person = parse_adt(raw).notification.person
    assert [i.value for i in person.identifiers] == ["E1000001"]


def test_latin1_feeds_are_read():
    accented = "Ex\xe9mplename".encode("latin-1")
    raw = fixture_bytes("a11_cancel_admit_v23.hl7").replace(b"Examplename", accented)
    assert parse_adt(raw).notification.person.family_name == "Exémplename"
