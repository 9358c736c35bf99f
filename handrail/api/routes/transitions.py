"""Transitions: the list, one transition's record with its live state, and the staff actions."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlmodel import Session
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from ...domain.admission_avoidance import (
    AvoidanceDecision,
    AvoidanceReview,
    AvoidanceState,
    CarerDetails,
    RiskReport,
    WithdrawCarerConsent,
)
from ...domain.contact import OutcomeReport
from ...domain.handoff import (
    Actor,
    Booking,
    CloseTransition,
    CompleteTask,
    ConfirmDetails,
    HandoffState,
    Reassign,
    SupervisorDecision,
)
from ...domain.ids import AVOIDANCE_PREFIX, STEP_DOWN_PREFIX, STEP_UP_PREFIX
from ...domain.step_down import AdjustTaper, CloseStepDown, EarlyWarning, ExitPlan, StepDownState
from ...domain.step_up import ConfirmProposal, StepUpDecision, StepUpReview, StepUpState
from ...security.audit import append_audit
from ...security.permissions import action_allowed, action_roles
from ...store import queries, records
from ...store.models import Transition
from ...store.types import utcnow
from ..deps import (
    TEMPORAL_TIMEOUT_SECONDS,
    Principal,
    SessionDep,
    StaffIdQuery,
    TemporalConnection,
    TemporalConnectionDep,
    WorkflowId,
    client_ip,
    in_scope,
    require,
)
from ..errors import TemporalUnavailable, raise_for_workflow_error, raise_validation
from .admission_avoidance import avoidance_detail

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/transitions", tags=["transitions"])

# The action in the URL → (the workflow's update name, the command it takes).
ACTIONS: dict[str, tuple[str, type[BaseModel]]] = {
    "confirm-details": ("confirm_details", ConfirmDetails),
    "book": ("book", Booking),
    "record-contact": ("record_contact", OutcomeReport),
    "complete-task": ("complete_task", CompleteTask),
    "reassign": ("reassign", Reassign),
    "decide": ("decide", SupervisorDecision),
    "close": ("close", CloseTransition),
}
# A step-up's actions: `decide` there is the huddle's decision, with its own command.
STEP_UP_ACTIONS: dict[str, tuple[str, type[BaseModel]]] = {
    "confirm-proposal": ("confirm_proposal", ConfirmProposal),
    "decide": ("decide", StepUpDecision),
    "review": ("review", StepUpReview),
    "record-contact": ("record_contact", OutcomeReport),
    "complete-task": ("complete_task", CompleteTask),
}
# A step-down's actions: `close` there ends the taper as disengaged.
STEP_DOWN_ACTIONS: dict[str, tuple[str, type[BaseModel]]] = {
    "adjust-taper": ("adjust_taper", AdjustTaper),
    "early-warning": ("early_warning", EarlyWarning),
    "record-contact": ("record_contact", OutcomeReport),
    "complete-task": ("complete_task", CompleteTask),
    "exit-plan": ("exit_plan", ExitPlan),
    "reassign": ("reassign", Reassign),
    "close": ("close", CloseStepDown),
}
# An admission-avoidance episode's actions: `decide` is the senior decision with its thresholds
# and dissent; `review` answers the regular review and a crossed threshold alike.
AVOIDANCE_ACTIONS: dict[str, tuple[str, type[BaseModel]]] = {
    "decide": ("decide", AvoidanceDecision),
    "review": ("review", AvoidanceReview),
    "report-risk": ("report_risk", RiskReport),
    "early-warning": ("early_warning", EarlyWarning),
    "record-contact": ("record_contact", OutcomeReport),
    "record-carer": ("record_carer", CarerDetails),
    "withdraw-carer-consent": ("withdraw_carer_consent", WithdrawCarerConsent),
    "complete-task": ("complete_task", CompleteTask),
}
ALL_ACTIONS = sorted(set(ACTIONS) | set(STEP_UP_ACTIONS) | set(STEP_DOWN_ACTIONS)
                     | set(AVOIDANCE_ACTIONS))
LiveState = HandoffState | StepUpState | StepDownState | AvoidanceState
# Each pathway by its workflow id's prefix: (kind, its actions, its `status` query's answer).
_PATHWAYS = (
    (STEP_DOWN_PREFIX, "step_down", STEP_DOWN_ACTIONS, StepDownState),
    (STEP_UP_PREFIX, "step_up", STEP_UP_ACTIONS, StepUpState),
    (AVOIDANCE_PREFIX, "admission_avoidance", AVOIDANCE_ACTIONS, AvoidanceState),
)


def _pathway_of(transition_id: str) -> tuple[str, dict[str, tuple[str, type[BaseModel]]], type[BaseModel]]:
    for prefix, kind, actions, state_type in _PATHWAYS:
        if transition_id.startswith(prefix):
            return kind, actions, state_type
    return "handoff", ACTIONS, HandoffState


def pathway_of(transition_id: str) -> str:
    """The transition's kind, told by its workflow id's prefix."""
    return _pathway_of(transition_id)[0]


def actions_of(transition_id: str) -> dict[str, tuple[str, type[BaseModel]]]:
    """The actions of the transition's pathway, told by its workflow id's prefix."""
    return _pathway_of(transition_id)[1]


def state_type_of(transition_id: str) -> type[BaseModel]:
    return _pathway_of(transition_id)[2]

Reader = Annotated[Principal, Depends(require("transitions:read"))]
ActingUser = Annotated[Principal, Depends(require("transitions:act"))]
NOT_FOUND = "transition not found"


class TransitionKind(StrEnum):
    handoff = "handoff"
    step_up = "step_up"
    step_down = "step_down"
    admission_avoidance = "admission_avoidance"


class TransitionStatus(StrEnum):
    open = "open"
    closed = "closed"


def actor_of(user: Principal) -> Actor:
    return Actor(id=user.staff_id, role=user.role, name=user.name)


@router.get("")
def list_transitions(
    user: Reader,
    session: SessionDep,
    kind: TransitionKind | None = None,
    status_: Annotated[TransitionStatus | None, Query(alias="status")] = None,
    owner: StaffIdQuery = None,
    team: Annotated[
        str | None, Query(description="Team code", max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    ] = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """Newest first, only the user's teams."""
    return jsonable_encoder(queries.list_transitions(
        session=session, team_ids=user.team_ids, kind=kind and kind.value,
        status=status_ and status_.value, owner_id=owner,
        team_code=team, overdue=overdue, now=utcnow(), limit=limit, offset=offset,
    ))


async def live_state(client: Client, transition_id: str) -> LiveState | None:
    """The workflow's own answer to `status`, or None when it cannot be asked right now."""
    try:
        handle = client.get_workflow_handle(transition_id)
        return await asyncio.wait_for(
            handle.query("status", result_type=state_type_of(transition_id)),
            timeout=TEMPORAL_TIMEOUT_SECONDS,
        )
    except Exception as err:  # not found, not reachable, or no worker: the store still answers
        log.info("status query for %s failed: %s", transition_id, type(err).__name__)
        return None


async def _client_or_none(temporal: TemporalConnectionDep) -> Client | None:
    try:
        return await temporal.client()
    except TemporalUnavailable:
        return None


async def scoped(
    *, session: Session, client: Client | None, user: Principal, transition_id: str
) -> tuple[Transition | None, LiveState | None]:
    """The transition's row and live state, or 404 when neither shows it in the user's teams.

    A workflow whose first activity has not written the row yet is known by its query alone;
    before it has resolved its team it holds no personal data, so it is shown to any reader."""
    row = session.get(Transition, transition_id)
    if row is not None:
        if not in_scope(user, row.team_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND)
        state = await live_state(client, transition_id) if client is not None else None
        return row, state
    state = await live_state(client, transition_id) if client is not None else None
    if state is None or (state.team_id is not None and not in_scope(user, state.team_id)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND)
    return None, state


@router.get("/{transition_id}")
async def get_transition(
    transition_id: WorkflowId,
    request: Request,
    user: Reader,
    session: SessionDep,
    temporal: TemporalConnectionDep,
) -> dict[str, Any]:
    client = await _client_or_none(temporal)
    row, state = await scoped(session=session, client=client, user=user, transition_id=transition_id)
    if row is None:
        return jsonable_encoder({"id": transition_id, "recorded": False, "status": state})
    now = utcnow()
    detail = queries.get_transition_detail(
        session=session, transition_id=row.id, team_ids=user.team_ids, now=now
    )
    if detail is None:  # gone between the two reads: as good as never there
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND)
    if row.kind == "admission_avoidance":
        detail.update(avoidance_detail(session=session, transition_id=row.id, person_id=row.person_id))
    # Reading a person's record is itself on the record.
    append_audit(
        session=session, action="read", actor_id=user.staff_id, transition_id=row.id,
        person_id=row.person_id, source=client_ip(request), detail={}, at=now,
    )
    session.commit()
    return jsonable_encoder({**detail, "recorded": True, "status": state})


def _inlined_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its `$defs` inlined, so it can sit inside the OpenAPI path."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return inline(schema)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise RequestValidationError([{
            "type": "json_invalid", "loc": ["body"], "msg": f"JSON decode error: {err}", "input": None,
        }]) from None


ACTION_BODIES = {
    "requestBody": {
        "required": True,
        "description": "The command of the action named in the path: " + "; ".join(
            [f"{action} → {model.__name__}" for action, (_, model) in ACTIONS.items()]
            + [f"{action} on a step-up → {model.__name__}"
               for action, (_, model) in STEP_UP_ACTIONS.items()]
            + [f"{action} on a step-down → {model.__name__}"
               for action, (_, model) in STEP_DOWN_ACTIONS.items()]
            + [f"{action} on an admission avoidance → {model.__name__}"
               for action, (_, model) in AVOIDANCE_ACTIONS.items()]
        ),
        "content": {"application/json": {"schema": {
            "oneOf": [_inlined_schema(model) for model in dict.fromkeys(
                model for _, model in [*ACTIONS.values(), *STEP_UP_ACTIONS.values(),
                                       *STEP_DOWN_ACTIONS.values(), *AVOIDANCE_ACTIONS.values()])],
        }}},
    }
}


@router.post("/{transition_id}/actions/{action}", openapi_extra=ACTION_BODIES)
async def act(
    transition_id: WorkflowId,
    action: Annotated[str, Path(description="One of: " + ", ".join(ALL_ACTIONS))],
    user: ActingUser,
    session: SessionDep,
    temporal: TemporalConnectionDep,
    request: Request,
) -> Any:
    """Send a staff action to the transition's workflow as an update (see ACTION_ROLES)."""
    action_command(user, transition_id, action)  # an unknown or forbidden action: before the body
    return await dispatch_action(session=session, temporal=temporal, user=user,
                                 transition_id=transition_id, action=action,
                                 body=await _json_body(request))


def action_command(user: Principal, transition_id: str, action: str) -> tuple[str, type[BaseModel]]:
    """The update name and command model of an action this user may send to this pathway."""
    if action not in ALL_ACTIONS:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"unknown action {action!r}; one of {ALL_ACTIONS}"
        )
    pathway = pathway_of(transition_id)
    if not action_allowed(user.role, action, pathway):
        allowed_roles = ", ".join(sorted(r.value for r in action_roles(action, pathway)))
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"the {user.role.value} role may not {action}; allowed: {allowed_roles}",
        )
    pathway_actions = actions_of(transition_id)
    if action not in pathway_actions:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"this pathway has no {action!r} action; it accepts {sorted(pathway_actions)}",
        )
    return pathway_actions[action]


async def dispatch_action(
    *, session: Session, temporal: TemporalConnection, user: Principal, transition_id: str,
    action: str, body: Any,
) -> Any:
    """The one way a staff action reaches a workflow, for the API and the console alike:
    role, pathway, command and team checked in that order, each refusal an HTTPException."""
    update_name, command_model = action_command(user, transition_id, action)
    try:
        command = command_model.model_validate(body)
    except ValidationError as err:
        raise_validation(err)
    client = await temporal.client()
    await scoped(session=session, client=client, user=user, transition_id=transition_id)
    # Past `scoped`, the transition exists: a workflow Temporal cannot find has closed.
    when_closed = None
    if action == "withdraw-carer-consent":  # consent can be withdrawn at any time
        def when_closed() -> Any:
            return _withdraw_after_close(session=session, user=user, transition_id=transition_id)
    return await send_update(client, transition_id, update_name, command, actor_of(user),
                             when_closed=when_closed)


def _withdraw_after_close(*, session: Session, user: Principal, transition_id: str) -> Any:
    """The episode's workflow has ended (its feedback wait over), but the person's word still
    counts: the withdrawal is written to the store, which every send to the carer checks."""
    transition = session.get(Transition, transition_id)
    now = utcnow()
    records.withdraw_carer_consent(
        session=session, person_id=transition.person_id, at=now,
        key=f"{transition_id}:carer-withdrawn:{now.isoformat()}", transition_id=transition_id,
        actor_id=user.staff_id, source="after-closure")
    session.commit()
    return {"transition_id": transition_id, "carer_consent_withdrawn": True,
            "recorded": "store (the episode had closed)"}


async def send_update(
    client: Client, workflow_id: str, update_name: str, command: BaseModel, actor: Actor, *,
    when_closed: Callable[[], Any] | None = None,
) -> Any:
    """Run the update and answer with its result, or with the workflow's reason for refusing.
    `when_closed`: what to do instead when the workflow has ended (else 409)."""
    try:
        handle = client.get_workflow_handle(workflow_id)
        result = await handle.execute_update(update_name, args=[command, actor])
    except RPCError as err:
        if when_closed is not None and err.status == RPCStatusCode.NOT_FOUND:
            return when_closed()
        raise_for_workflow_error(err, closed_if_missing=True)
    except Exception as err:
        raise_for_workflow_error(err, closed_if_missing=True)
    return jsonable_encoder(result)
