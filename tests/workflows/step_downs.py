"""Builders for the step-down workflow tests: a stabilized person, a taper, its contacts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from handrail.domain.contact import ContactOutcome, OutcomeReport
from handrail.domain.policy import Policy, TaperPhase
from handrail.domain.step_down import ContingencyPlan, Stabilization, StepDownInput, StepDownState
from handrail.store.models import Contact, Task
from handrail.workflows.step_down import StepDown
from tests.workflows.step_ups import add_person, open_tasks  # noqa: F401 - re-exported

ALL_CRITERIA = ["symptom_control", "functional_markers", "adherence", "safety_plan_reliability"]


def short_taper(policy: Policy) -> Policy:
    """Weekly ×2, fortnightly ×2, monthly ×1: five contacts, so a whole taper (and one new run
    after four contacts) fits a test."""
    taper = [TaperPhase(every=timedelta(days=7), contacts=2, window=timedelta(days=2)),
             TaperPhase(every=timedelta(days=14), contacts=2, window=timedelta(days=3)),
             TaperPhase(every=timedelta(days=28), contacts=1, window=timedelta(days=7))]
    return policy.model_copy(update={"step_down": policy.step_down.model_copy(update={"taper": taper})})


async def start_step_down(h, person_id: int, *, policy: Policy | None = None,
                          stabilization: Stabilization | None = None,
                          step_up_id: str | None = None, wait: bool = True) -> WorkflowHandle:
    transition_id = f"stepdown-{uuid.uuid4()}"
    handle = await h.client.start_workflow(StepDown.run, StepDownInput(
        transition_id=transition_id, person_id=person_id, team_code="crisis-north",
        requested_by_id=h.staff.clinician.id, requested_at=await h.now(),
        monitoring_owner_id=h.staff.care_coordinator.id,
        stabilization=stabilization or Stabilization(confirmed=ALL_CRITERIA),
        contingency=ContingencyPlan(early_warning_signs=["sleeping badly", "stopping medication"],
                                    fast_track_route="Call the duty worker the same day"),
        step_up_id=step_up_id, policy=policy or h.policy), id=transition_id, task_queue=h.task_queue)
    h.started.append(handle)
    if wait:
        await h.settle(lambda: bool(h.rows(Contact, Contact.transition_id == transition_id))
                       or state_stage(h, transition_id) == "tapering")
    return handle


def state_stage(h, transition_id: str) -> str | None:
    from handrail.store.models import Transition

    rows = h.rows(Transition, Transition.id == transition_id)
    return rows[0].stage if rows else None


def contact_row(h, contact_id: str) -> Contact | None:
    rows = h.rows(Contact, Contact.id == contact_id)
    return rows[0] if rows else None


async def status(handle: WorkflowHandle) -> StepDownState:
    return await handle.query(StepDown.status)


async def reach_contact(h, handle: WorkflowHandle, number: int, *,
                        within: timedelta = timedelta(days=40)) -> str:
    """Move time until the taper's contact `number` has started."""
    contact_id = f"{handle.id}.c{number}"
    await h.advance(within, step=timedelta(hours=12), until=lambda: contact_row(h, contact_id) is not None)
    await h.settle(lambda: contact_row(h, contact_id) is not None)
    return contact_id


async def record(h, handle: WorkflowHandle, contact_id: str, outcome: ContactOutcome) -> None:
    """Record the contact's outcome once the taper holds it (the child may write its row a
    moment before the parent knows its handle)."""
    for _ in range(100):
        try:
            await handle.execute_update(StepDown.record_contact, args=[
                OutcomeReport(outcome=outcome), h.staff.care_coordinator])
            break
        except WorkflowUpdateFailedError:
            await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"{contact_id} never became recordable")
    if outcome == ContactOutcome.attended:
        await h.settle(lambda: contact_row(h, contact_id).status == "attended")


async def attend(h, handle: WorkflowHandle, number: int) -> None:
    contact_id = await reach_contact(h, handle, number)
    await record(h, handle, contact_id, ContactOutcome.attended)


def tasks_of(h, transition_id: str, kind: str) -> list[Task]:
    return [t for t in h.rows(Task, Task.transition_id == transition_id) if t.kind == kind]
