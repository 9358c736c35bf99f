"""The pathway policy: every window, ladder, threshold and message template, validated.

Durations are ISO 8601 (`PT72H`, `P7D`, `PT30S`). The policy travels inside each workflow's
input, so a running transition keeps the policy it started with.
"""

from __future__ import annotations

import hashlib
import string
import tomllib
from datetime import time, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .assurance import AssurancePolicy
from .indicators import IndicatorKind
from .tasks import Role

ALLOWED_PLACEHOLDERS = {"service", "time", "phone", "reply"}


class PolicyError(ValueError):
    """An invalid policy: the message names the field and the reason."""


class LadderAction(StrEnum):
    message = "message"
    call = "call"
    coordinator_task = "coordinator_task"
    rebook = "rebook"
    supervisor_escalation = "supervisor_escalation"


OUTREACH_ACTIONS = {LadderAction.message, LadderAction.call, LadderAction.coordinator_task}


def _require_positive(model: BaseModel, *names: str) -> None:
    for name in names:
        if getattr(model, name) <= timedelta(0):
            raise ValueError(f"{name} must be a positive duration")


def _check_intensive_contacts(model: BaseModel) -> None:
    """What a pathway of intensified contacts (step-up, admission avoidance) must hold: its
    escalation ladder asks only deciders, contacts fit in the period, and the contact ladder
    ends with the supervisor."""
    for level in model.escalation_ladder:
        if level.role not in model.decision_roles:
            raise ValueError(f"escalation_ladder: {level.role.value} is not one of decision_roles")
    if model.contact_frequency > model.period:
        raise ValueError("contact_frequency must not be longer than period")
    if any(offset <= timedelta(0) for offset in model.reminders_before):
        raise ValueError("reminders_before offsets must be positive durations")
    if model.fallback_ladder[-1].action != LadderAction.supervisor_escalation:
        raise ValueError("fallback_ladder must end with a supervisor_escalation step")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LadderStep(Strict):
    action: LadderAction
    wait: timedelta = Field(default=timedelta(0),
                            description="How long to wait for contact before the next step")
    template: str | None = Field(default=None, description="Message template for message and call steps")

    @field_validator("wait")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value


class QuietHours(Strict):
    """No message to a person in these local hours unless a step says otherwise."""

    start: time = time(21, 0)
    end: time = time(8, 0)


class FrequencyCap(Strict):
    """At most `max_in_window` messages to one person per rolling `window`, and `min_gap`
    between two of them unless the message answers the person's own reply."""

    window: timedelta = timedelta(days=1)
    max_in_window: int = Field(default=3, ge=1)
    min_gap: timedelta = timedelta(hours=1)

    @model_validator(mode="after")
    def _coherent(self) -> FrequencyCap:
        if self.window <= timedelta(0):
            raise ValueError("window must be a positive duration")
        if self.min_gap < timedelta(0):
            raise ValueError("min_gap must not be negative")
        return self


class MessagingPolicy(Strict):
    """How often a person may be messaged; `frequency_cap = "off"` switches the cap off.
    A message from the person that no running pathway hears (every workflow that reached out
    has ended) is an urgent task due within `unheard_reply_due`."""

    frequency_cap: FrequencyCap | None = FrequencyCap()
    unheard_reply_due: timedelta = Field(default=timedelta(hours=4), gt=timedelta(0))

    @field_validator("frequency_cap", mode="before")
    @classmethod
    def _off(cls, value: object) -> object:
        return None if value == "off" else value


class HandoffPolicy(Strict):
    consent_confirmation_due: timedelta
    booking_due: timedelta
    first_contact_due: timedelta
    report_marks: list[timedelta]
    reminders_before: list[timedelta]
    outcome_grace: timedelta
    fallback_ladder: list[LadderStep] = Field(min_length=1)
    medication_reconciliation_due: timedelta
    re_presentation_window: timedelta
    supervisor_decision_due: timedelta
    medication_reconciliation_roles: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _coherent(self) -> HandoffPolicy:
        _require_positive(self, "consent_confirmation_due", "booking_due", "first_contact_due",
                          "outcome_grace", "medication_reconciliation_due", "re_presentation_window",
                          "supervisor_decision_due")
        if self.booking_due > self.first_contact_due:
            raise ValueError("booking_due must not be later than first_contact_due")
        if any(offset <= timedelta(0) for offset in self.reminders_before):
            raise ValueError("reminders_before offsets must be positive durations")
        ladder = self.fallback_ladder
        if ladder[-1].action != LadderAction.supervisor_escalation:
            raise ValueError("fallback_ladder must end with a supervisor_escalation step")
        outreach = [s for s in ladder[:-1] if s.action in OUTREACH_ACTIONS]
        if len(outreach) < 3:
            raise ValueError(
                "fallback_ladder needs at least three outreach attempts (message, call, "
                "coordinator_task) before the supervisor decision"
            )
        return self


class EscalationLevel(Strict):
    """One rung of an escalation ladder: who is asked next, and how long they have."""

    role: Role
    wait: timedelta

    @field_validator("wait")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value


class ProposalRule(Strict):
    """Recorded indicators that, inside `window`, make Handrail propose a step-up."""

    name: str = Field(min_length=1, max_length=100)
    window: timedelta
    requires: dict[IndicatorKind, int] = Field(min_length=1)

    @model_validator(mode="after")
    def _coherent(self) -> ProposalRule:
        if self.window <= timedelta(0):
            raise ValueError("window must be a positive duration")
        if any(count < 1 for count in self.requires.values()):
            raise ValueError("requires: every count must be at least 1")
        return self


class StepUpPolicy(Strict):
    proposal_rules: list[ProposalRule] = Field(min_length=1)
    proposal_confirmation_due: timedelta
    huddle_role: Role
    decision_roles: list[Role] = Field(min_length=1)
    decision_due_routine: timedelta
    decision_due_urgent: timedelta
    escalation_ladder: list[EscalationLevel] = Field(min_length=1)
    capacity_escalation: list[EscalationLevel] = Field(min_length=1)
    capacity_recheck: timedelta
    contact_frequency: timedelta
    first_contact_within: timedelta
    period: timedelta
    reminders_before: list[timedelta]
    outcome_grace: timedelta
    fallback_ladder: list[LadderStep] = Field(min_length=1)
    supervisor_decision_due: timedelta
    review_due: timedelta

    @model_validator(mode="after")
    def _coherent(self) -> StepUpPolicy:
        _require_positive(self, "proposal_confirmation_due", "decision_due_routine", "decision_due_urgent",
                          "capacity_recheck", "contact_frequency", "first_contact_within", "period",
                          "outcome_grace", "supervisor_decision_due", "review_due")
        if self.decision_due_urgent > self.decision_due_routine:
            raise ValueError("decision_due_urgent must not be later than decision_due_routine")
        if self.huddle_role not in self.decision_roles:
            raise ValueError("huddle_role must be one of decision_roles")
        _check_intensive_contacts(self)
        return self


class WarningSeverity(StrEnum):
    """How serious an early warning sign is, in order: the fast track starts at the threshold."""

    low = "low"
    moderate = "moderate"
    high = "high"
    severe = "severe"


class StabilizationCriterion(Strict):
    """One part of the stabilization definition a step-down is checked against."""

    name: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9_]+$")
    description: str = Field(min_length=1, max_length=300)


class TaperPhase(Strict):
    """`contacts` contacts `every` apart, each to happen within `window` either side of its date."""

    every: timedelta
    contacts: int = Field(ge=1, le=52)
    window: timedelta

    @model_validator(mode="after")
    def _coherent(self) -> TaperPhase:
        if self.every <= timedelta(0) or self.window <= timedelta(0):
            raise ValueError("every and window must be positive durations")
        if self.window * 2 > self.every:
            raise ValueError("window must be at most half of every, so windows never overlap")
        return self


class StepDownPolicy(Strict):
    stabilization_criteria: list[StabilizationCriterion] = Field(min_length=1)
    taper: list[TaperPhase] = Field(min_length=1)
    reminders_before: list[timedelta]
    fallback_ladder: list[LadderStep] = Field(min_length=1)
    supervisor_decision_due: timedelta
    missed_contacts_for_review: int = Field(ge=1, le=10)
    review_due: timedelta
    fast_track_task_due: timedelta
    fast_track_severity: WarningSeverity
    warning_rating_at_or_below: int = Field(ge=0, le=5)
    warning_rating_severity: WarningSeverity
    re_escalation_recheck: timedelta
    exit_planning_due: timedelta
    check_ins_after: list[timedelta]
    check_in_reply_within: timedelta
    check_in_good_rating_at_or_above: int = Field(default=4, ge=1, le=5)
    check_in_message: str = Field(min_length=1, max_length=320)
    repeat_crisis_window: timedelta

    @model_validator(mode="after")
    def _coherent(self) -> StepDownPolicy:
        _require_positive(self, "supervisor_decision_due", "review_due", "fast_track_task_due",
                          "re_escalation_recheck", "exit_planning_due", "check_in_reply_within",
                          "repeat_crisis_window")
        if any(offset <= timedelta(0) for offset in [*self.reminders_before, *self.check_ins_after]):
            raise ValueError("reminders_before and check_ins_after must be positive durations")
        if self.fallback_ladder[-1].action != LadderAction.supervisor_escalation:
            raise ValueError("fallback_ladder must end with a supervisor_escalation step")
        names = [c.name for c in self.stabilization_criteria]
        if len(set(names)) != len(names):
            raise ValueError("stabilization_criteria: names must be unique")
        names = {n for _, n, _, _ in string.Formatter().parse(self.check_in_message) if n is not None}
        if names - ALLOWED_PLACEHOLDERS:
            unknown = sorted(names - ALLOWED_PLACEHOLDERS)
            raise ValueError(f"check_in_message: unknown placeholder(s) {unknown}")
        return self


def _only_placeholders(value: str, allowed: set[str], what: str) -> str:
    names = {n for _, n, _, _ in string.Formatter().parse(value) if n is not None}
    if names - allowed:
        raise ValueError(f"{what}: unknown placeholder(s) {sorted(names - allowed)}; "
                         f"allowed: {sorted(allowed)}")
    if len(value) > 320:
        raise ValueError(f"{what}: must fit in two SMS segments (320 characters)")
    return value


class AdmissionThresholdDefaults(Strict):
    """The risk thresholds a senior documents when approving admission avoidance; these are
    offered when the decision names none."""

    risk_rating_at_or_above: int = Field(ge=1, le=10)  # the clinician's risk rating, 0–10
    missed_contacts_in_a_row: int = Field(ge=1, le=10)
    warning_severity_at_or_above: WarningSeverity


class AdmissionAvoidancePolicy(Strict):
    decision_roles: list[Role] = Field(min_length=1)  # who may approve, review and decide
    decision_role: Role  # who is asked first
    decision_due: timedelta
    escalation_ladder: list[EscalationLevel] = Field(min_length=1)
    period: timedelta
    contact_frequency: timedelta
    first_contact_within: timedelta
    out_of_hours_check_ins: list[time] = Field(default_factory=list, max_length=4)
    reminders_before: list[timedelta]
    outcome_grace: timedelta
    fallback_ladder: list[LadderStep] = Field(min_length=1)
    supervisor_decision_due: timedelta
    review_every: timedelta
    review_due: timedelta
    threshold_role: Role
    threshold_decision_due: timedelta
    thresholds: AdmissionThresholdDefaults
    person_rating_warning_at_or_below: int = Field(ge=0, le=5)

    @model_validator(mode="after")
    def _coherent(self) -> AdmissionAvoidancePolicy:
        _require_positive(self, "decision_due", "period", "contact_frequency", "first_contact_within",
                          "outcome_grace", "supervisor_decision_due", "review_every", "review_due",
                          "threshold_decision_due")
        if self.decision_role not in self.decision_roles:
            raise ValueError("decision_role must be one of decision_roles")
        if self.threshold_role not in self.decision_roles:
            raise ValueError("threshold_role must be one of decision_roles")
        _check_intensive_contacts(self)
        return self


class CarerMoment(StrEnum):
    episode_started = "episode_started"
    contact_missed = "contact_missed"  # a visit missed and being followed up
    episode_ended = "episode_ended"


CARER_PLACEHOLDERS = {"service", "phone"}


class CarersPolicy(Strict):
    """Updates to a named carer, only with the person's recorded consent, at these moments.
    The carer learns that the team is involved and how to reach it fast, never why."""

    updates_at: list[CarerMoment]
    messages: dict[CarerMoment, str]

    @model_validator(mode="after")
    def _a_message_per_moment(self) -> CarersPolicy:
        for moment in self.updates_at:
            if moment not in self.messages:
                raise ValueError(f"messages: no message for {moment.value}")
        for moment, text in self.messages.items():
            _only_placeholders(text, CARER_PLACEHOLDERS, f"messages.{moment.value}")
        return self


class FeedbackPolicy(Strict):
    """The person's own voice at the end of every transition (where they consented to messages)."""

    question: str = Field(min_length=1)
    reply_within: timedelta
    low_score_at_or_below: int = Field(ge=1, le=5)
    follow_up_due: timedelta

    @model_validator(mode="after")
    def _coherent(self) -> FeedbackPolicy:
        if self.reply_within <= timedelta(0) or self.follow_up_due <= timedelta(0):
            raise ValueError("reply_within and follow_up_due must be positive durations")
        _only_placeholders(self.question, ALLOWED_PLACEHOLDERS - {"time"}, "question")
        return self


class Messages(Strict):
    """Minimum necessary: a service name, a time, a way to reply. Never clinical detail."""

    booking_confirmation: str
    reminder: str
    missed_contact: str
    call_script: str

    @field_validator("*")
    @classmethod
    def _only_allowed_placeholders(cls, value: str) -> str:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        unknown = names - ALLOWED_PLACEHOLDERS
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(ALLOWED_PLACEHOLDERS)}"
            )
        if len(value) > 320:
            raise ValueError("must fit in two SMS segments (320 characters)")
        return value


class Policy(Strict):
    version: str = Field(min_length=1)
    service_name: str = Field(min_length=1, max_length=60)
    service_phone: str = Field(min_length=1)
    default_team: str = Field(min_length=1)
    quiet_hours: QuietHours | None = QuietHours()
    handoff: HandoffPolicy
    # Optional in the model only so that transitions started before step-ups existed still
    # decode their policy; a policy file without it is refused (parse_policy).
    step_up: StepUpPolicy | None = None
    # Optional in the model for the same reason as step_up; required in a policy file.
    assurance: AssurancePolicy | None = None
    # Optional in the model for the same reason as step_up; required in a policy file.
    step_down: StepDownPolicy | None = None
    # Optional in the model for the same reason as step_up; required in a policy file.
    admission_avoidance: AdmissionAvoidancePolicy | None = None
    carers: CarersPolicy | None = None
    feedback: FeedbackPolicy | None = None
    messages: Messages
    messaging: MessagingPolicy = MessagingPolicy()
    digest: str = ""

    @property
    def fingerprint(self) -> str:
        """Version plus content hash: what a transition records as the policy it runs under."""
        return f"{self.version}+{self.digest}" if self.digest else self.version

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _off(cls, value: object) -> object:
        # TOML has no null: `quiet_hours = "off"` switches them off (demo and test policies).
        return None if value == "off" else value

    @model_validator(mode="after")
    def _templates_exist(self) -> Policy:
        for index, step in enumerate(self.handoff.fallback_ladder):
            if step.template is not None and step.template not in Messages.model_fields:
                raise ValueError(
                    f"handoff.fallback_ladder[{index}].template: unknown template {step.template!r}"
                )
        for index, step in enumerate(self.step_up.fallback_ladder if self.step_up else []):
            if step.template is not None and step.template not in Messages.model_fields:
                raise ValueError(
                    f"step_up.fallback_ladder[{index}].template: unknown template {step.template!r}"
                )
        avoidance = self.admission_avoidance
        for index, step in enumerate(avoidance.fallback_ladder if avoidance else []):
            if step.template is not None and step.template not in Messages.model_fields:
                raise ValueError(f"admission_avoidance.fallback_ladder[{index}].template: "
                                 f"unknown template {step.template!r}")
        for index, step in enumerate(self.step_down.fallback_ladder if self.step_down else []):
            if step.template is not None and step.template not in Messages.model_fields:
                raise ValueError(
                    f"step_down.fallback_ladder[{index}].template: unknown template {step.template!r}"
                )
        return self


def _field_path(location: tuple) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def parse_policy(text: str, *, source: str = "policy") -> Policy:
    """Parse and validate a TOML policy; errors name the field and the reason."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise PolicyError(f"{source}: not valid TOML: {err}") from err
    raw["digest"] = hashlib.sha256(text.encode()).hexdigest()[:12]
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as err:
        problems = [
            f"{_field_path(e['loc']) or '(top level)'}: {e['msg']}" for e in err.errors()
        ]
        raise PolicyError(f"{source} is invalid:\n  " + "\n  ".join(problems)) from None
    if policy.step_up is None:
        raise PolicyError(f"{source} is invalid:\n  step_up: Field required")
    if policy.step_down is None:
        raise PolicyError(f"{source} is invalid:\n  step_down: Field required")
    if policy.assurance is None:
        raise PolicyError(f"{source} is invalid:\n  assurance: Field required")
    for section in ("admission_avoidance", "carers", "feedback"):
        if getattr(policy, section) is None:
            raise PolicyError(f"{source} is invalid:\n  {section}: Field required")
    return policy
