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
        # The reports: a team's discharges (or step-downs) of a period, and everyone's crisis
        # presentations of a period (repeat crisis counts other teams' presentations too).
        Index("ix_transition_kind_team_event", "kind", "team_id", "event_time"),
        Index("ix_transition_kind_event", "kind", "event_time"),
        Index("ix_transition_kind_team_closed", "kind", "team_id", "closed_at"),
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
    # A crisis handoff within the repeat-crisis window of a step-down, or the fast-track step-up
    # a step-down started: linked to that step-down (the weekly assurance check reads it).
    follows_step_down_id: str | None = Field(default=None, foreign_key="transition.id", index=True)
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
    # Sent to the person's carer, not the person: not counted in the person's frequency cap.
    carer_id: int | None = Field(default=None, foreign_key="carer.id")
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

    __table_args__ = (
        Index("ix_auditevent_transition_at", "transition_id", "at"),  # timeline
        Index("ix_auditevent_action_transition", "action", "transition_id"),  # reports: admissions
    )

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


class StepUpRequest(SQLModel, table=True):
    """One step-up's huddle, capacity and timeliness: the read model its reports count from.

    `capacity_status` is the waitlist: `waiting` rows of a team, urgent first and then by
    `waiting_since`, are the order in which released slots are handed on."""

    __table_args__ = (
        Index("ix_stepuprequest_team_capacity", "team_id", "capacity_status"),
        Index("ix_stepuprequest_team_requested", "team_id", "requested_at"),  # reports by period
    )
    transition_id: str = Field(primary_key=True, foreign_key="transition.id", max_length=80)
    team_id: int = Field(foreign_key="team.id")
    person_id: int = Field(foreign_key="person.id", index=True)
    origin: str = Field(max_length=20)  # clinician | proposed
    urgency: str = Field(max_length=10)  # routine | urgent
    reason: str = Field(max_length=2000)
    indicators: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    requested_by_id: int | None = Field(default=None, foreign_key="staff.id")
    requested_at: datetime = _when(nullable=False)
    decision: str | None = Field(default=None, max_length=20)  # approve | modify | decline
    decided_at: datetime | None = _when()
    decided_by_id: int | None = Field(default=None, foreign_key="staff.id")
    escalation_level: int = 0  # how far up the ladder the decision had to climb
    lead_id: int | None = Field(default=None, foreign_key="staff.id")
    contact_frequency_seconds: int | None = None
    capacity_status: str | None = Field(default=None, max_length=20)  # waiting | holding | released | left
    waiting_since: datetime | None = _when()
    slot_id: int | None = Field(default=None, foreign_key="stepupslot.id")
    slot_claimed_at: datetime | None = _when()
    capacity_wait_seconds: float | None = None
    first_intensified_contact_at: datetime | None = _when()
    outcome: str | None = Field(default=None, max_length=40)


class Indicator(SQLModel, table=True):
    """An observation about a person that the step-up thresholds count (a missed contact …)."""

    __table_args__ = (Index("ix_indicator_person_observed", "person_id", "observed_at"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    person_id: int = Field(foreign_key="person.id")
    team_id: int = Field(foreign_key="team.id")
    kind: str = Field(max_length=40)
    observed_at: datetime = _when(nullable=False)
    transition_id: str | None = Field(default=None, foreign_key="transition.id")
    recorded_by_id: int | None = Field(default=None, foreign_key="staff.id")


class AssuranceReport(SQLModel, table=True):
    """One team's weekly assurance: the four checks' findings and their trend, as it was found.

    Unique on (team, week): the run that writes it is safe to repeat, and keeps the first."""

    __table_args__ = (UniqueConstraint("team_id", "week", name="uq_assurancereport_team_week"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    week: str = Field(max_length=10)  # ISO week, 2026-W48
    week_start: datetime = _when(nullable=False)
    week_end: datetime = _when(nullable=False)
    generated_at: datetime = _when(nullable=False, default_now=True)
    workflow_id: str | None = Field(default=None, max_length=120)
    policy_version: str = Field(max_length=100)
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    findings: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    trend: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class StepDownPlan(SQLModel, table=True):
    """One step-down's plan and its links: the stabilization check, the contingency plan, the
    taper as it stands, the step-up it follows and the step-ups it re-escalated to."""

    transition_id: str = Field(primary_key=True, foreign_key="transition.id", max_length=80)
    team_id: int = Field(foreign_key="team.id")
    person_id: int = Field(foreign_key="person.id", index=True)
    monitoring_owner_id: int | None = Field(default=None, foreign_key="staff.id")
    step_up_id: str | None = Field(default=None, foreign_key="transition.id", index=True)
    # No foreign key: the step-up is recorded by its own workflow, possibly a moment later.
    re_escalation_id: str | None = Field(default=None, max_length=80, index=True)
    stabilization: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    contingency: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    taper_dates: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    adjustments: int = 0
    started_at: datetime = _when(nullable=False)
    exit_plan: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    discharged_at: datetime | None = _when()
    outcome: str | None = Field(default=None, max_length=40)


class Carer(SQLModel, table=True):
    """A named carer or family member, and the person's consent to keep them informed: checked
    at every send, so a withdrawal stops every later update."""

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", unique=True)  # one named carer per person
    name: str = Field(max_length=200)
    phone: str = Field(max_length=20)
    relationship: str = Field(max_length=60)
    consent_given: bool = False
    consent_recorded_at: datetime | None = _when()
    consent_source: str | None = Field(default=None, max_length=100)
    consent_recorded_by_id: int | None = Field(default=None, foreign_key="staff.id")
    consent_withdrawn_at: datetime | None = _when()
    created_at: datetime = _when(nullable=False, default_now=True)
    updated_at: datetime = _when(nullable=False, default_now=True)


class AvoidanceEpisode(SQLModel, table=True):
    """One admission-avoidance episode: the senior decision, its thresholds and dissent, and how
    it ended; the read model of the admissions-avoided and episode-length figures."""

    __table_args__ = (Index("ix_avoidanceepisode_team_requested", "team_id", "requested_at"),)
    transition_id: str = Field(primary_key=True, foreign_key="transition.id", max_length=80)
    team_id: int = Field(foreign_key="team.id")
    person_id: int = Field(foreign_key="person.id", index=True)
    reason: str = Field(max_length=2000)
    requested_by_id: int | None = Field(default=None, foreign_key="staff.id")
    requested_at: datetime = _when(nullable=False)
    decision: str | None = Field(default=None, max_length=20)  # approve | admit
    decided_at: datetime | None = _when()
    decided_by_id: int | None = Field(default=None, foreign_key="staff.id")
    rationale: str | None = Field(default=None, max_length=2000)
    thresholds: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dissent: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    escalation_level: int = 0
    started_at: datetime | None = _when()
    ended_at: datetime | None = _when()
    episode_seconds: float | None = None
    outcome: str | None = Field(default=None, max_length=40)  # admission_avoided | admitted
    outcome_reason: str | None = Field(default=None, max_length=2000)


class TransitionFeedback(SQLModel, table=True):
    """The person's answer at the end of a transition: how confident they feel about what
    comes next (1–5) and a comment, reported by pathway and team."""

    __table_args__ = (Index("ix_transitionfeedback_team_asked", "team_id", "asked_at"),)
    id: int | None = Field(default=None, primary_key=True)
    transition_id: str = Field(foreign_key="transition.id", unique=True, max_length=80)
    pathway: str = Field(max_length=40)  # the transition's kind
    team_id: int = Field(foreign_key="team.id")
    person_id: int = Field(foreign_key="person.id")
    asked_at: datetime = _when(nullable=False)
    rating: int | None = None
    comment: str | None = Field(default=None, max_length=1000)
    answered_at: datetime | None = _when()


class HandoffMeasure(SQLModel, table=True):
    """Each handoff's measure clocks, kept as its records change (store/measure_facts.py), so
    the outcome report reads one narrow row per transition instead of re-deriving every clock
    from the contacts, admissions and presentations behind it. Derived: it can be rebuilt from
    the other tables at any time (`handrail report refresh-measures`).

    A clock is (met, closes_at): read at a moment `as_of`, a clock not met is pending while
    as_of < closes_at (domain/measures.py `rate`). Role- and deadline-dependent parts of the
    medication figures stay raw here, because the policy that judges them can change."""

    __table_args__ = (Index("ix_handoffmeasure_team_event", "team_id", "event_time"),
                      Index("ix_handoffmeasure_person", "person_id"))
    transition_id: str = Field(primary_key=True, max_length=80)  # no FK: a derived row
    person_id: int
    team_id: int
    event_time: datetime = _when(nullable=False)
    discharged: bool  # false while still in the ED or on an inpatient hold: no clock runs
    follow_up_setting: str | None = Field(default=None, max_length=20)  # emergency (FUM) | inpatient (FUH)
    follow_up_excluded: str | None = Field(default=None, max_length=40)  # why FUM leaves it out
    follow_up_7d_met: bool = False
    follow_up_7d_closes_at: datetime | None = _when()
    follow_up_30d_met: bool = False
    follow_up_30d_closes_at: datetime | None = _when()
    first_contact_hours: float | None = None
    within_72h_met: bool = False
    within_72h_closes_at: datetime = _when(nullable=False)
    attended: int = 0
    missed: int = 0
    reconciled_by_role: str | None = Field(default=None, max_length=40)
    reconciled_after_seconds: float | None = None
    mrp_dates_met: bool = False  # reconciled within MRP's dates, whoever did it
    mrp_closes_at: datetime = _when(nullable=False)
    repeat_30d_met: bool = False
    repeat_30d_closes_at: datetime = _when(nullable=False)
    repeat_90d_met: bool = False
    repeat_90d_closes_at: datetime = _when(nullable=False)


class InboundMessage(SQLModel, table=True):
    """A message the person sent (a text, a key pressed on a reminder call, a reply typed into
    the outbox), kept as they sent it before any workflow is told: staff read it on the
    transition, and one that no running pathway heard is a task (store/inbound.py)."""

    __table_args__ = (Index("ix_inboundmessage_transition_received", "transition_id", "received_at"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)  # twilio:<MessageSid>, outbox:<message id>, …
    person_id: int = Field(foreign_key="person.id", index=True)
    transition_id: str | None = Field(default=None, foreign_key="transition.id", max_length=80)
    channel: str = Field(max_length=10)  # sms | call | outbox
    body: str = Field(max_length=1600)  # Twilio's longest inbound SMS
    received_at: datetime = _when(nullable=False)
    heard_by: str | None = Field(default=None, max_length=120)  # the workflow that was told
    task_id: int | None = Field(default=None, foreign_key="task.id")  # when none was
