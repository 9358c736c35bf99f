"""What a step-down is linked to: repeat crisis use after it, for the weekly assurance check."""

from __future__ import annotations

from datetime import timedelta

from handrail.store.assurance import repeat_crisis_after_step_down
from handrail.store.models import AuditEvent, Person, PersonIdentifier, Transition
from handrail.workflows.step_down import StepDown
from tests.workflows.notifications import ed_discharge
from tests.workflows.step_downs import open_tasks, short_taper, start_step_down, status

MRN_SYSTEM = "urn:oid:2.16.840.1.113883.19.5"


def add_person_with_mrn(h, mrn: str) -> int:
    with h.session() as session:
        person = Person(given_name="Alex", family_name="Testperson", phone="+447700900123",
                        consent_to_messages=True)
        session.add(person)
        session.flush()
        session.add(PersonIdentifier(person_id=person.id, system=MRN_SYSTEM, value=mrn))
        session.commit()
        return person.id


async def test_a_crisis_within_90_days_of_a_step_down_is_linked_to_it_and_found_by_assurance(harness):
    h = harness
    handle = await start_step_down(h, add_person_with_mrn(h, "MRN-AFTER-TAPER"),
                                   policy=short_taper(h.policy))
    await h.advance(timedelta(days=3), step=timedelta(hours=12))
    crisis = await h.start(ed_discharge(at=await h.now(), mrn="MRN-AFTER-TAPER"))
    await h.settle(lambda: bool(h.rows(Transition, Transition.id == crisis.id)))
    assert h.rows(Transition, Transition.id == crisis.id)[0].follows_step_down_id == handle.id
    actions = [e.action for e in h.rows(AuditEvent, AuditEvent.transition_id == handle.id)]
    assert "step_down.repeat_crisis" in actions  # on the step-down's own timeline
    # The open step-down was told too: its owner reviews the plan.
    await h.settle(lambda: bool(open_tasks(h, handle.id, "re_presentation_review")))
    assert (await status(handle)).repeat_crisis_ids == [crisis.id]

    now = await h.now()
    with h.session() as session:
        findings = repeat_crisis_after_step_down(session, h.staff.team_id, now - timedelta(days=7),
                                                 now + timedelta(days=1), timedelta(days=90))
    assert [(f["transition_id"], f["detail"]["crisis_transition_id"]) for f in findings] == [
        (handle.id, crisis.id)]
    await handle.terminate("test finished")
    assert StepDown  # the workflow under test


async def test_someone_elses_crisis_is_not_linked_to_the_step_down(harness):
    h = harness
    handle = await start_step_down(h, add_person_with_mrn(h, "MRN-STEPPED-DOWN"),
                                   policy=short_taper(h.policy))
    crisis = await h.start(ed_discharge(at=await h.now() + timedelta(minutes=5), mrn="MRN-OTHER"))
    await h.settle(lambda: bool(h.rows(Transition, Transition.id == crisis.id)))
    assert h.rows(Transition, Transition.id == crisis.id)[0].follows_step_down_id is None
    assert not (await status(handle)).repeat_crisis_ids


async def test_an_early_warning_during_an_open_avoidance_episode_goes_to_the_episode_not_a_step_up(
        harness):
    """The person is on a step-down taper and an admission-avoidance episode opens for them. A
    severe early warning on the taper does not start a step-up beside the episode: the episode
    takes it, and its senior on call is asked at once (a threshold crossed)."""
    from handrail.domain.admission_avoidance import AvoidanceStage
    from handrail.domain.policy import WarningSeverity
    from handrail.domain.step_down import EarlyWarning
    from handrail.workflows.admission_avoidance import AdmissionAvoidance
    from tests.workflows.avoidances import approval, open_episode
    from tests.workflows.step_downs import add_person

    h = harness
    person_id = add_person(h)
    step_down = await start_step_down(h, person_id, policy=short_taper(h.policy))
    episode = await open_episode(h, person_id)
    await episode.execute_update(AdmissionAvoidance.decide, args=[
        approval(h, missed_in_a_row=10), h.staff.clinical_lead])

    state = await step_down.execute_update(StepDown.early_warning, args=[
        EarlyWarning(sign="stopped medication, not sleeping", severity=WarningSeverity.high),
        h.staff.clinician])
    assert state.re_escalation_id is None  # no step-up: the taper goes on
    await h.settle(lambda: bool(open_tasks(h, episode.id, "avoidance_threshold")))
    [threshold] = open_tasks(h, episode.id, "avoidance_threshold")
    assert threshold.role == h.policy.admission_avoidance.threshold_role.value
    assert (await episode.query(AdmissionAvoidance.status)).stage == AvoidanceStage.threshold_crossed
    assert not h.rows(Transition, Transition.person_id == person_id, Transition.kind == "step_up")
    assert "step_down.warning_passed_to_episode" in [
        e.action for e in h.rows(AuditEvent, AuditEvent.transition_id == step_down.id)]
    crossed = [e.detail for e in h.rows(AuditEvent, AuditEvent.transition_id == episode.id)
               if e.action == "admission_avoidance.early_warning"]
    assert crossed == [{"severity": "high", "step_down_id": step_down.id}]
    assert open_tasks(h, step_down.id, "early_warning")  # the taper's owner acts on the plan too
