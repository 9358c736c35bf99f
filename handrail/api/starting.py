"""Starting a warm handoff: the one way every intake (JSON, HL7 v2, FHIR) reaches Temporal."""

from __future__ import annotations

from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from ..config import Settings
from ..domain.handoff import HandoffInput
from ..domain.ids import handoff_workflow_id
from ..domain.notification import HandoffNotification
from ..domain.policy import Policy
from ..observability.metrics import NOTIFICATIONS_REPEATED, WORKFLOWS_STARTED
from ..store.models import Team
from .errors import StartRefused

HANDOFF_WORKFLOW = "PostCrisisHandoff"


def resolve_team_code(
    *, notification: HandoffNotification, policy: Policy, session: Session | None
) -> str:
    """The notification's team, or the policy's default; refused (naming `team`) when unknown."""
    code = (notification.team or "").strip() or policy.default_team
    if not code.isprintable():
        raise StartRefused("team", "must not contain control characters")
    if session is not None:
        known = session.exec(select(Team.id).where(Team.code == code)).first()
        if known is None:
            raise StartRefused("team", f"unknown team {code!r}")
    return code


async def start_handoff(
    *,
    client: Client,
    settings: Settings,
    policy: Policy,
    notification: HandoffNotification,
    session: Session | None = None,
) -> tuple[str, bool]:
    """Start `PostCrisisHandoff` for this notification: `(transition id, True)` when started,
    `(the same id, False)` when this source system and encounter already started one.

    Pass `session` to refuse an unknown team before anything starts (raises `StartRefused`)."""
    workflow_id = handoff_workflow_id(
        key=settings.handoff_id_key(),
        source_system=notification.source_system,
        encounter_id=notification.encounter_id,
    )
    team_code = resolve_team_code(notification=notification, policy=policy, session=session)
    handoff_input = HandoffInput(
        transition_id=workflow_id, notification=notification, policy=policy, team_code=team_code
    )
    try:
        await client.start_workflow(
            HANDOFF_WORKFLOW,
            handoff_input,
            id=workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError:
        NOTIFICATIONS_REPEATED.labels(HANDOFF_WORKFLOW).inc()
        return workflow_id, False
    WORKFLOWS_STARTED.labels(HANDOFF_WORKFLOW).inc()
    return workflow_id, True
