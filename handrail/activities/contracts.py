"""What crosses between the workflows and their activities: plain pydantic models."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from ..domain.handoff import HandoffInput
from ..domain.policy import FrequencyCap


class RecordHandoff(BaseModel):
    input: HandoffInput
    received_at: datetime


class RecordedHandoff(BaseModel):
    person_id: int
    team_id: int
    owner_id: int | None
    clinician_id: int | None
    care_coordinator_id: int | None
    time_zone: str
    earlier_transition_ids: list[str] = Field(default_factory=list)


class TransitionUpdate(BaseModel):
    """Fields of the transition's read model to set, and the timeline entry that explains it."""

    transition_id: str
    key: str
    at: datetime
    action: str
    actor_id: int | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
    fields: dict[str, Any] = Field(default_factory=dict)


class TransitionFields(BaseModel):
    """The read-model fields a workflow may set; parses what arrives as JSON back into types."""

    model_config = {"extra": "forbid"}
    stage: str | None = None
    status: str | None = None
    owner_id: int | None = None
    consent_due: datetime | None = None
    booking_due: datetime | None = None
    first_contact_due: datetime | None = None
    medication_reconciliation_due: datetime | None = None
    next_due_at: datetime | None = None
    appointment_at: datetime | None = None
    details_confirmed_at: datetime | None = None
    first_contact_at: datetime | None = None
    medication_reconciled_at: datetime | None = None
    medication_reconciled_by_id: int | None = None
    outcome: str | None = None
    closed_at: datetime | None = None
    event_time: datetime | None = None


class PersonDetailsUpdate(BaseModel):
    transition_id: str
    person_id: int
    key: str
    at: datetime
    actor_id: int | None  # None: from a hospital notification
    consent_to_messages: bool | None  # None: consent unchanged
    phone: str | None = None
    time_zone: str | None = None


class FinishTask(BaseModel):
    task_id: int
    status: str  # completed | cancelled
    at: datetime
    actor_id: int | None = None
    note: str | None = None
    business_status: str | None = None


class HandOverTask(BaseModel):
    """A task that outlives the contact that raised it is answered through its pathway."""

    task_id: int
    workflow_id: str


class CancelOpenTasks(BaseModel):
    workflow_id: str
    at: datetime
    business_status: str


class SendChannel(StrEnum):
    sms = "sms"
    call = "call"


class SendToPerson(BaseModel):
    key: str
    transition_id: str
    contact_id: str | None
    workflow_id: str
    person_id: int
    channel: SendChannel
    step: str
    body: str
    at: datetime  # workflow time of the send
    frequency_cap: FrequencyCap | None = None
    is_reply: bool = False  # answers the person's own message: no minimum gap
    # To the person's named carer instead, only while the person's consent to it stands.
    to_carer: bool = False


class SendStatus(StrEnum):
    sent = "sent"
    deferred = "deferred"  # the frequency cap allows it only at `not_before`
    skipped_no_consent = "skipped_no_consent"
    skipped_opted_out = "skipped_opted_out"
    skipped_no_number = "skipped_no_number"
    failed_permanently = "failed_permanently"


class SendResult(BaseModel):
    status: SendStatus
    attempt_id: int
    message_id: int | None = None  # the outbox message, for matching replies
    error_code: str | None = None
    not_before: datetime | None = None

    @property
    def delivered_to_channel(self) -> bool:
        return self.status == SendStatus.sent


class ContactRecord(BaseModel):
    contact_id: str
    transition_id: str
    key: str
    at: datetime
    sequence: int
    purpose: str
    appointment_at: datetime
    not_before: datetime
    due_at: datetime
    status: str
    outcome: str | None = None
    outcome_at: datetime | None = None
    confirmed_by_person_at: datetime | None = None
    ladder_step: int = 0
    actor_id: int | None = None
    note: str = ""


class DecisionRecord(BaseModel):
    key: str
    transition_id: str
    kind: str
    decision: str
    reason: str
    decided_by_id: int | None
    decided_at: datetime
    detail: dict[str, Any] = Field(default_factory=dict)




class FeedbackRecord(BaseModel):
    """The feedback question asked at a transition's closure, then (answered_at set) the answer."""

    transition_id: str
    pathway: str
    team_id: int
    person_id: int
    asked_at: datetime
    rating: int | None = None
    comment: str | None = None
    answered_at: datetime | None = None
