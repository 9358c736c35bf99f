"""FHIR R4 Encounters and Da Vinci Unsolicited Notification Bundles into an `IntakeEvent`.

The resources are validated with `fhir.resources.R4B` (the package's default models are R5,
which reject R4 notifications); errors name the JSON path, e.g. "entry[2].resource.period.end".
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.messageheader import MessageHeader
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from ..domain.intake import EncounterEventKind
from ..domain.notification import HandoffNotification
from . import scope
from .events import FHIR_EVENTS, IntakeError, IntakeEvent

# An explicit "this encounter is crisis / mental-health care" flag on the Encounter.
SCOPE_FLAG_URL = "https://handrail.example/fhir/StructureDefinition/crisis-scope"
ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm")

# A lone Encounter (no MessageHeader) says what happened through its status.
_STATUS_KINDS = {
    "finished": EncounterEventKind.discharge,
    "cancelled": EncounterEventKind.cancel_admission,
    "entered-in-error": EncounterEventKind.cancel_admission,
}
_ACTIVE = {"arrived", "triaged", "in-progress"}
_EMERGENCY_CLASSES = {"EMER", "E"}


def _path(location: tuple) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = "class" if part == "class_fhir" else str(part)
            text += ("." if text else "") + name
    return text or "$"


def _fail(path: str, reason: str) -> IntakeError:
    return IntakeError("AE", path, reason)


class _Resources:
    """The resources a notification carries, found by reference the way FHIR resolves them."""

    def __init__(self, entries: list[tuple[str, str | None, Any]]) -> None:
        self.entries = entries  # (json path, fullUrl, resource)

    def of_type(self, resource_type: str) -> list[tuple[str, Any]]:
        return [(p, r) for p, _, r in self.entries if r.get_resource_type() == resource_type]

    def resolve(self, reference: str | None, container: Any = None) -> tuple[str, Any] | None:
        if not reference:
            return None
        if reference.startswith("#") and container is not None:
            for index, res in enumerate(container.contained or []):
                if res.id == reference[1:]:
                    return f"contained[{index}]", res
            return None
        for path, full_url, res in self.entries:
            typed = f"{res.get_resource_type()}/{res.id}"
            if reference in (full_url, typed) or (full_url or "").endswith("/" + reference):
                return path, res
        return None


def parse_fhir(body: bytes | str | dict) -> IntakeEvent:
    """Parse one FHIR R4 notification; raises `IntakeError` naming the JSON path."""
    if isinstance(body, dict):
        document = body
    else:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            raise IntakeError("AR", "$", f"not JSON: {err}") from None
    if not isinstance(document, dict):
        raise IntakeError("AR", "$", "a FHIR resource must be a JSON object")
    resource_type = document.get("resourceType")
    model = {"Bundle": Bundle, "Encounter": Encounter}.get(resource_type)  # type: ignore[arg-type]
    if model is None:
        raise _fail("resourceType", f"expected an Encounter or a Bundle, got {resource_type!r}")
    try:
        resource = model.model_validate(document)
    except ValidationError as err:
        first = err.errors()[0]
        raise _fail(_path(first["loc"]), first["msg"].removeprefix("Value error, ")) from None
    fallback_id = "sha256:" + hashlib.sha256(
        json.dumps(document, sort_keys=True).encode()).hexdigest()[:32]
    if isinstance(resource, Bundle):
        return _from_bundle(resource, fallback_id)
    version = resource.meta.versionId if resource.meta is not None else None
    message_id = f"Encounter/{resource.id}/_history/{version}" if resource.id and version else fallback_id
    return _from_encounter("", resource, _Resources([]), None, None, message_id)


def _from_bundle(bundle: Bundle, fallback_id: str) -> IntakeEvent:
    entries = [
        (f"entry[{i}].resource", entry.fullUrl, entry.resource)
        for i, entry in enumerate(bundle.entry or [])
        if entry.resource is not None
    ]
    found = _Resources(entries)
    headers = found.of_type("MessageHeader")
    header_path, header = headers[0] if headers else ("", None)
    encounter_at: tuple[str, Any] | None = None
    if header is not None and header.focus:
        encounter_at = found.resolve(header.focus[0].reference)
        if encounter_at is None or encounter_at[1].get_resource_type() != "Encounter":
            raise _fail(f"{header_path}.focus[0].reference", "does not point to an Encounter in the Bundle")
    if encounter_at is None:
        encounters = found.of_type("Encounter")
        if not encounters:
            raise _fail("entry", "no Encounter in the Bundle")
        encounter_at = encounters[0]
    message_id = (header.id if header is not None and header.id else None) or bundle.id or fallback_id
    return _from_encounter(encounter_at[0], encounter_at[1], found, header_path, header, message_id)


def _event_kind(enc_path: str, encounter: Encounter, header_path: str | None,
                header: MessageHeader | None) -> tuple[EncounterEventKind, str]:
    emergency = (encounter.class_fhir.code or "").upper() in _EMERGENCY_CLASSES
    if header is not None:
        code = header.eventCoding.code if header.eventCoding else None
        if code not in FHIR_EVENTS:
            raise _fail(f"{header_path}.eventCoding.code",
                        f"unsupported event {code!r}; expected one of {sorted(FHIR_EVENTS)}")
        kind = FHIR_EVENTS[code]
        if kind == EncounterEventKind.admission and emergency:
            kind = EncounterEventKind.ed_registration
        return kind, code
    status = encounter.status
    if status in _STATUS_KINDS:
        return _STATUS_KINDS[status], f"status:{status}"
    if status in _ACTIVE:
        kind = EncounterEventKind.ed_registration if emergency else EncounterEventKind.admission
        return kind, f"status:{status}"
    raise _fail(_join(enc_path, "status"), f"an Encounter with status {status!r} is not a notification")


def _join(base: str, field: str) -> str:
    return f"{base}.{field}" if base else field


def _aware(value: Any, path: str) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, date | datetime):
        raise _fail(path, "needs a time with a UTC offset, e.g. 2026-11-20T16:20:00+00:00")
    raise _fail(path, "missing")


def _from_encounter(enc_path: str, encounter: Encounter, found: _Resources, header_path: str | None,
                    header: MessageHeader | None, message_id: str | None) -> IntakeEvent:
    kind, trigger = _event_kind(enc_path, encounter, header_path, header)
    period = encounter.period
    if kind == EncounterEventKind.discharge:
        if period is None or period.end is None:
            raise _fail(_join(enc_path, "period.end"), "discharge time missing")
        occurred_at = _aware(period.end, _join(enc_path, "period.end"))
    elif period is not None and period.start is not None:
        occurred_at = _aware(period.start, _join(enc_path, "period.start"))
    else:
        raise _fail(_join(enc_path, "period.start"), "missing")

    subject = encounter.subject.reference if encounter.subject else None
    patient_at = found.resolve(subject, encounter)
    if patient_at is None or patient_at[1].get_resource_type() != "Patient":
        raise _fail(_join(enc_path, "subject"), "no Patient (contained or in the Bundle) for the subject")
    patient_path = patient_at[0]
    if patient_path.startswith("contained"):
        patient_path = _join(enc_path, patient_path)
    patient: Patient = patient_at[1]

    source_system = _source_system(encounter, header)
    if not source_system:
        raise _fail(_join(enc_path, "serviceProvider"), "no sending organisation or system")
    encounter_id = next((i.value for i in encounter.identifier or [] if i.value), None) or encounter.id
    if not encounter_id:
        raise _fail(_join(enc_path, "identifier"), "no encounter identifier")

    unit = _unit(encounter)
    patient_class = encounter.class_fhir.code
    source = scope.source_for(unit, patient_class) or scope.CrisisSource.emergency_department
    diagnoses = _diagnoses(encounter, found)
    flagged = any(ext.url == SCOPE_FLAG_URL and ext.valueBoolean for ext in encounter.extension or [])
    person = _person(patient_path, patient, source_system)
    try:
        notification = HandoffNotification(
            source=source, source_system=source_system, encounter_id=encounter_id,
            event_time=occurred_at, person=person,
        )
    except ValidationError as err:
        first = err.errors()[0]
        raise _fail(patient_path, f"{_path(first['loc'])}: {first['msg']}") from None
    return IntakeEvent(
        kind=kind, trigger=trigger, message_id=message_id or encounter_id, format="fhir",
        occurred_at=occurred_at, notification=notification, unit=unit, diagnosis_codes=diagnoses,
        scope=scope.assess(unit=unit, diagnosis_codes=diagnoses, flagged=flagged),
    )


def _source_system(encounter: Encounter, header: MessageHeader | None) -> str | None:
    provider = encounter.serviceProvider
    if provider is not None:
        if provider.identifier is not None and provider.identifier.value:
            return provider.identifier.value
        if provider.reference:
            return provider.reference
        if provider.display:
            return provider.display
    if header is not None and header.source is not None:
        return header.source.name or header.source.endpoint
    return next((i.system for i in encounter.identifier or [] if i.system), None)


def _unit(encounter: Encounter) -> str | None:
    for loc in encounter.location or []:
        ref = loc.location
        if ref.identifier is not None and ref.identifier.value:
            return ref.identifier.value.upper()
        if ref.display:
            return ref.display.upper()
    if encounter.serviceType is not None:
        for coding in encounter.serviceType.coding or []:
            if coding.code:
                return coding.code.upper()
    return None


def _icd10(concept: Any) -> list[str]:
    if concept is None:
        return []
    return [c.code for c in concept.coding or [] if c.code and (c.system or "") in ICD10_SYSTEMS]


def _diagnoses(encounter: Encounter, found: _Resources) -> list[str]:
    codes: list[str] = []
    for concept in encounter.reasonCode or []:
        codes += _icd10(concept)
    for diagnosis in encounter.diagnosis or []:
        condition_at = found.resolve(diagnosis.condition.reference, encounter)
        if condition_at is not None and condition_at[1].get_resource_type() == "Condition":
            codes += _icd10(condition_at[1].code)
    return codes


def _phone(value: str) -> str | None:
    candidate = re.sub(r"[\s().-]", "", value)
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    return candidate if re.fullmatch(r"\+\d{7,15}", candidate) else None


def _person(path: str, patient: Patient, source_system: str) -> dict[str, Any]:
    identifiers = []
    for ident in patient.identifier or []:
        if ident.value:
            # An identifier without a system is the sending organisation's own number.
            entry = {"system": ident.system or source_system, "value": ident.value}
            if entry not in identifiers:
                identifiers.append(entry)
    if not identifiers:
        raise _fail(f"{path}.identifier", "no patient identifier")
    names = patient.name or []
    name = next((n for n in names if n.use == "official"), names[0] if names else None)
    if name is None or not name.family or not name.given:
        raise _fail(f"{path}.name", "patient family and given name are required")
    phones = [t for t in patient.telecom or [] if t.system in ("phone", "sms") and t.value]
    phones.sort(key=lambda t: 0 if t.use == "mobile" else 1 if t.use == "home" else 2)
    phone = next((p for t in phones if (p := _phone(t.value))), None)
    email = next((t.value for t in patient.telecom or [] if t.system == "email" and t.value), None)
    birth = patient.birthDate.isoformat() if isinstance(patient.birthDate, date) else None
    return {
        "identifiers": identifiers, "given_name": name.given[0], "family_name": name.family,
        "birth_date": birth, "phone": phone, "email": email,
    }
