"""Open an admission-avoidance episode: intensive support at home, instead of a bed, for a
person in crisis on the team's caseload; its senior decision and the rest are its actions."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field, field_validator
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from ...domain.admission_avoidance import AdmissionThresholds, AvoidanceInput, CarerDetails
from ...domain.handoff import Actor
from ...domain.ids import requested_avoidance_workflow_id
from ...domain.policy import Policy
from ...domain.tasks import TaskKind
from ...store import records
from ...store.models import AvoidanceEpisode, Carer, Transition
from ...store.types import utcnow
from ..deps import (
    PolicyDep,
    Principal,
    SessionDep,
    SettingsDep,
    TemporalConnectionDep,
    require,
)
from ..errors import StartRefused
from ..starting import (
    PersonOnCaseloadIn,
    earlier_transitions,
    on_caseload,
    open_transition_of,
    requesting_team,
)

log = logging.getLogger(__name__)
AVOIDANCE_WORKFLOW = "AdmissionAvoidance"
KIND = "admission_avoidance"
router = APIRouter(tags=["admission-avoidance"])


class AvoidanceRequestIn(PersonOnCaseloadIn):
    reason: str = Field(min_length=1, max_length=2000,
                        description="The crisis, and why the person could be supported at home")
    proposed_thresholds: AdmissionThresholds | None = Field(
        default=None, description="What would mean admission, proposed to the senior who decides "
                                  "(the policy's when not given)")
    carer: CarerDetails | None = Field(
        default=None, description="A named carer, and whether the person consents to them "
                                  "receiving updates; nothing is sent to them without consent")

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("must not be blank")
        return reason.strip()


class AvoidanceStarted(BaseModel):
    transition_id: str
    status_url: str
    carer_recorded: bool | None = Field(
        default=None, description="Whether the carer was recorded (None when none was given); "
                                  "false: send them again with the record-carer action")


@router.post("/api/admission-avoidance", status_code=status.HTTP_202_ACCEPTED,
             response_model=AvoidanceStarted,
             responses={409: {"description": "An episode is already open for this person"}})
async def open_admission_avoidance(
    request: AvoidanceRequestIn,
    user: Annotated[Principal, Depends(require("avoidance:create"))],
    session: SessionDep,
    settings: SettingsDep,
    policy: PolicyDep,
    temporal: TemporalConnectionDep,
) -> AvoidanceStarted:
    team = requesting_team(session=session, team_ids=user.team_ids, code=request.team)
    if not on_caseload(session=session, person_id=request.person_id, team_id=team.id):
        raise StartRefused("person_id", f"not on the caseload of team {team.code}")
    if policy.admission_avoidance is None:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail="this deployment's policy has no admission_avoidance section")
    already = open_transition_of(session=session, person_id=request.person_id, kind=KIND)
    if already is not None:
        raise _already_open(already)
    client = await temporal.client()  # after the input checks: bad input is 422 even now
    earlier = earlier_transitions(session=session, person_id=request.person_id, kind=KIND)
    transition_id = requested_avoidance_workflow_id(
        key=settings.handoff_id_key(), person_id=request.person_id, earlier_episodes=earlier)
    try:
        await client.start_workflow(
            AVOIDANCE_WORKFLOW,
            AvoidanceInput(transition_id=transition_id, person_id=request.person_id,
                           team_code=team.code, reason=request.reason,
                           requested_by_id=user.staff_id, requested_at=utcnow(), policy=policy,
                           proposed_thresholds=request.proposed_thresholds),
            id=transition_id, task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL)
    except WorkflowAlreadyStartedError:  # asked twice before the first one was recorded
        raise _already_open(transition_id) from None
    _flag_an_open_step_up(session=session, person_id=request.person_id, episode_id=transition_id,
                          policy=policy)
    carer_recorded = None
    if request.carer is not None:
        carer_recorded = await _record_carer(client, transition_id, request.carer, user)
    return AvoidanceStarted(transition_id=transition_id, status_url=f"/api/transitions/{transition_id}",
                            carer_recorded=carer_recorded)


def _flag_an_open_step_up(*, session: Session, person_id: int, episode_id: str, policy: Policy) -> None:
    """Crisis care is never held up by a step-up already under way, but two pathways chasing
    one person with their own contacts is for a person to settle: an urgent task for the
    step-up's owner (its review decides whether it continues, is stepped down or closed)."""
    step_up_id = open_transition_of(session=session, person_id=person_id, kind="step_up")
    step_up = session.get(Transition, step_up_id) if step_up_id else None
    if step_up is None or policy.step_up is None:
        return
    now = utcnow()
    records.open_unwatched_task(
        session=session, key=f"{step_up.id}:overlap:{episode_id}", transition=step_up,
        kind=TaskKind.pathway_overlap, at=now, due_at=now + policy.step_up.decision_due_urgent,
        title="An admission-avoidance episode has begun beside this step-up: decide whether "
              "its contacts go on")
    session.commit()


def _already_open(transition_id: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, detail={
        "msg": "an admission-avoidance episode is already open for this person",
        "transition_id": transition_id, "status_url": f"/api/transitions/{transition_id}"})


async def _record_carer(client: Client, transition_id: str, carer: CarerDetails,
                        user: Principal) -> bool:
    """The carer and the person's consent, through the episode's own update (its activity is
    the one writer of the carer's row); a failure leaves the episode running without them."""
    try:
        await client.get_workflow_handle(transition_id).execute_update(
            "record_carer", args=[carer, Actor(id=user.staff_id, role=user.role, name=user.name)])
    except Exception as err:  # noqa: BLE001 - the episode has started; the carer can be re-sent
        log.warning("could not record the carer of %s: %s", transition_id, type(err).__name__)
        return False
    return True


def avoidance_detail(*, session: Session, transition_id: str, person_id: int) -> dict[str, Any]:
    """What the transition's record adds for an episode: its decision, thresholds, dissent and
    length, and the named carer with the state of the person's consent."""
    episode = session.get(AvoidanceEpisode, transition_id)
    carer = session.exec(select(Carer).where(Carer.person_id == person_id)).first()
    return {
        "episode": episode.model_dump() if episode else None,
        "carer": None if carer is None else {
            **carer.model_dump(include={"name", "phone", "relationship", "consent_given",
                                        "consent_recorded_at", "consent_source",
                                        "consent_withdrawn_at"}),
            "receives_updates": carer.consent_given and carer.consent_withdrawn_at is None,
        },
    }
