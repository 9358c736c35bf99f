"""Builders for the admission-avoidance workflow tests: a person, a carer, an episode."""

from __future__ import annotations

import uuid

from temporalio.client import WorkflowHandle

from handrail.domain.admission_avoidance import (
    AdmissionThresholds,
    AvoidanceDecision,
    AvoidanceDecisionKind,
    AvoidanceInput,
    CarerDetails,
    Dissent,
)
from handrail.store.models import OutboxMessage, OutreachAttempt, Person
from handrail.workflows.admission_avoidance import AdmissionAvoidance
from tests.workflows.step_ups import open_tasks

CARER_PHONE = "+447700900654"


def add_person(h, *, consent: bool = True) -> int:
    with h.session() as session:
        person = Person(given_name="Sam", family_name="Athomeperson", phone="+447700900432",
                        consent_to_messages=consent)
        session.add(person)
        session.commit()
        return person.id


async def open_episode(h, person_id: int) -> WorkflowHandle:
    transition_id = f"avoid-{uuid.uuid4()}"
    handle = await h.client.start_workflow(AdmissionAvoidance.run, AvoidanceInput(
        transition_id=transition_id, person_id=person_id, team_code="crisis-north",
        reason="In crisis; could be admitted, but family support at home and engaging",
        requested_by_id=h.staff.clinician.id, requested_at=await h.now(), policy=h.policy),
        id=transition_id, task_queue=h.task_queue)
    h.started.append(handle)
    await h.settle(lambda: bool(open_tasks(h, transition_id, "avoidance_decision")))
    return handle


def approval(h, *, missed_in_a_row: int = 2, dissent: list[Dissent] | None = None) -> AvoidanceDecision:
    return AvoidanceDecision(
        decision=AvoidanceDecisionKind.approve,
        rationale="Safe at home with daily visits; partner present in the evenings",
        thresholds=AdmissionThresholds(risk_rating_at_or_above=7,
                                       missed_contacts_in_a_row=missed_in_a_row),
        dissent=dissent or [], lead_id=h.staff.clinician.id)


def carer(consent: bool) -> CarerDetails:
    return CarerDetails(name="Alex Carer", phone=CARER_PHONE, relationship="partner",
                        consent=consent, consent_source="verbal, at the assessment")


def to_carer(h) -> list[OutboxMessage]:
    return h.rows(OutboxMessage, OutboxMessage.to == CARER_PHONE)


def carer_attempts(h, transition_id: str) -> list[tuple[str, str]]:
    attempts = h.rows(OutreachAttempt, OutreachAttempt.transition_id == transition_id)
    return [(a.step, a.status) for a in attempts if a.step.startswith("carer-")]
