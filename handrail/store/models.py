"""The SQL store: people, staff, teams, transitions and everything they accumulate.

Temporal holds where each transition stands; these tables are the read model for lists and
reports and the record of what was done. A transition's rows are written by its own workflow's
activities; every row an activity writes carries a unique `key` so a retry writes nothing twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import UTCDateTime, utcnow

# Named constraints: the same names on SQLite and PostgreSQL, and migrations can drop them later
# (SQLite batch mode cannot drop a constraint that has no name). Must be set before the tables.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _when(*, nullable: bool = True, index: bool = False, default_now: bool = False) -> Any:
    kwargs: dict[str, Any] = {"sa_type": UTCDateTime, "nullable": nullable, "index": index}
    if default_now:
        kwargs["default_factory"] = utcnow
    else:
        kwargs["default"] = None
    return Field(**kwargs)


class Team(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=100)
    name: str = Field(max_length=200)
    created_at: datetime = _when(nullable=False, default_now=True)


class Staff(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=40, index=True)
    email: str | None = Field(default=None, unique=True, max_length=200)
    active: bool = True
    password_hash: str | None = Field(default=None, max_length=200)  # argon2, console login
    created_at: datetime = _when(nullable=False, default_now=True)


class ApiToken(SQLModel, table=True):
    """A bearer token for the API, stored only as its SHA-256; shown once when made."""

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)
    label: str = Field(default="", max_length=100)
    created_at: datetime = _when(nullable=False, default_now=True)
    last_used_at: datetime | None = _when()
    revoked_at: datetime | None = _when()


class StaffTeam(SQLModel, table=True):
    staff_id: int = Field(foreign_key="staff.id", primary_key=True)
    team_id: int = Field(foreign_key="team.id", primary_key=True)


class Person(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    given_name: str = Field(max_length=200)
    family_name: str = Field(max_length=200)
    birth_date: str | None = Field(default=None, max_length=10)
    phone: str | None = Field(default=None, max_length=20)
    phone_usable: bool = True
    email: str | None = Field(default=None, max_length=200)
    time_zone: str = Field(default="Europe/London", max_length=64)
    consent_to_messages: bool = False
    consent_recorded_at: datetime | None = _when()
    consent_source: str | None = Field(default=None, max_length=100)
    opted_out_at: datetime | None = _when()
    created_at: datetime = _when(nullable=False, default_now=True)
    updated_at: datetime = _when(nullable=False, default_now=True)


class PersonIdentifier(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("system", "value", name="uq_person_identifier"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    system: str = Field(max_length=200)
    value: str = Field(max_length=200)


class Transition(SQLModel, table=True):
    __table_args__ = (
        Index("ix_transition_team_status", "team_id", "status"),
        Index("ix_transition_person_event", "person_id", "event_time"),
        Index("ix_transition_team_created", "team_id", "created_at"),  # newest first per team
    )
    id: str = Field(primary_key=True, max_length=80)  # the workflow id
    kind: str = Field(max_length=40, index=True)  # handoff | step_up | step_down | admission_avoidance
    status: str = Field(default="open", max_length=20)  # open | closed
    stage: str = Field(max_length=60)
    person_id: int = Field(foreign_key="person.id")
    team_id: int = Field(foreign_key="team.id")
    owner_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    clinician_id: int | None = Field(default=None, foreign_key="staff.id")
    care_coordinator_id: int | None = Field(default=None, foreign_key="staff.id")
    source: str | None = Field(default=None, max_length=40)
    source_system: str | None = Field(default=None, max_length=200)
    encounter_id: str | None = Field(default=None, max_length=200)
    event_time: datetime | None = _when()
    policy_version: str = Field(max_length=100)
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    consent_due: datetime | None = _when()
    booking_due: datetime | None = _when()
    first_contact_due: datetime | None = _when()
    medication_reconciliation_due: datetime | None = _when()
    next_due_at: datetime | None = _when(index=True)
    appointment_at: datetime | None = _when()
    details_confirmed_at: datetime | None = _when()
    first_contact_at: datetime | None = _when()
    medication_reconciled_at: datetime | None = _when()
    medication_reconciled_by_id: int | None = Field(default=None, foreign_key="staff.id")
    re_presentation_of: str | None = Field(default=None, foreign_key="transition.id", index=True)
    outcome: str | None = Field(default=None, max_length=40)
    closed_at: datetime | None = _when()
    created_at: datetime = _when(nullable=False, default_now=True)
    updated_at: datetime = _when(nullable=False, default_now=True)


class Task(SQLModel, table=True):
    __table_args__ = (Index("ix_task_team_status_due", "team_id", "status", "due_at"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    transition_id: str | None = Field(default=None, foreign_key="transition.id", index=True)
    workflow_id: str | None = Field(default=None, max_length=120)
    kind: str = Field(max_length=60)
    title: str = Field(max_length=300)
    status: str = Field(default="requested", max_length=20)  # FHIR Task.status
    business_status: str | None = Field(default=None, max_length=60)  # FHIR Task.businessStatus
    priority: str = Field(default="routine", max_length=10)
    team_id: int = Field(foreign_key="team.id")
    owner_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    role: str | None = Field(default=None, max_length=40)
    not_before: datetime | None = _when()
    due_at: datetime | None = _when()
    created_at: datetime = _when(nullable=False, default_now=True)
    completed_at: datetime | None = _when()
    completed_by_id: int | None = Field(default=None, foreign_key="staff.id")
    note: str | None = Field(default=None, max_length=2000)


class Contact(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=100)  # the contact workflow's id
    transition_id: str = Field(foreign_key="transition.id", index=True)
    sequence: int
    purpose: str = Field(max_length=40)
    appointment_at: datetime = _when(nullable=False)
    not_before: datetime = _when(nullable=False)
    due_at: datetime = _when(nullable=False)
    status: str = Field(default="scheduled", max_length=30)
    outcome: str | None = Field(default=None, max_length=30)
    outcome_at: datetime | None = _when()
    confirmed_by_person_at: datetime | None = _when()
    ladder_step: int = 0
    created_at: datetime = _when(nullable=False, default_now=True)
    updated_at: datetime = _when(nullable=False, default_now=True)


class OutreachAttempt(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    transition_id: str = Field(foreign_key="transition.id", index=True)
    contact_id: str | None = Field(default=None, foreign_key="contact.id")
    workflow_id: str = Field(max_length=120)
    person_id: int = Field(foreign_key="person.id")
    step: str = Field(max_length=60)  # booking_confirmation | reminder-1 | ladder-0-message …
    channel: str = Field(max_length=20)  # sms | call
    status: str = Field(max_length=30)  # queued | sent | delivered | failed | skipped_no_consent …
    provider: str | None = Field(default=None, max_length=20)  # outbox | twilio
    provider_ref: str | None = Field(default=None, max_length=64, index=True)
    error_code: str | None = Field(default=None, max_length=20)
    created_at: datetime = _when(nullable=False, default_now=True)
    updated_at: datetime = _when(nullable=False, default_now=True)


class OutboxMessage(SQLModel, table=True):
    """What the embedded channel 'sent': visible in the console, where a reply can be typed."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    kind: str = Field(max_length=10)  # sms | call
    to: str = Field(max_length=20)
    body: str = Field(max_length=1000)
    person_id: int = Field(foreign_key="person.id", index=True)
    transition_id: str | None = Field(default=None, foreign_key="transition.id", index=True)
    workflow_id: str = Field(max_length=120)
    created_at: datetime = _when(nullable=False, index=True, default_now=True)  # newest first
    reply_text: str | None = Field(default=None, max_length=1000)
    replied_at: datetime | None = _when()


class Decision(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    transition_id: str = Field(foreign_key="transition.id", index=True)
    kind: str = Field(max_length=60)
    decision: str = Field(max_length=60)
    reason: str = Field(max_length=2000)
    decided_by_id: int | None = Field(default=None, foreign_key="staff.id")
    decided_at: datetime = _when(nullable=False)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AuditEvent(SQLModel, table=True):
    """The timeline of a transition and the audit trail of who did what, append-only."""

    __table_args__ = (Index("ix_auditevent_transition_at", "transition_id", "at"),)  # timeline

    id: int | None = Field(default=None, primary_key=True)
    key: str | None = Field(default=None, unique=True, max_length=200)
    at: datetime = _when(nullable=False, index=True)
    actor_id: int | None = Field(default=None, foreign_key="staff.id")
    action: str = Field(max_length=80)
    transition_id: str | None = Field(default=None, foreign_key="transition.id", index=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    source: str | None = Field(default=None, max_length=100)  # where the actor acted from (IP)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Tamper evidence: each entry's hash covers its content and the previous entry's hash.
    prev_hash: str | None = Field(default=None, max_length=64)
    hash: str | None = Field(default=None, max_length=64)


class StepUpSlot(SQLModel, table=True):
    """A team's reserved place for intensified support."""

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", index=True)
    label: str = Field(max_length=100)
    holder_transition_id: str | None = Field(default=None, foreign_key="transition.id", unique=True)
    claimed_at: datetime | None = _when()
