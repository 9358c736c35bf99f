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
    """How often a person may be messaged; `frequency_cap = "off"` switches the cap off."""

    frequency_cap: FrequencyCap | None = FrequencyCap()

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
        for name in (
            "consent_confirmation_due", "booking_due", "first_contact_due", "outcome_grace",
            "medication_reconciliation_due", "re_presentation_window", "supervisor_decision_due",
        ):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be a positive duration")
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
        return Policy.model_validate(raw)
    except ValidationError as err:
        problems = [
            f"{_field_path(e['loc']) or '(top level)'}: {e['msg']}" for e in err.errors()
        ]
        raise PolicyError(f"{source} is invalid:\n  " + "\n  ".join(problems)) from None
