"""A crisis or ED notification, whatever format it arrived in (JSON, HL7 v2, FHIR R4)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


def _printable(value: str) -> str:
    # NUL and other control characters break databases and terminals further down the line.
    if any(ord(c) < 32 and c not in "\n\t" or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
                     AfterValidator(_printable)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000),
                     AfterValidator(_printable)]


def _aware(value: datetime) -> datetime:
    # A naive time would silently shift every clock by the server's offset.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must include a UTC offset, e.g. 2026-11-20T14:30:00+00:00")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


def _e164(value: str) -> str:
    digits = value.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
    if not digits.startswith("+") or not digits[1:].isdigit() or not 8 <= len(digits) <= 16:
        raise ValueError("must be an E.164 phone number, e.g. +447700900123")
    return digits


PhoneNumber = Annotated[str, AfterValidator(_e164)]


def _zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown IANA time zone {value!r}") from err
    return value


TimeZoneName = Annotated[str, AfterValidator(_zone)]


class CrisisSource(StrEnum):
    emergency_department = "emergency_department"
    crisis_stabilization = "crisis_stabilization"
    crisis_line = "crisis_line"
    inpatient = "inpatient"


class PersonIdentifier(BaseModel):
    """An identifier issued by an assigning authority (an MRN, an NHS number)."""

    model_config = ConfigDict(extra="forbid")
    system: NonBlank = Field(description="Assigning authority, e.g. 'urn:oid:2.16.840.1.113883.19'")
    value: NonBlank


class PersonDetails(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identifiers: list[PersonIdentifier] = Field(min_length=1)
    given_name: NonBlank
    family_name: NonBlank
    birth_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    phone: PhoneNumber | None = None
    email: str | None = Field(default=None, max_length=200)
    time_zone: TimeZoneName = "Europe/London"
    preferred_language: str | None = Field(default=None, max_length=35)


class CrisisSummary(BaseModel):
    """The structured summary routed to the clinician and care coordinator."""

    model_config = ConfigDict(extra="forbid")
    risk_factors: list[NonBlank] = Field(default_factory=list)
    current_medications: list[NonBlank] = Field(default_factory=list)
    immediate_stressors: list[NonBlank] = Field(default_factory=list)
    safety_plan: LongText = ""
    next_step_recommendation: LongText = ""


class HandoffNotification(BaseModel):
    """One notification of a crisis or ED discharge, normalised from any intake format."""

    model_config = ConfigDict(extra="forbid")
    source: CrisisSource
    source_system: NonBlank = Field(description="Sending facility or system, e.g. 'st-elsewhere-ed'")
    encounter_id: NonBlank
    event_time: AwareDatetime = Field(description="When the person left the crisis or ED service")
    person: PersonDetails
    summary: CrisisSummary = Field(default_factory=CrisisSummary)
    team: str | None = Field(
        default=None, max_length=100, description="Receiving team's code; the policy's default if absent"
    )
