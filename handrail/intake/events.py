"""What every intake format (HL7 v2 ADT, FHIR R4) parses into, and how it fails."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..domain.intake import EncounterEvent, EncounterEventKind
from ..domain.notification import AwareDatetime, HandoffNotification

# HL7 v2 trigger events → what they mean for a handoff. Anything else is refused with AE.
HL7_TRIGGERS: dict[str, EncounterEventKind] = {
    "A01": EncounterEventKind.admission,
    "A02": EncounterEventKind.transfer,
    "A03": EncounterEventKind.discharge,
    "A04": EncounterEventKind.ed_registration,
    "A06": EncounterEventKind.admission,
    "A08": EncounterEventKind.update,
    "A11": EncounterEventKind.cancel_admission,
    "A13": EncounterEventKind.cancel_discharge,
}

# Da Vinci Unsolicited Notifications (MessageHeader.eventCoding) → the same meanings.
FHIR_EVENTS: dict[str, EncounterEventKind] = {
    "notification-admit": EncounterEventKind.admission,
    "notification-discharge": EncounterEventKind.discharge,
    "notification-transfer": EncounterEventKind.transfer,
}


class IntakeError(Exception):
    """A notification Handrail cannot use.

    `code` is the HL7 acknowledgment it deserves: "AR" when it cannot be parsed at all, "AE"
    when it was understood but is unusable. `field` names the segment and field ("PID-3") or
    the JSON path ("entry[2].resource.period.end")."""

    def __init__(self, code: Literal["AE", "AR"], field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.code = code
        self.field = field
        self.reason = reason


class Scope(BaseModel):
    """Whether the event concerns crisis or mental-health care, and why (for the count)."""

    model_config = ConfigDict(frozen=True)
    in_scope: bool
    reason: str = Field(description="'unit:CSU', 'diagnosis:F32.1', 'flag', or 'none'")


class IntakeEvent(BaseModel):
    """One hospital notification, whatever its format, ready to be applied to a handoff."""

    model_config = ConfigDict(extra="forbid")
    kind: EncounterEventKind
    trigger: str
    message_id: str
    format: Literal["hl7v2", "fhir"]
    occurred_at: AwareDatetime
    notification: HandoffNotification
    unit: str | None = None
    diagnosis_codes: list[str] = Field(default_factory=list)
    scope: Scope

    def encounter_event(self) -> EncounterEvent:
        reason = f"{self.trigger} ({self.kind.value.replace('_', ' ')})"
        return EncounterEvent(
            kind=self.kind,
            trigger=self.trigger,
            message_id=self.message_id,
            occurred_at=self.occurred_at,
            notification=self.notification,
            reason=reason,
        )
