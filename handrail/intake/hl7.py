"""HL7 v2 ADT (2.3 to 2.8) into an `IntakeEvent`, and the ACK that answers it.

python-hl7 does the parsing and the ACK; this module knows which segment and field carries
what, and names them when they are missing ("PID-3: no patient identifier").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import hl7
from pydantic import ValidationError

from ..domain.notification import HandoffNotification
from . import scope
from .events import HL7_TRIGGERS, IntakeError, IntakeEvent

# Naive HL7 times are the sending hospital's local time (moves to the policy file later).
DEFAULT_HOSPITAL_TZ = "Europe/London"
# The one Z-segment Handrail reads: ZMH-1 = Y marks an encounter as crisis / mental health.
SCOPE_FLAG_SEGMENT = "ZMH"
_TRUE = {"Y", "YES", "T", "TRUE", "1"}
# Identifier types (CX-5) that name a visit or account, not a person: never used for matching.
_ENCOUNTER_ID_TYPES = {"AN", "VN", "VS", "ANON"}
_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$")


class UnsupportedMessage(Exception):
    """Well-formed HL7 that is not an ADT event Handrail acts on (acknowledged AA, counted)."""

    def __init__(self, trigger: str) -> None:
        super().__init__(trigger)
        self.trigger = trigger


def normalise_segments(raw: bytes | str) -> str:
    """HL7 separates segments with \\r; interface engines and files also use \\n and \\r\\n."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")  # 2.3-era feeds: MSH-18 8859/1
    else:
        text = raw
    text = text.lstrip("\ufeff").strip("\x0b\x1c \t\r\n")
    return "\r".join(line for line in re.split(r"\r\n|\n|\r", text) if line.strip())


def parse_message(raw: bytes | str) -> hl7.Message:
    text = normalise_segments(raw)
    if not text.startswith("MSH") or len(text) < 8:
        raise IntakeError("AR", "MSH", "not an HL7 v2 message (it must start with an MSH segment)")
    try:
        message = hl7.parse(text)
        message.segment("MSH")
    except Exception as err:  # python-hl7 raises several types for broken structure
        raise IntakeError("AR", "MSH", f"cannot be parsed: {type(err).__name__}") from None
    return message


class _Reader:
    """Field access by HL7 position (1-based), unescaped, '' when absent."""

    def __init__(self, message: hl7.Message) -> None:
        self.message = message

    def segments(self, name: str) -> list[hl7.Segment]:
        return [seg for seg in self.message if str(seg[0]) == name]

    def first(self, name: str) -> hl7.Segment | None:
        found = self.segments(name)
        return found[0] if found else None

    def repetitions(self, seg: hl7.Segment | None, field: int) -> list:
        if seg is None or len(seg) <= field or not str(seg[field]):
            return []
        value = seg[field]
        if isinstance(value, hl7.Field) and value and isinstance(value[0], hl7.Repetition):
            return list(value)
        return [str(value)]  # a field without components

    def value(self, seg: hl7.Segment | None, field: int, component: int = 1, sub: int = 1,
              rep: int = 0) -> str:
        reps = self.repetitions(seg, field)
        if rep >= len(reps):
            return ""
        return self.part(reps[rep], component, sub)

    def part(self, repetition, component: int = 1, sub: int = 1) -> str:
        if isinstance(repetition, str):
            text = repetition if component == 1 and sub == 1 else ""
        elif component > len(repetition):
            text = ""
        else:
            comp = repetition[component - 1]
            if isinstance(comp, hl7.Component):
                text = str(comp[sub - 1]) if sub <= len(comp) else ""
            else:
                text = str(comp) if sub == 1 else ""
        return self.message.unescape(text).strip() if "\\" in text else text.strip()


def parse_hl7_time(text: str, field: str, *, local_tz: str = DEFAULT_HOSPITAL_TZ) -> datetime:
    match = _DTM.match(text.strip())
    if not match:
        raise IntakeError("AE", field, f"not an HL7 date/time: {text!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0),
                          int(minute or 0), int(second or 0),
                          int(float(fraction) * 1_000_000) if fraction else 0)
    except ValueError as err:
        raise IntakeError("AE", field, f"not a valid date/time: {err}") from None
    if offset:
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        return moment.replace(tzinfo=timezone(sign * delta))
    return moment.replace(tzinfo=ZoneInfo(local_tz))


def _phone(r: _Reader, xtn) -> str | None:
    """An E.164 number from one XTN: component 12 (2.5+), else country/area/local (5-7), else
    the 2.3 free-text number in component 1 when it is already international."""
    unformatted = r.part(xtn, 12)
    if unformatted:
        candidate = unformatted
    elif r.part(xtn, 7):
        country, area, local = r.part(xtn, 5), r.part(xtn, 6), r.part(xtn, 7)
        if not country:
            return None
        candidate = "+" + country.lstrip("+") + area.lstrip("0") + local
    else:
        candidate = r.part(xtn, 1)
    candidate = re.sub(r"[\s().-]", "", candidate.split("X")[0].split("x")[0])
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    if re.fullmatch(r"\+\d{7,15}", candidate):
        return candidate
    return None


def _contact(r: _Reader, pid: hl7.Segment) -> tuple[str | None, str | None]:
    """The mobile number when one is marked (equipment CP), else the primary residence's."""
    ranked: list[tuple[int, str]] = []
    email = None
    for xtn in r.repetitions(pid, 13):
        use, equipment = r.part(xtn, 2).upper(), r.part(xtn, 3).upper()
        if use == "NET" or equipment == "INTERNET":
            email = email or r.part(xtn, 4) or None
            continue
        number = _phone(r, xtn)
        if number is None:
            continue
        rank = 0 if equipment == "CP" else 1 if use == "PRN" else 2
        ranked.append((rank, number))
    ranked.sort(key=lambda item: item[0])
    return (ranked[0][1] if ranked else None), email


def _identifiers(r: _Reader, pid: hl7.Segment, facility: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for cx in r.repetitions(pid, 3):
        value = r.part(cx, 1)
        if not value or r.part(cx, 5).upper() in _ENCOUNTER_ID_TYPES:
            continue
        namespace, universal, kind = r.part(cx, 4, 1), r.part(cx, 4, 2), r.part(cx, 4, 3)
        if universal and kind.upper() == "ISO":
            system = f"urn:oid:{universal}"
        else:
            # An MRN with no assigning authority is the sending facility's own number.
            system = namespace or universal or facility
        if {"system": system, "value": value} not in found:
            found.append({"system": system, "value": value})
    return found


def _name(r: _Reader, pid: hl7.Segment) -> tuple[str, str]:
    names = r.repetitions(pid, 5)
    legal = next((n for n in names if r.part(n, 7).upper() == "L"), names[0] if names else None)
    if legal is None:
        return "", ""
    return r.part(legal, 2), r.part(legal, 1)


def _birth_date(r: _Reader, pid: hl7.Segment) -> str | None:
    text = r.value(pid, 7)
    if len(text) >= 8 and text[:8].isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:8]}"
    return None


def parse_adt(raw: bytes | str, *, local_tz: str = DEFAULT_HOSPITAL_TZ) -> IntakeEvent:
    """Parse one ADT message; raises `IntakeError` (AR/AE) or `UnsupportedMessage`."""
    message = parse_message(raw)
    r = _Reader(message)
    msh = message.segment("MSH")
    message_type, trigger = r.value(msh, 9, 1).upper(), r.value(msh, 9, 2).upper()
    control_id = r.value(msh, 10)
    version = r.value(msh, 12)
    if not control_id:
        raise IntakeError("AR", "MSH-10", "no message control id")
    if not version.startswith("2."):
        raise IntakeError("AR", "MSH-12", f"unsupported HL7 version {version!r}")
    if message_type != "ADT":
        raise IntakeError("AR", "MSH-9", f"unsupported message type {message_type or 'none'!r}")
    if trigger not in HL7_TRIGGERS:
        raise UnsupportedMessage(trigger or "none")
    kind = HL7_TRIGGERS[trigger]

    facility = r.value(msh, 4) or r.value(msh, 4, 2)
    if not facility:
        raise IntakeError("AE", "MSH-4", "no sending facility")
    pid, pv1, evn = r.first("PID"), r.first("PV1"), r.first("EVN")
    if pid is None:
        raise IntakeError("AE", "PID", "no PID segment")
    if pv1 is None:
        raise IntakeError("AE", "PV1", "no PV1 segment")
    identifiers = _identifiers(r, pid, facility)
    if not identifiers:
        raise IntakeError("AE", "PID-3", "no patient identifier")
    given, family = _name(r, pid)
    if not family or not given:
        raise IntakeError("AE", "PID-5", "patient family and given name are required")
    encounter_id = r.value(pv1, 19) or r.value(pid, 18)
    if not encounter_id:
        raise IntakeError("AE", "PV1-19", "no visit number (nor PID-18 account number)")

    occurred_at = _event_time(r, kind.value, trigger, msh, evn, pv1, local_tz)
    patient_class, unit, service = r.value(pv1, 2).upper(), r.value(pv1, 3).upper(), r.value(pv1, 10).upper()
    source = scope.source_for(unit, patient_class) or scope.source_for(service, None)
    if source is None:
        admitted = trigger in ("A01", "A06")
        source = scope.CrisisSource.inpatient if admitted else scope.CrisisSource.emergency_department
    diagnoses = [code for dg1 in r.segments("DG1") if (code := r.value(dg1, 3))]
    flag = any(r.value(z, 1).upper() in _TRUE for z in r.segments(SCOPE_FLAG_SEGMENT))
    assessed = scope.assess(unit=unit, diagnosis_codes=diagnoses, flagged=flag)
    if not assessed.in_scope and service:
        assessed = scope.assess(unit=service, diagnosis_codes=[], flagged=False)
    phone, email = _contact(r, pid)
    try:
        notification = HandoffNotification(
            source=source,
            source_system=facility,
            encounter_id=encounter_id,
            event_time=occurred_at,
            person={
                "identifiers": identifiers, "given_name": given, "family_name": family,
                "birth_date": _birth_date(r, pid), "phone": phone, "email": email,
            },
        )
    except ValidationError as err:
        first = err.errors()[0]
        raise IntakeError("AE", "PID", f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    return IntakeEvent(
        kind=kind, trigger=trigger, message_id=control_id, format="hl7v2", occurred_at=occurred_at,
        notification=notification, unit=unit or service or None, diagnosis_codes=diagnoses,
        scope=assessed,
    )


def _event_time(r: _Reader, kind: str, trigger: str, msh, evn, pv1, local_tz: str) -> datetime:
    if trigger == "A03":
        text = r.value(pv1, 45)
        if not text:
            raise IntakeError("AE", "PV1-45", "discharge time missing for A03")
        return parse_hl7_time(text, "PV1-45", local_tz=local_tz)
    for seg, field, name in ((evn, 6, "EVN-6"), (pv1, 44, "PV1-44"), (evn, 2, "EVN-2"), (msh, 7, "MSH-7")):
        text = r.value(seg, field) if seg is not None else ""
        if text:
            return parse_hl7_time(text, name, local_tz=local_tz)
    raise IntakeError("AE", "EVN-2", f"no event time for {kind}")


# ---- acknowledgments ---------------------------------------------------------------------

_FALLBACK_MSH = "MSH|^~\\&|SENDER|SENDER|HANDRAIL|HANDRAIL|{ts}||ADT^A01|UNKNOWN|P|2.5.1"


def build_ack(raw: bytes | str, code: str, error: IntakeError | None = None,
              *, text: str = "") -> str:
    """The ACK for this message: python-hl7's create_ack, plus MSA-3 and an ERR segment naming
    the field when refused. A message too broken to read is answered from a minimal header."""
    try:
        message = parse_message(raw)
    except IntakeError:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        message = hl7.parse(_FALLBACK_MSH.format(ts=stamp))
    ack = message.create_ack(ack_code=code, application="HANDRAIL")
    msh, msa = ack.segment("MSH"), ack.segment("MSA")
    msh.assign_field("HANDRAIL", 3)
    detail = f"{error.field}: {error.reason}" if error else text
    if detail:
        msa.assign_field(message.escape(detail[:80]), 3)
    if error is not None:
        version = str(msh(12)) or "2.5.1"
        segment, field = _location(error.field)
        escaped = message.escape(error.reason[:200])
        code_num = "100" if code == "AR" else "101"
        if version < "2.5":
            err = f"ERR|{segment}^1^{field}^{code_num}&{escaped}"
        else:
            err = f"ERR||{segment}^1^{field}|{code_num}^{escaped}^HL70357|E||||{escaped}"
        return str(ack) + err + "\r"
    return str(ack)


def _location(field: str) -> tuple[str, str]:
    segment, _, number = field.partition("-")
    return segment, number


def ack_code(ack: str) -> str:
    """MSA-1 of an ACK (for tests and logs)."""
    return str(hl7.parse(normalise_segments(ack)).segment("MSA")(1))
