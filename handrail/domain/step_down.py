"""The step-down taper's input, staff actions and state (`StepDown`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .contact import ContactSpec, ServiceDetails
from .policy import Policy, WarningSeverity
from .taper import AdjustmentKind, PlannedContact


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Stabilization(_Command):
    """The clinician's check against the policy's stabilization definition."""

    confirmed: list[str] = Field(default_factory=list, max_length=20,
                                 description="Criteria (by name) the clinician confirms")
    overrides: dict[str, str] = Field(default_factory=dict, max_length=20,
                                      description="Criterion name → why the step-down goes "
                                                  "ahead without it")


class ContingencyPlan(_Command):
    """What the person and the team watch for, and how a relapse reaches help fast."""

    early_warning_signs: list[str] = Field(min_length=1, max_length=20)
    fast_track_route: str = Field(min_length=1, max_length=1000)


class StepDownInput(BaseModel):
    transition_id: str
    person_id: int
    team_code: str
    requested_by_id: int
    requested_at: datetime
    monitoring_owner_id: int
    stabilization: Stabilization
    contingency: ContingencyPlan
    step_up_id: str | None = None  # the step-up this taper follows
    policy: Policy
    carried: StepDownState | None = None  # set when the taper continues as a new run


class AdjustTaper(_Command):
    kind: AdjustmentKind
    reason: str = Field(min_length=1, max_length=2000)
    by: int = Field(default=1, ge=1, le=12, description="slower/faster: how many contacts")
    until: datetime | None = Field(default=None, description="pause: the date contact resumes")

    @model_validator(mode="after")
    def _pause_names_its_end(self) -> AdjustTaper:
        if self.kind == AdjustmentKind.pause and self.until is None:
            raise ValueError("until: required to pause the taper")
        return self


class EarlyWarning(_Command):
    sign: str = Field(min_length=1, max_length=500)
    severity: WarningSeverity
    note: str = Field(default="", max_length=2000)


class ExitPlan(_Command):
    """Onward signposting: where the person goes for support once discharged."""

    signposting: list[str] = Field(min_length=1, max_length=20)
    note: str = Field(default="", max_length=2000)


class StepDownOutcome(StrEnum):
    completed = "completed"
    re_escalated = "re_escalated"
    disengaged = "disengaged"


class CloseStepDown(_Command):
    """Staff end the taper early: the person disengaged (the only early end that is not a
    re-escalation, which the fast track records itself)."""

    reason: str = Field(min_length=1, max_length=2000)


class StepDownStage(StrEnum):
    recorded = "recorded"
    tapering = "tapering"
    paused = "paused"
    awaiting_re_escalation = "awaiting_re_escalation"  # a fast-track step-up at its huddle
    exit_planning = "exit_planning"
    post_discharge = "post_discharge"
    closed = "closed"


class Adjustment(BaseModel):
    kind: AdjustmentKind
    reason: str
    by_id: int
    at: datetime
    contacts_left: int


class WarningRecord(BaseModel):
    sign: str
    severity: WarningSeverity
    at: datetime
    source: str  # staff | reply
    step_up_id: str | None = None


class StepDownState(BaseModel):
    """What the `status` query answers, and what a new run of the taper continues from."""

    transition_id: str
    kind: str = "step_down"
    stage: StepDownStage = StepDownStage.recorded
    person_id: int | None = None
    team_id: int | None = None
    owner_id: int | None = None
    time_zone: str = "Europe/London"
    step_up_id: str | None = None
    started_at: datetime | None = None
    anchor: datetime | None = None
    remaining: list[PlannedContact] = Field(default_factory=list)
    next_contact_at: datetime | None = None
    paused_until: datetime | None = None
    contact_ids: list[str] = Field(default_factory=list)
    contacts_made: int = 0
    contacts_missed: int = 0
    consecutive_misses: int = 0
    active_contact_id: str | None = None
    adjustments: list[Adjustment] = Field(default_factory=list)
    warnings: list[WarningRecord] = Field(default_factory=list)
    re_escalation_id: str | None = None  # the fast-track step-up waiting for its huddle
    re_escalation_ids: list[str] = Field(default_factory=list)
    repeat_crisis_ids: list[str] = Field(default_factory=list)
    exit_plan: ExitPlan | None = None
    discharged_at: datetime | None = None
    check_ins_sent: int = 0
    awaiting_check_in_reply: bool = False
    open_tasks: dict[int, str] = Field(default_factory=dict)
    outcome: StepDownOutcome | None = None
    runs: int = 1
    feedback_rating: int | None = None  # the person's answer at closure, 1–5
    event_count: int = 0  # keys stay unique across runs


def taper_contact(policy: Policy, *, contact_id: str, transition_id: str, sequence: int,
                  person_id: int, team_id: int, owner_id: int | None, time_zone: str,
                  not_before: datetime, appointment_at: datetime, due_at: datetime) -> ContactSpec:
    """One taper contact, chased by the same routine as every contact."""
    step_down = policy.step_down
    return ContactSpec(
        contact_id=contact_id, transition_id=transition_id, sequence=sequence,
        person_id=person_id, team_id=team_id, owner_id=owner_id, time_zone=time_zone,
        purpose="taper_contact", appointment_at=appointment_at, not_before=not_before,
        due_at=due_at, reminders_before=step_down.reminders_before,
        fallback_ladder=step_down.fallback_ladder, quiet_hours=policy.quiet_hours,
        messages=policy.messages,
        service=ServiceDetails(name=policy.service_name, phone=policy.service_phone),
        supervisor_decision_due=step_down.supervisor_decision_due,
        frequency_cap=policy.messaging.frequency_cap)


def reminder_lead(policy: Policy) -> timedelta:
    return max(policy.step_down.reminders_before, default=timedelta(0))


StepDownInput.model_rebuild()
