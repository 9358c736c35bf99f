"""Builders for the step-up workflow tests: a person on the caseload, slots, a request."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from handrail.domain.handoff import Actor
from handrail.domain.step_up import (
    StepUpDecision,
    StepUpDecisionKind,
    StepUpIndicators,
    StepUpInput,
    StepUpOrigin,
    Urgency,
)
from handrail.domain.tasks import Role
from handrail.store.models import Person, Staff, StaffTeam, StepUpSlot, Task, Transition
from handrail.workflows.step_up import StepUp


def add_person(h, family_name: str = "Stepupperson") -> int:
    with h.session() as session:
        person = Person(given_name="Robin", family_name=family_name, phone="+447700900321",
                        consent_to_messages=True)
        session.add(person)
        session.commit()
        return person.id


def add_slots(h, count: int) -> list[int]:
    with h.session() as session:
        slots = [StepUpSlot(team_id=h.staff.team_id, label=f"slot {n}") for n in range(1, count + 1)]
        session.add_all(slots)
        session.commit()
        return [slot.id for slot in slots]


def add_on_call_senior(h) -> Actor:
    with h.session() as session:
        staff = Staff(name="Test on-call senior", role=Role.on_call_senior.value)
        session.add(staff)
        session.flush()
        session.add(StaffTeam(staff_id=staff.id, team_id=h.staff.team_id))
        session.commit()
        return Actor(id=staff.id, role=Role.on_call_senior, name=staff.name)


async def request_step_up(h, person_id: int, *, urgency: Urgency = Urgency.routine,
                          origin: StepUpOrigin = StepUpOrigin.clinician) -> WorkflowHandle:
    transition_id = f"stepup-{uuid.uuid4()}"
    handle = await h.client.start_workflow(StepUp.run, StepUpInput(
        transition_id=transition_id, person_id=person_id, team_code="crisis-north", origin=origin,
        urgency=urgency, reason="Two missed sessions and not managing at home",
        indicators=StepUpIndicators(missed_sessions=2, functional_decline=True),
        requested_by_id=h.staff.clinician.id if origin == StepUpOrigin.clinician else None,
        requested_at=await h.now(), policy=h.policy), id=transition_id, task_queue=h.task_queue)
    h.started.append(handle)
    await h.settle(lambda: bool(open_tasks(h, transition_id)))
    return handle


def approval(h, *, period_days: int = 6) -> StepUpDecision:
    return StepUpDecision(decision=StepUpDecisionKind.approve, reason="Risk rising; agreed at huddle",
                          lead_id=h.staff.clinician.id, contact_frequency=timedelta(days=3),
                          period=timedelta(days=period_days))


def open_tasks(h, transition_id: str, kind: str | None = None) -> list[Task]:
    tasks = h.rows(Task, Task.transition_id == transition_id, Task.status == "requested")
    return [t for t in tasks if kind is None or t.kind == kind]


def transition(h, transition_id: str) -> Transition:
    return h.rows(Transition, Transition.id == transition_id)[0]


async def refusal(handle: WorkflowHandle, update, *args) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(update, args=list(args))
    assert isinstance(caught.value.cause, ApplicationError)
    return caught.value.cause
