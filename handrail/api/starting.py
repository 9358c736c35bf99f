"""Starting a warm handoff: the one way every intake (JSON, HL7 v2, FHIR) reaches Temporal."""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func
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
from ..store.models import Team, Transition
from .deps import MAX_ROW_ID
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


# --- what every pathway's start checks (step-up, step-down, admission avoidance) ------------


class PersonOnCaseloadIn(BaseModel):
    """The start of a request about one person on a team's caseload; each pathway adds its own."""

    model_config = ConfigDict(extra="forbid")

    person_id: int = Field(ge=1, le=MAX_ROW_ID, description="A person on the team's caseload")
    team: str | None = Field(default=None, max_length=100, pattern=r"^[A-Za-z0-9._-]+$",
                             description="Team code; needed only by staff of several teams")



def requesting_team(*, session: Session, team_ids: Collection[int], code: str | None) -> Team:
    """The team a request is made for: named, or the requester's only team (refused, naming
    `team`, when it is ambiguous or not theirs)."""
    if code is None:
        if len(team_ids) != 1:
            raise StartRefused("team", "you belong to several teams: name the team")
        return session.get(Team, next(iter(team_ids)))
    team = session.exec(select(Team).where(Team.code == code)).first()
    if team is None or team.id not in team_ids:
        raise StartRefused("team", f"{code!r} is not one of your teams")
    return team


def on_caseload(*, session: Session, person_id: int, team_id: int) -> bool:
    # The team's caseload: people with a transition of the team. Unknown people and another
    # team's people get the same answer, so the route tells nobody who exists elsewhere.
    return session.exec(select(Transition.id).where(
        Transition.person_id == person_id, Transition.team_id == team_id)).first() is not None


def open_transition_of(*, session: Session, person_id: int, kind: str) -> str | None:
    """The person's open transition of this kind: a repeated request answers with it."""
    return session.exec(select(Transition.id).where(
        Transition.person_id == person_id, Transition.kind == kind,
        Transition.status == "open")).first()


def earlier_transitions(*, session: Session, person_id: int, kind: str) -> int:
    """How many of this kind the person had: part of the next one's keyed workflow id."""
    return session.exec(select(func.count()).select_from(Transition).where(
        Transition.person_id == person_id, Transition.kind == kind)).one()

