"""What crosses between the `StepUp` workflow (and the contact routine) and their activities."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from ..domain.indicators import IndicatorKind
from ..domain.step_up import StepUpInput


class RecordStepUp(BaseModel):
    input: StepUpInput


class RecordedStepUp(BaseModel):
    person_id: int
    team_id: int
    owner_id: int | None
    clinician_id: int | None
    time_zone: str


class StepUpRequestFields(BaseModel):
    """Timeliness fields of the step-up's own row (`StepUpRequest`); None leaves a field as is."""

    model_config = {"extra": "forbid"}
    urgency: str | None = None
    decision: str | None = None
    decided_at: datetime | None = None
    decided_by_id: int | None = None
    escalation_level: int | None = None
    lead_id: int | None = None
    contact_frequency_seconds: int | None = None
    first_intensified_contact_at: datetime | None = None
    outcome: str | None = None


class StepUpRequestUpdate(BaseModel):
    transition_id: str
    fields: StepUpRequestFields


class SlotRequest(BaseModel):
    transition_id: str
    at: datetime


class SlotClaim(BaseModel):
    slot_id: int | None
    label: str | None = None
    claimed_at: datetime | None = None
    waiting_since: datetime | None = None


class SlotRelease(BaseModel):
    slot_id: int | None
    handed_to: str | None


class IndicatorNote(BaseModel):
    """An observation about the person, from a pathway's events; `key` makes it idempotent."""

    key: str
    person_id: int
    team_id: int
    transition_id: str | None
    kind: IndicatorKind
    observed_at: datetime
    recorded_by_id: int | None = None


class IndicatorNoted(BaseModel):
    crossed_rules: list[str] = Field(default_factory=list)
    proposed_transition_id: str | None = None  # the step-up Handrail proposed, if it did
