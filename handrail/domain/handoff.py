"""The warm handoff's input, staff actions, events and state (`PostCrisisHandoff`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from .notification import AwareDatetime, HandoffNotification, PhoneNumber, TimeZoneName
from .policy import Policy
from .tasks import Role


class HandoffStage(StrEnum):
    recorded = "recorded"
    awaiting_discharge = "awaiting_discharge"  # opened by an ED registration (A04)
    inpatient_hold = "inpatient_hold"  # admitted (A01/A06): resumes at the next discharge
    awaiting_booking = "awaiting_booking"
    first_contact_scheduled = "first_contact_scheduled"
    awaiting_supervisor_decision = "awaiting_supervisor_decision"
    monitoring = "monitoring"  # first contact made; watching for re-presentation
    closed = "closed"


# Not (yet) discharged, still in the ED or in hospital: no follow-up clock runs.
HOLD_STAGES = (HandoffStage.awaiting_discharge.value, HandoffStage.inpatient_hold.value)


class HandoffOutcome(StrEnum):
    completed = "completed"  # first contact made, watch period over
    disengaged = "disengaged"  # supervisor's documented decision after the ladder
    transferred = "transferred"
    closed_by_staff = "closed_by_staff"


class Actor(BaseModel):
    """Who is acting: filled in by the API from the authenticated user, never by the caller."""

    id: int
    role: Role
    name: str = ""


class HandoffInput(BaseModel):
    transition_id: str
    notification: HandoffNotification
    policy: Policy
    team_code: str


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfirmDetails(_Command):
    consent_to_messages: bool = Field(description="The person agreed to reminders by SMS")
    phone: PhoneNumber | None = Field(default=None, description="Confirmed mobile number")
    time_zone: TimeZoneName | None = None
    note: str = Field(default="", max_length=2000)


class Booking(_Command):
    appointment_at: AwareDatetime
    location: str = Field(default="", max_length=200, description="Clinic, phone, home visit…")
    late_reason: str | None = Field(
        default=None, max_length=2000,
        description="Required when the appointment falls after the first-contact deadline",
    )


class CompleteTask(_Command):
    task_id: int
    note: str = Field(default="", max_length=2000)


class Reassign(_Command):
    owner_id: int
    reason: str = Field(min_length=1, max_length=2000)


class SupervisorDecisionKind(StrEnum):
    continue_outreach = "continue_outreach"
    close_disengaged = "close_disengaged"
    transfer_care = "transfer_care"


class SupervisorDecision(_Command):
    decision: SupervisorDecisionKind
    reason: str = Field(min_length=1, max_length=2000)


class CloseTransition(_Command):
    reason: str = Field(min_length=1, max_length=2000)


class RePresentation(BaseModel):
    """A later crisis or ED notification for the same person, linked to this transition."""

    transition_id: str
    event_time: datetime


class HandoffState(BaseModel):
    """What the `status` query answers: where the transition stands, from Temporal's truth."""

    transition_id: str
    stage: HandoffStage = HandoffStage.recorded
    person_id: int | None = None
    team_id: int | None = None
    owner_id: int | None = None
    discharged_at: datetime | None = None
    consent_due: datetime | None = None
    booking_due: datetime | None = None
    first_contact_due: datetime | None = None
    medication_reconciliation_due: datetime | None = None
    watch_until: datetime | None = None
    details_confirmed: bool = False
    consent_to_messages: bool = False
    appointment_at: datetime | None = None
    contact_ids: list[str] = Field(default_factory=list)
    active_contact_id: str | None = None
    first_contact_at: datetime | None = None
    medication_reconciled_at: datetime | None = None
    open_tasks: dict[int, str] = Field(default_factory=dict)
    re_presentations: list[RePresentation] = Field(default_factory=list)
    re_presentation_of: list[str] = Field(default_factory=list)
    outcome: HandoffOutcome | None = None
    feedback_rating: int | None = None  # the person's answer at closure, 1–5
