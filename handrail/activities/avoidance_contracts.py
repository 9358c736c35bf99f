"""What crosses between `AdmissionAvoidance` and its activities."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from ..domain.admission_avoidance import AvoidanceInput, CarerDetails
from .contracts import FeedbackRecord  # noqa: F401 - moved there; kept importable from here


class RecordAvoidance(BaseModel):
    input: AvoidanceInput


class RecordedAvoidance(BaseModel):
    person_id: int
    team_id: int
    owner_id: int | None
    time_zone: str


class AvoidanceEpisodeFields(BaseModel):
    """Fields of the episode's own row; None leaves a field as it is."""

    model_config = {"extra": "forbid"}
    decision: str | None = None
    decided_at: datetime | None = None
    decided_by_id: int | None = None
    rationale: str | None = None
    thresholds: dict[str, Any] | None = None
    dissent: list[Any] | None = None
    escalation_level: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    episode_seconds: float | None = None
    outcome: str | None = None
    outcome_reason: str | None = None


class AvoidanceEpisodeUpdate(BaseModel):
    transition_id: str
    fields: AvoidanceEpisodeFields


class CarerRecord(BaseModel):
    """A carer recorded (or their consent withdrawn: `details` None) for the person."""

    key: str
    transition_id: str
    person_id: int
    details: CarerDetails | None
    actor_id: int | None
    at: datetime
    source: str | None = None  # who withdrew it when no staff member did: "twilio-21610"
