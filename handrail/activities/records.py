"""Activities that write the transition's rows in the store. Each is idempotent by its key."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from temporalio import activity

from ..domain.tasks import Role, TaskSpec, TaskStatus
from ..store import records
from ..store.db import session_scope
from ..store.models import Contact, Decision, Person, Task, Transition
from ..store.types import utcnow
from .contracts import (
    CancelOpenTasks,
    ContactRecord,
    DecisionRecord,
    FinishTask,
    HandOverTask,
    PersonDetailsUpdate,
    RecordedHandoff,
    RecordHandoff,
    TransitionFields,
    TransitionUpdate,
)


class RecordActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn
    def record_handoff(self, request: RecordHandoff) -> RecordedHandoff:
        """Steps 1–2: the person, the transition and its owner, in one transaction."""
        inp = request.input
        notification = inp.notification
        policy = inp.policy
        with session_scope(self._engine) as session:
            team = records.team_by_code(session=session, code=inp.team_code) or records.team_by_code(
                session=session, code=policy.default_team
            )
            if team is None:
                # Nothing to assign to: retrying helps once an admin creates the team.
                raise RuntimeError(f"team {inp.team_code!r} does not exist")
            person = records.upsert_person(session=session, details=notification.person)
            step_downs = records.recent_step_downs(
                session=session, person_id=person.id, event_time=notification.event_time,
                window=(policy.step_down.repeat_crisis_window if policy.step_down
                        else policy.handoff.re_presentation_window))
            transition = session.get(Transition, inp.transition_id)
            if transition is None:
                owner = records.pick_staff(session=session, team_id=team.id, role=Role.transition_coordinator)
                clinician = records.pick_staff(session=session, team_id=team.id, role=Role.clinician)
                coordinator = records.pick_staff(session=session, team_id=team.id, role=Role.care_coordinator)
                earlier = records.earlier_presentations(
                    session=session, person_id=person.id, event_time=notification.event_time,
                    window=policy.handoff.re_presentation_window, exclude_id=inp.transition_id,
                )
                transition = Transition(
                    id=inp.transition_id,
                    kind="handoff",
                    stage="recorded",
                    person_id=person.id,
                    team_id=team.id,
                    owner_id=owner.id if owner else None,
                    clinician_id=clinician.id if clinician else None,
                    care_coordinator_id=coordinator.id if coordinator else None,
                    source=notification.source.value,
                    source_system=notification.source_system,
                    encounter_id=notification.encounter_id,
                    event_time=notification.event_time,
                    policy_version=policy.fingerprint,
                    summary=notification.summary.model_dump(mode="json"),
                    re_presentation_of=earlier[0].id if earlier else None,
                    follows_step_down_id=step_downs[0].id if step_downs else None,
                )
                records.add_transition(
                    session=session, transition=transition, at=request.received_at,
                    detail={"source": notification.source.value, "owner_id": transition.owner_id,
                            "re_presentation_of": transition.re_presentation_of})
                for step_down in step_downs:
                    # On the step-down's timeline too, open or closed: repeat crisis use.
                    records.append_event(
                        session=session, key=f"{inp.transition_id}:repeat-crisis:{step_down.id}",
                        at=request.received_at, action="step_down.repeat_crisis",
                        transition_id=step_down.id, person_id=person.id,
                        detail={"crisis_transition_id": inp.transition_id,
                                "event_time": notification.event_time.isoformat()})
            earlier_ids = [t.id for t in records.earlier_presentations(
                session=session, person_id=person.id, event_time=notification.event_time,
                window=policy.handoff.re_presentation_window, exclude_id=inp.transition_id,
            )]
            # A recent step-down is told too (its `re_presented` signal), as an earlier handoff is.
            earlier_ids += [t.id for t in step_downs]
            return RecordedHandoff(
                person_id=person.id,
                team_id=transition.team_id,
                owner_id=transition.owner_id,
                clinician_id=transition.clinician_id,
                care_coordinator_id=transition.care_coordinator_id,
                time_zone=person.time_zone,
                earlier_transition_ids=earlier_ids,
            )

    @activity.defn
    def update_transition(self, update: TransitionUpdate) -> None:
        parsed = TransitionFields.model_validate(update.fields)
        fields = {name: getattr(parsed, name) for name in update.fields}
        with session_scope(self._engine) as session:
            transition = session.get(Transition, update.transition_id)
            if transition is None:
                raise RuntimeError(f"transition {update.transition_id} not recorded yet")
            if fields.get("owner_id") not in (None, transition.owner_id):
                records.reassign_open_tasks(
                    session=session, transition_id=transition.id,
                    from_owner_id=transition.owner_id, to_owner_id=fields["owner_id"],
                )
            for name, value in fields.items():
                setattr(transition, name, value)
            transition.updated_at = utcnow()
            session.add(transition)
            records.append_event(
                session=session, key=update.key, at=update.at, action=update.action,
                transition_id=transition.id, person_id=transition.person_id,
                actor_id=update.actor_id, detail=update.detail,
            )

    @activity.defn
    def record_person_details(self, update: PersonDetailsUpdate) -> None:
        with session_scope(self._engine) as session:
            person = session.get(Person, update.person_id)
            if person is None:
                raise RuntimeError(f"person {update.person_id} missing")
            consent_given = update.consent_to_messages is not None
            if consent_given and (person.consent_to_messages != update.consent_to_messages
                                  or person.consent_recorded_at is None):
                person.consent_to_messages = update.consent_to_messages
                person.consent_recorded_at = update.at
                person.consent_source = f"staff:{update.actor_id}"
                person.opted_out_at = None if update.consent_to_messages else person.opted_out_at
            if update.phone and update.phone != person.phone:
                person.phone = update.phone
                person.phone_usable = True
            if update.time_zone:
                person.time_zone = update.time_zone
            person.updated_at = utcnow()
            session.add(person)
            records.append_event(
                session=session, key=update.key, at=update.at,
                action="details.confirmed" if consent_given else "details.updated",
                transition_id=update.transition_id, person_id=person.id, actor_id=update.actor_id,
                detail={"consent_to_messages": update.consent_to_messages,
                        "phone_changed": bool(update.phone), "time_zone": update.time_zone},
            )

    @activity.defn
    def create_task(self, spec: TaskSpec) -> int:
        with session_scope(self._engine) as session:
            return records.open_task(session=session, spec=spec).id

    @activity.defn
    def finish_task(self, request: FinishTask) -> None:
        with session_scope(self._engine) as session:
            task = records.finish_task(
                session=session, task_id=request.task_id, status=TaskStatus(request.status),
                at=request.at, actor_id=request.actor_id, note=request.note,
                business_status=request.business_status,
            )
            if task is not None:
                records.append_event(
                    session=session, key=f"task:{request.task_id}:{request.status}", at=request.at,
                    action=f"task.{request.status}", transition_id=task.transition_id,
                    actor_id=request.actor_id, detail={"task_id": task.id, "kind": task.kind},
                )

    @activity.defn
    def hand_over_task(self, request: HandOverTask) -> None:
        """Completing the task (API, console) now reaches `workflow_id`; safe to repeat."""
        with session_scope(self._engine) as session:
            task = session.get(Task, request.task_id)
            if task is not None and task.workflow_id != request.workflow_id:
                task.workflow_id = request.workflow_id
                session.add(task)

    @activity.defn
    def cancel_open_tasks(self, request: CancelOpenTasks) -> int:
        with session_scope(self._engine) as session:
            return records.cancel_open_tasks(
                session=session, workflow_id=request.workflow_id, at=request.at,
                business_status=request.business_status,
            )

    @activity.defn
    def record_contact(self, record: ContactRecord) -> None:
        with session_scope(self._engine) as session:
            records.upsert_contact(session=session, contact=Contact(
                id=record.contact_id, transition_id=record.transition_id, sequence=record.sequence,
                purpose=record.purpose, appointment_at=record.appointment_at,
                not_before=record.not_before, due_at=record.due_at, status=record.status,
                outcome=record.outcome, outcome_at=record.outcome_at,
                confirmed_by_person_at=record.confirmed_by_person_at, ladder_step=record.ladder_step,
            ))
            records.append_event(
                session=session, key=record.key, at=record.at, action=f"contact.{record.status}",
                transition_id=record.transition_id, actor_id=record.actor_id,
                detail={"contact_id": record.contact_id, "appointment_at": record.appointment_at.isoformat(),
                        "outcome": record.outcome, "ladder_step": record.ladder_step,
                        "note": record.note or None},
            )

    @activity.defn
    def record_decision(self, record: DecisionRecord) -> None:
        with session_scope(self._engine) as session:
            records.record_decision(session=session, decision=Decision(
                key=record.key, transition_id=record.transition_id, kind=record.kind,
                decision=record.decision, reason=record.reason, decided_by_id=record.decided_by_id,
                decided_at=record.decided_at, detail=record.detail,
            ))
            records.append_event(
                session=session, key=f"{record.key}:event", at=record.decided_at,
                action=f"decision.{record.kind}", transition_id=record.transition_id,
                actor_id=record.decided_by_id,
                detail={"decision": record.decision, "reason": record.reason, **record.detail},
            )
