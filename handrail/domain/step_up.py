"""The step-up's input, staff actions and state (`StepUp`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .contact import ContactSpec, ServiceDetails
from .policy import Policy


class StepUpOrigin(StrEnum):
    clinician = "clinician"  # asked for by a clinician (`POST /api/step-ups`)
    proposed = "proposed"  # proposed by Handrail when recorded indicators crossed a threshold
    early_warning = "early_warning"  # a step-down's fast track: straight to the urgent huddle


class Urgency(StrEnum):
    routine = "routine"
    urgent = "urgent"


class StepUpStage(StrEnum):
    recorded = "recorded"
    awaiting_confirmation = "awaiting_confirmation"  # a proposal waits for the clinician
    awaiting_decision = "awaiting_decision"  # the huddle
    awaiting_capacity = "awaiting_capacity"  # approved, no free slot: on the waitlist
    intensified = "intensified"  # holding a slot, contacts at the increased frequency
    awaiting_review = "awaiting_review"
    closed = "closed"


class StepUpOutcome(StrEnum):
    declined = "declined"
    proposal_dismissed = "proposal_dismissed"
    stepped_down = "stepped_down"
    escalated_to_acute = "escalated_to_acute"


class StepUpIndicators(BaseModel):
    """What drives the request, as the clinician recorded it."""

    model_config = ConfigDict(extra="forbid")

    missed_sessions: int = Field(default=0, ge=0, le=100)
    functional_decline: bool = False
    risk_indicators: list[str] = Field(default_factory=list, max_length=20)
    medication_non_adherence: bool = False
    housing_instability: bool = False


class StepUpInput(BaseModel):
    transition_id: str
    person_id: int
    team_code: str
    origin: StepUpOrigin
    urgency: Urgency
    reason: str
    indicators: StepUpIndicators
    requested_by_id: int | None  # None: proposed by Handrail
    requested_at: datetime
    policy: Policy
    crossed_rules: list[str] = Field(default_factory=list)  # a proposal's reasons
    source_transition_id: str | None = None  # the transition whose events crossed them


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfirmProposal(_Command):
    confirm: bool = Field(description="True: the proposal goes to the huddle; False: dismissed")
    reason: str = Field(min_length=1, max_length=2000)
    urgency: Urgency | None = None


class StepUpDecisionKind(StrEnum):
    approve = "approve"
    modify = "modify"  # approved with a plan changed from what was asked for
    decline = "decline"


class StepUpDecision(_Command):
    decision: StepUpDecisionKind
    reason: str = Field(min_length=1, max_length=2000)
    lead_id: int | None = Field(default=None, description="The step-up's lead clinician")
    contact_frequency: timedelta | None = Field(
        default=None, description="ISO 8601 duration between intensified contacts, e.g. P2D; "
                                  "the policy's contact_frequency when not given")
    period: timedelta | None = Field(default=None, description="Overrides the policy's period")

    @model_validator(mode="after")
    def _an_approval_names_its_plan(self) -> StepUpDecision:
        if self.decision != StepUpDecisionKind.decline:
            if self.lead_id is None:
                raise ValueError("lead_id: required to approve or modify")
        for name in ("contact_frequency", "period"):
            value = getattr(self, name)
            if value is not None and value <= timedelta(0):
                raise ValueError(f"{name}: must be a positive duration")
        return self


class StepUpReviewKind(StrEnum):
    continue_ = "continue"
    step_down = "step_down"
    escalate_acute = "escalate_acute"


class StepUpReview(_Command):
    decision: StepUpReviewKind
    reason: str = Field(min_length=1, max_length=2000)


class Escalation(BaseModel):
    level: int
    role: str
    at: datetime
    waited_seconds: float  # since the request reached the huddle (or the waitlist)


class StepUpState(BaseModel):
    """What the `status` query answers for a step-up."""

    transition_id: str
    kind: str = "step_up"
    stage: StepUpStage = StepUpStage.recorded
    origin: StepUpOrigin = StepUpOrigin.clinician
    urgency: Urgency = Urgency.routine
    person_id: int | None = None
    team_id: int | None = None
    owner_id: int | None = None
    lead_id: int | None = None
    requested_at: datetime | None = None
    decision_due: datetime | None = None
    decision: StepUpDecisionKind | None = None
    decided_at: datetime | None = None
    decided_by_id: int | None = None
    escalations: list[Escalation] = Field(default_factory=list)
    capacity_escalations: list[Escalation] = Field(default_factory=list)
    waiting_since: datetime | None = None
    slot_id: int | None = None
    slot_claimed_at: datetime | None = None
    contact_frequency: timedelta | None = None
    period_ends_at: datetime | None = None
    periods: int = 0
    contact_ids: list[str] = Field(default_factory=list)
    active_contact_id: str | None = None
    first_intensified_contact_at: datetime | None = None
    review_due: datetime | None = None
    reviews: list[StepUpReviewKind] = Field(default_factory=list)
    open_tasks: dict[int, str] = Field(default_factory=dict)
    outcome: StepUpOutcome | None = None
    event_count: int = 0  # idempotency keys of the transition's writes
    feedback_rating: int | None = None  # the person's answer at closure, 1–5


def intensified_contact(policy: Policy, *, contact_id: str, transition_id: str, sequence: int,
                        person_id: int, team_id: int, lead_id: int | None, time_zone: str,
                        appointment_at: datetime) -> ContactSpec:
    """One intensified contact of a step-up, chased by the same routine as every contact."""
    step_up = policy.step_up
    earliest_reminder = max(step_up.reminders_before, default=timedelta(0))
    return ContactSpec(
        contact_id=contact_id, transition_id=transition_id, sequence=sequence,
        person_id=person_id, team_id=team_id, owner_id=lead_id, time_zone=time_zone,
        purpose="intensified_contact", appointment_at=appointment_at,
        not_before=appointment_at - earliest_reminder, due_at=appointment_at + step_up.outcome_grace,
        reminders_before=step_up.reminders_before, fallback_ladder=step_up.fallback_ladder,
        quiet_hours=policy.quiet_hours, messages=policy.messages,
        service=ServiceDetails(name=policy.service_name, phone=policy.service_phone),
        supervisor_decision_due=step_up.supervisor_decision_due,
        frequency_cap=policy.messaging.frequency_cap)
