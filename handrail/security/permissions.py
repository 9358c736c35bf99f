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
    R.supervisor, R.clinical_lead,
})
SENIOR = frozenset({R.supervisor, R.clinical_lead})

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
    "close": frozenset({R.transition_coordinator, R.supervisor, R.clinical_lead}),
}


def allowed(role: Role | str, permission: str) -> bool:
    return Role(role) in PERMISSIONS.get(permission, frozenset())


def action_allowed(role: Role | str, action: str) -> bool:
    return Role(role) in ACTION_ROLES.get(action, frozenset())
