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
    on_call_senior = "on_call_senior"  # the senior clinician on call: the last rung of escalation
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
    confirm_step_up_proposal = "confirm_step_up_proposal"
    step_up_huddle = "step_up_huddle"
    step_up_escalation = "step_up_escalation"
    step_up_capacity_escalation = "step_up_capacity_escalation"
    step_up_review = "step_up_review"
    start_step_down = "start_step_down"  # the hook until StepDown exists: a clinician starts it
    step_down_review = "step_down_review"  # repeated misses in a taper: the owner reviews the plan
    early_warning = "early_warning"  # the fast-track route: an urgent task for the owner at once
    exit_plan = "exit_plan"  # the taper's last contact is done: signpost onward, then discharge
    check_in_call = "check_in_call"  # a post-discharge check-in unanswered or worrying
    assurance_finding = "assurance_finding"  # a weekly assurance check found this transition
    avoidance_decision = "avoidance_decision"  # admission avoidance: the senior decision
    avoidance_escalation = "avoidance_escalation"  # no senior decision in time: up the ladder
    avoidance_review = "avoidance_review"  # the regular senior review of the episode
    avoidance_threshold = "avoidance_threshold"  # a documented threshold crossed: decide now
    feedback_follow_up = "feedback_follow_up"  # the person rated their confidence low at closure
    pathway_overlap = "pathway_overlap"  # an avoidance episode began beside an open step-up


# Tasks that record a decision with its reason: answered by the pathway's action (decide,
# review, confirm-proposal …) on the transition, never by ticking them off a task list.
ANSWERED_BY_ACTION = frozenset({
    TaskKind.confirm_step_up_proposal, TaskKind.step_up_huddle, TaskKind.step_up_escalation,
    TaskKind.step_up_review, TaskKind.exit_plan, TaskKind.avoidance_decision, TaskKind.avoidance_escalation,
    TaskKind.avoidance_review, TaskKind.avoidance_threshold,
})


def answered_by_action(kind: str, transition_id: str) -> bool:
    """True when completing the task from a list cannot work: its pathway asks for an action.
    The ladder's supervisor task is the handoff's `decide`; elsewhere it is acknowledged."""
    if kind == TaskKind.supervisor_decision:
        return transition_id.startswith("handoff-")
    return kind in ANSWERED_BY_ACTION


class TaskSpec(BaseModel):
    """What a workflow asks the store to create; `key` makes the creation idempotent."""

    key: str
    transition_id: str
    workflow_id: str | None  # None: a task the store opens itself, that no workflow waits on
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
