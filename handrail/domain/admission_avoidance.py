"""Admission avoidance (`AdmissionAvoidance`): its input, staff actions, state and thresholds.

Ratings, on purpose, are two different things: a clinician's risk rating (`report-risk`, 0–10,
higher is riskier) is compared with the documented threshold; the person's own reply to a
message (1–5, higher is better, as every Handrail question asks it) counts as an early warning
sign of the policy's severity when it is at or below `person_rating_warning_at_or_below`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from .contact import ContactSpec, ServiceDetails
from .policy import Policy, WarningSeverity
from .step_up import Escalation

SEVERITY_ORDER = list(WarningSeverity)


class AvoidanceStage(StrEnum):
    recorded = "recorded"
    awaiting_decision = "awaiting_decision"  # the senior decision
    intensive = "intensive"  # contacts at the policy's intensity
    awaiting_review = "awaiting_review"  # the regular senior review
    threshold_crossed = "threshold_crossed"  # escalated at once to the senior on call
    closed = "closed"


class AvoidanceOutcome(StrEnum):
    admission_avoided = "admission_avoided"
    admitted = "admitted"


class AvoidanceInput(BaseModel):
    transition_id: str
    person_id: int
    team_code: str
    reason: str
    requested_by_id: int | None
    requested_at: datetime
    policy: Policy
    # The requesting clinician's proposal, shown to the senior; documented with the decision
    # when the decision names no thresholds of its own (the policy's when neither does).
    proposed_thresholds: AdmissionThresholds | None = None


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdmissionThresholds(_Command):
    """What would mean admission, documented with the decision."""

    risk_rating_at_or_above: int = Field(ge=1, le=10, description="The clinician's risk rating, 0–10")
    missed_contacts_in_a_row: int = Field(default=2, ge=1, le=10)
    warning_severity_at_or_above: WarningSeverity = WarningSeverity.high


class Dissent(_Command):
    """A colleague who disagreed, their view, and how it was resolved (required: a dissent
    left unresolved is not a decision)."""

    staff_id: int | None = Field(default=None, ge=1)
    name: str = Field(min_length=1, max_length=200)
    view: str = Field(min_length=1, max_length=2000)
    resolution: str = Field(default="", max_length=2000)


class AvoidanceDecisionKind(StrEnum):
    approve = "approve"  # support at home instead of a bed
    admit = "admit"  # admission avoidance not approved: the person is admitted


class AvoidanceDecision(_Command):
    decision: AvoidanceDecisionKind
    rationale: str = Field(min_length=1, max_length=2000)
    thresholds: AdmissionThresholds | None = Field(
        default=None, description="Required to approve: what would mean admission")
    dissent: list[Dissent] = Field(default_factory=list, max_length=10)
    lead_id: int | None = Field(default=None, ge=1, description="Who leads the episode")


class AvoidanceReviewKind(StrEnum):
    continue_ = "continue"
    step_down = "step_down"  # admission avoided: into the step-down taper
    end = "end"  # admission avoided: back to the team's usual care
    admit = "admit"


class AvoidanceReview(_Command):
    """The senior's answer to a review or to a threshold crossed (`review`)."""

    decision: AvoidanceReviewKind
    reason: str = Field(min_length=1, max_length=2000)


class RiskReport(_Command):
    rating: int = Field(ge=0, le=10, description="The clinician's risk rating, 0–10")
    note: str = Field(default="", max_length=2000)


class CarerDetails(_Command):
    """A named carer, and the person's consent to keep them informed (`record-carer`)."""

    name: str = Field(min_length=1, max_length=200)
    phone: str = Field(min_length=6, max_length=20, pattern=r"^\+?[0-9 ]+$")
    relationship: str = Field(min_length=1, max_length=60)
    consent: bool = Field(description="The person agrees that this carer receives updates")
    consent_source: str = Field(min_length=1, max_length=100,
                                description="How consent was given, e.g. 'verbal, home visit'")


class WithdrawCarerConsent(_Command):
    note: str = Field(default="", max_length=2000)


class AvoidanceState(BaseModel):
    """What the `status` query answers for an admission-avoidance episode."""

    transition_id: str
    kind: str = "admission_avoidance"
    stage: AvoidanceStage = AvoidanceStage.recorded
    person_id: int | None = None
    team_id: int | None = None
    owner_id: int | None = None
    requested_at: datetime | None = None
    decision_due: datetime | None = None
    decision: AvoidanceDecisionKind | None = None
    decided_at: datetime | None = None
    decided_by_id: int | None = None
    thresholds: AdmissionThresholds | None = None
    dissent: list[Dissent] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)
    started_at: datetime | None = None
    ends_at: datetime | None = None
    contact_ids: list[str] = Field(default_factory=list)
    active_contact_id: str | None = None
    missed_in_a_row: int = 0
    latest_risk_rating: int | None = None
    crossings: list[str] = Field(default_factory=list)
    reviews: list[AvoidanceReviewKind] = Field(default_factory=list)
    carer_updates: list[str] = Field(default_factory=list)
    open_tasks: dict[int, str] = Field(default_factory=dict)
    event_count: int = 0  # idempotency keys of the transition's writes
    outcome: AvoidanceOutcome | None = None
    outcome_reason: str | None = None
    episode_seconds: float | None = None
    feedback_rating: int | None = None


class WarningFromStepDown(BaseModel):
    """An early warning sign on the person's step-down taper, passed to their open episode
    instead of starting a step-up beside it. `key` is the fast track's own id: a retry is
    heard once."""

    key: str
    step_down_id: str
    severity: WarningSeverity


# --- thresholds: pure rules ------------------------------------------------------------------


def risk_at_or_above(rating: int | None, thresholds: AdmissionThresholds) -> bool:
    return rating is not None and rating >= thresholds.risk_rating_at_or_above


def missed_in_a_row(missed: Sequence[bool], thresholds: AdmissionThresholds) -> bool:
    """Whether the latest contacts (oldest first, True for a miss) end in enough misses."""
    run = 0
    for was_missed in reversed(missed):
        if not was_missed:
            break
        run += 1
    return run >= thresholds.missed_contacts_in_a_row


def warning_is_severe(severity: WarningSeverity, thresholds: AdmissionThresholds) -> bool:
    return SEVERITY_ORDER.index(severity) >= SEVERITY_ORDER.index(thresholds.warning_severity_at_or_above)


def person_rating_is_warning(rating: int | None, at_or_below: int) -> bool:
    return rating is not None and rating <= at_or_below


def dissent_unresolved(dissent: Sequence[Dissent]) -> list[str]:
    return [d.name for d in dissent if not d.resolution.strip()]


# --- the contacts ----------------------------------------------------------------------------


def contact_times(start: datetime, end: datetime, *, first_within: timedelta, every: timedelta,
                  check_ins: Sequence[time], time_zone: str) -> list[tuple[datetime, str]]:
    """The episode's contacts, in order, each with its purpose: the first within
    `first_within`, then every `every`, plus an out-of-hours check-in at each local time in
    `check_ins` on every day of the episode (where the person's risk peaks)."""
    planned = {}
    at = start + first_within
    while at < end:
        planned[at] = "intensive_contact"
        at += every
    zone = ZoneInfo(time_zone)
    day = start.astimezone(zone).date()
    while check_ins and datetime.combine(day, time(0), tzinfo=zone) < end:
        for local in check_ins:
            moment = datetime.combine(day, local, tzinfo=zone).astimezone(start.tzinfo)
            if start < moment < end:
                planned.setdefault(moment, "out_of_hours_check_in")
        day += timedelta(days=1)
    return sorted(planned.items())


def episode_contact(policy: Policy, *, contact_id: str, transition_id: str, sequence: int,
                    person_id: int, team_id: int, owner_id: int | None, time_zone: str,
                    appointment_at: datetime, purpose: str) -> ContactSpec:
    """One contact of the episode, chased by the same routine as every contact."""
    avoidance = policy.admission_avoidance
    earliest_reminder = max(avoidance.reminders_before, default=timedelta(0))
    return ContactSpec(
        contact_id=contact_id, transition_id=transition_id, sequence=sequence,
        person_id=person_id, team_id=team_id, owner_id=owner_id, time_zone=time_zone,
        purpose=purpose, appointment_at=appointment_at,
        not_before=appointment_at - earliest_reminder,
        due_at=appointment_at + avoidance.outcome_grace,
        reminders_before=avoidance.reminders_before, fallback_ladder=avoidance.fallback_ladder,
        quiet_hours=policy.quiet_hours, messages=policy.messages,
        service=ServiceDetails(name=policy.service_name, phone=policy.service_phone),
        supervisor_decision_due=avoidance.supervisor_decision_due,
        frequency_cap=policy.messaging.frequency_cap)
