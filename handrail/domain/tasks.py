"""Work items for staff, modelled on FHIR Task: a status and a separate business status."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel


class Role(StrEnum):
    crisis_worker = "crisis_worker"
    transition_coordinator = "transition_coordinator"
    clinician = "clinician"
    care_coordinator = "care_coordinator"
    supervisor = "supervisor"
    clinical_lead = "clinical_lead"
    admin = "admin"


class TaskStatus(StrEnum):
    # The FHIR Task status values a Handrail task moves through.
    requested = "requested"
    in_progress = "in-progress"
    completed = "completed"
    cancelled = "cancelled"


OPEN_TASK_STATUSES = (TaskStatus.requested, TaskStatus.in_progress)


class TaskKind(StrEnum):
    review_crisis_summary = "review_crisis_summary"
    confirm_consent_and_details = "confirm_consent_and_details"
    book_first_contact = "book_first_contact"
    medication_reconciliation = "medication_reconciliation"
    outreach_call = "outreach_call"
    rebook_contact = "rebook_contact"
    read_reply = "read_reply"
    supervisor_escalation = "supervisor_escalation"
    supervisor_decision = "supervisor_decision"
    re_presentation_review = "re_presentation_review"


class TaskSpec(BaseModel):
    """What a workflow asks the store to create; `key` makes the creation idempotent."""

    key: str
    transition_id: str
    workflow_id: str
    kind: TaskKind
    title: str
    team_id: int
    owner_id: int | None = None
    role: Role | None = None
    priority: str = "routine"  # FHIR Task priority: routine | urgent | asap | stat
    business_status: str | None = None
    not_before: datetime | None = None
    due_at: datetime | None = None
    created_at: datetime | None = None  # workflow time, so the audit shows when it was asked for
