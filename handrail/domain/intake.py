"""Hospital encounter events (HL7 v2 ADT, FHIR R4) as they reach a warm handoff workflow.

The intake turns each ADT event into one `EncounterEvent` and sends it to `PostCrisisHandoff`
as the signal `encounter_event` (with signal-with-start where the workflow may not exist yet).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from .notification import AwareDatetime, HandoffNotification

ENCOUNTER_EVENT_SIGNAL = "encounter_event"


class EncounterEventKind(StrEnum):
    ed_registration = "ed_registration"  # A04: the person is in the ED; wait for discharge
    admission = "admission"  # A01, A06: admitted; hold the handoff as an inpatient stay
    discharge = "discharge"  # A03: left hospital; the handoff's clock starts
    transfer = "transfer"  # A02: moved to another unit; location only
    update = "update"  # A08: demographics and contact details changed
    cancel_admission = "cancel_admission"  # A11: undo the admission (or registration)
    cancel_discharge = "cancel_discharge"  # A13: undo the discharge; back to waiting for it


class EncounterEvent(BaseModel):
    """One hospital event for the encounter a handoff follows.

    `message_id` is the sender's control id (MSH-10, MessageHeader/Bundle id): the workflow
    applies each message once. `notification` carries the person and encounter as that message
    described them: the latest contact details, and for a discharge its `event_time`.
    """

    model_config = ConfigDict(extra="forbid")
    kind: EncounterEventKind
    trigger: str = Field(max_length=40, description="The sender's event: 'A03', 'notification-discharge'")
    message_id: str = Field(min_length=1, max_length=200)
    occurred_at: AwareDatetime
    notification: HandoffNotification
    reason: str = Field(default="", max_length=500, description="Why, for the timeline: 'A11 cancel admit'")


class EncounterWhereabouts(BaseModel):
    """Where the person stands with the hospital, as a handoff follows it."""

    discharged_at: datetime | None  # None: still in the ED (or the discharge was cancelled)
    inpatient: bool = False
    discharge_seen: bool = False
    registration_cancelled: bool = False

    @property
    def on_hold(self) -> bool:
        return self.inpatient or self.discharged_at is None


def apply_encounter_event(where: EncounterWhereabouts, event: EncounterEvent, *,
                          pathway_started: bool) -> EncounterWhereabouts:
    """The policy of what each hospital event does to a handoff, as one pure rule:
    A04 waits for the discharge, A01/A06 hold as an inpatient stay, A03 (re)starts the clock,
    A11 undoes an admission (or cancels a registration), A13 undoes the discharge."""
    kind, new = EncounterEventKind, where.model_copy()
    if event.kind == kind.ed_registration and not pathway_started and not where.discharge_seen:
        new.discharged_at = None
    elif event.kind == kind.admission:
        new.inpatient = True
    elif event.kind == kind.discharge:
        new.discharge_seen, new.inpatient = True, False
        new.discharged_at = event.notification.event_time
    elif event.kind == kind.cancel_admission and where.inpatient:
        new.inpatient = False
    elif event.kind == kind.cancel_admission and where.discharged_at is None:
        new.registration_cancelled = True
    elif event.kind == kind.cancel_discharge and where.discharged_at is not None:
        new.discharged_at = None
    return new
