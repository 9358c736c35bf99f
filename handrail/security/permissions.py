"""Who may do what: the one table a reviewer reads to know every role's reach.

Routes name a permission; staff actions on a transition name their action. A user also acts
only within their own teams (checked where the transition or task is loaded). Admins manage
users, teams and slots but never read clinical records.
"""

from __future__ import annotations

from ..domain.tasks import Role

R = Role
CLINICAL = frozenset({
    R.crisis_worker, R.transition_coordinator, R.clinician, R.care_coordinator,
    R.supervisor, R.clinical_lead, R.on_call_senior,
})
SENIOR = frozenset({R.supervisor, R.clinical_lead, R.on_call_senior})

PERMISSIONS: dict[str, frozenset[Role]] = {
    "handoffs:create": CLINICAL,
    "intake:submit": frozenset({R.crisis_worker, R.transition_coordinator, R.supervisor}),
    "transitions:read": CLINICAL,
    "transitions:act": CLINICAL,
    "tasks:read": CLINICAL,
    "tasks:complete": CLINICAL,
    "outbox:read": CLINICAL,
    "outbox:reply": frozenset({R.crisis_worker, R.transition_coordinator, R.care_coordinator, R.supervisor}),
    "reports:read": SENIOR,
    "audit:export": frozenset({R.clinical_lead, R.admin}),
    "admin:manage": frozenset({R.admin}),
    "codec:use": CLINICAL,
    "stepups:create": frozenset({R.clinician, R.care_coordinator}) | SENIOR,
    "stepdowns:create": frozenset({R.clinician}) | SENIOR,  # a clinician confirms stabilization
    "capacity:read": CLINICAL,
    "approvals:read": SENIOR,  # the console's step-up huddle page: pending decisions, capacity
    "avoidance:create": frozenset({R.clinician}) | SENIOR,  # opened by the assessing clinician
}

# Staff actions on a transition (`POST /api/transitions/{id}/actions/{action}`).
ACTION_ROLES: dict[str, frozenset[Role]] = {
    "confirm-details": frozenset({
        R.crisis_worker, R.transition_coordinator, R.care_coordinator, R.supervisor,
    }),
    "book": frozenset({R.transition_coordinator, R.care_coordinator, R.clinician, R.supervisor}),
    "record-contact": frozenset({R.transition_coordinator, R.care_coordinator, R.clinician, R.supervisor}),
    "complete-task": CLINICAL,
    "reassign": frozenset({R.transition_coordinator, R.supervisor, R.clinical_lead}),
    "decide": SENIOR,
    "confirm-proposal": frozenset({R.clinician}) | SENIOR,  # a step-up Handrail proposed
    "review": frozenset({R.clinician}) | SENIOR,  # the step-up's end-of-period review
    "close": frozenset({R.transition_coordinator, R.supervisor, R.clinical_lead}),
    # The step-down taper: its plan is agreed with the person by the clinicians who see them;
    # an early warning sign may be reported by anyone in the team, because speed matters.
    "adjust-taper": frozenset({R.clinician, R.care_coordinator}) | SENIOR,
    "early-warning": CLINICAL,
    "exit-plan": frozenset({R.clinician, R.care_coordinator}) | SENIOR,
    # Admission avoidance (see PATHWAY_ACTION_ROLES for its `decide`, `review`, `record-contact`).
    "report-risk": frozenset({R.crisis_worker, R.clinician, R.care_coordinator}) | SENIOR,
    # The carer and the person's consent: whoever in the team hears it records it, and a
    # withdrawal must never wait for the right colleague.
    "record-carer": CLINICAL,
    "withdraw-carer-consent": CLINICAL,
}

# The senior decisions of admission avoidance: the policy's decision roles, not a supervisor.
AVOIDANCE_SENIOR = frozenset({R.clinical_lead, R.on_call_senior})
# Where one pathway's action needs other roles than the same action elsewhere (by the
# transition kind); the workflow's validator still checks its policy's own roles.
PATHWAY_ACTION_ROLES: dict[str, dict[str, frozenset[Role]]] = {
    "admission_avoidance": {
        "decide": AVOIDANCE_SENIOR,
        "review": AVOIDANCE_SENIOR,  # the regular review and a crossed threshold's answer
        # Home visits are made by the crisis team's workers too.
        "record-contact": ACTION_ROLES["record-contact"] | {R.crisis_worker},
    },
}


def allowed(role: Role | str, permission: str) -> bool:
    return Role(role) in PERMISSIONS.get(permission, frozenset())


def action_roles(action: str, pathway: str | None = None) -> frozenset[Role]:
    """Who may send this action, to this pathway's transitions when `pathway` is given."""
    overrides = PATHWAY_ACTION_ROLES.get(pathway or "", {})
    return overrides.get(action) or ACTION_ROLES.get(action, frozenset())


def action_allowed(role: Role | str, action: str, pathway: str | None = None) -> bool:
    return Role(role) in action_roles(action, pathway)
