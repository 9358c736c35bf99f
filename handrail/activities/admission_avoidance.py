"""Activities of admission avoidance and of the people around the person: the episode's rows,
the named carer and their consent. (The person's feedback at closure: activities/feedback.py.)"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio import activity

from ..domain.tasks import Role
from ..store import records
from ..store.db import session_scope
from ..store.models import AvoidanceEpisode, Carer, Transition
from ..store.types import utcnow
from .avoidance_contracts import (
    AvoidanceEpisodeUpdate,
    CarerRecord,
    RecordAvoidance,
    RecordedAvoidance,
)


class AvoidanceActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn
    def record_avoidance(self, request: RecordAvoidance) -> RecordedAvoidance:
        inp = request.input
        with session_scope(self._engine) as session:
            team, person = records.team_and_person(session=session, team_code=inp.team_code,
                                                   person_id=inp.person_id)
            transition = session.get(Transition, inp.transition_id)
            if transition is None:
                owner_id = inp.requested_by_id
                if owner_id is None:
                    staff = records.pick_staff(session=session, team_id=team.id, role=Role.clinician.value)
                    owner_id = staff.id if staff else None
                transition = Transition(
                    id=inp.transition_id, kind="admission_avoidance", stage="recorded",
                    person_id=person.id, team_id=team.id, owner_id=owner_id, clinician_id=owner_id,
                    event_time=inp.requested_at, policy_version=inp.policy.fingerprint,
                    source="clinician", summary={"reason": inp.reason, "proposed_thresholds": (
                        inp.proposed_thresholds.model_dump(mode="json")
                        if inp.proposed_thresholds else None)})
                records.add_transition(session=session, transition=transition, at=inp.requested_at,
                                       actor_id=inp.requested_by_id)
                session.add(AvoidanceEpisode(
                    transition_id=transition.id, team_id=team.id, person_id=person.id,
                    reason=inp.reason, requested_by_id=inp.requested_by_id,
                    requested_at=inp.requested_at))
            return RecordedAvoidance(person_id=person.id, team_id=team.id,
                                     owner_id=transition.owner_id, time_zone=person.time_zone)

    @activity.defn
    def update_avoidance_episode(self, update: AvoidanceEpisodeUpdate) -> None:
        with session_scope(self._engine) as session:
            row = session.get(AvoidanceEpisode, update.transition_id)
            if row is None:
                raise RuntimeError(f"episode {update.transition_id} not recorded yet")
            for name, value in update.fields.model_dump(exclude_none=True).items():
                setattr(row, name, value)
            session.add(row)

    @activity.defn
    def record_carer(self, request: CarerRecord) -> bool:
        """The person's named carer and their consent (or its withdrawal), with time and source.
        True when updates may now go to the carer."""
        with session_scope(self._engine) as session:
            details = request.details
            if details is None:  # a withdrawal: every later update is refused at send time
                records.withdraw_carer_consent(
                    session=session, person_id=request.person_id, at=request.at, key=request.key,
                    transition_id=request.transition_id, actor_id=request.actor_id,
                    source=request.source)
                return False
            carer = session.exec(select(Carer).where(Carer.person_id == request.person_id)).first()
            carer = carer or Carer(person_id=request.person_id, name=details.name,
                                   phone=details.phone, relationship=details.relationship)
            carer.name, carer.phone, carer.relationship = (details.name, details.phone,
                                                           details.relationship)
            carer.consent_given = details.consent
            carer.consent_recorded_at = request.at
            carer.consent_source = details.consent_source
            carer.consent_recorded_by_id = request.actor_id
            carer.consent_withdrawn_at = None if details.consent else request.at
            carer.updated_at = utcnow()
            session.add(carer)
            # The audit trail says who and how, never the carer's number.
            action, detail = "carer.recorded", {"relationship": details.relationship,
                                                "consent": details.consent,
                                                "consent_source": details.consent_source}
            records.append_event(session=session, key=request.key, at=request.at, action=action,
                                 transition_id=request.transition_id, person_id=request.person_id,
                                 actor_id=request.actor_id, detail=detail)
            return bool(carer and carer.consent_given and carer.consent_withdrawn_at is None)
