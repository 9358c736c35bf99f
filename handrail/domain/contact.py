"""The contact routine's input, events and result (`Contact` child workflow)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from .indicators import IndicatorKind
from .policy import FrequencyCap, LadderStep, Messages, QuietHours


class ContactOutcome(StrEnum):
    attended = "attended"
    missed = "missed"
    cancelled = "cancelled"
    rescheduled = "rescheduled"


class ContactResultKind(StrEnum):
    made = "made"  # the person was reached
    ladder_exhausted = "ladder_exhausted"  # the ladder ended in a supervisor decision task
    cancelled = "cancelled"  # stopped by staff, e.g. the transition closed


class ServiceDetails(BaseModel):
    name: str
    phone: str


class ContactSpec(BaseModel):
    contact_id: str
    transition_id: str
    sequence: int
    person_id: int
    team_id: int
    owner_id: int | None
    time_zone: str
    purpose: str = "first_contact"
    appointment_at: datetime
    not_before: datetime
    due_at: datetime
    reminders_before: list[timedelta] = Field(default_factory=list)
    fallback_ladder: list[LadderStep]
    quiet_hours: QuietHours | None
    messages: Messages
    service: ServiceDetails
    supervisor_decision_due: timedelta
    frequency_cap: FrequencyCap | None = None


class OutcomeReport(BaseModel):
    """A staff member's record of what happened at the touchpoint (`record-contact`)."""

    model_config = ConfigDict(extra="forbid")

    outcome: ContactOutcome
    occurred_at: datetime | None = None
    new_appointment_at: datetime | None = None
    note: str = Field(default="", max_length=2000)
    indicators: list[IndicatorKind] = Field(
        default_factory=list, max_length=10,
        description="What staff observed at the contact (e.g. functional_decline); counted by "
                    "the step-up thresholds")


class PersonReply(BaseModel):
    """An inbound message from the person (SMS or typed into the outbox)."""

    message_id: int | None
    text: str
    received_at: datetime


class DeliveryFailure(BaseModel):
    """The messaging provider could not deliver an outreach attempt."""

    message_id: int = Field(description="The outreach attempt's id")
    error_code: str | None = None


class ContactResult(BaseModel):
    contact_id: str
    kind: ContactResultKind
    made_at: datetime | None = None
    outreach_attempts: int = 0
    ladder_steps_taken: list[str] = Field(default_factory=list)
    supervisor_task_id: int | None = None
