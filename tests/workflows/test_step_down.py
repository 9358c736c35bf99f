"""The step-down taper of DESIGN.md on the time-skipping server: stabilization, the taper and
its adjustments, misses, the fast track, discharge and the check-ins after it."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from temporalio.client import WorkflowFailureError

from handrail.domain.contact import PersonReply
from handrail.domain.handoff import CompleteTask
from handrail.domain.policy import TaperPhase, WarningSeverity
from handrail.domain.step_down import (
    AdjustTaper,
    EarlyWarning,
    ExitPlan,
    Stabilization,
    StepDownOutcome,
    StepDownStage,
)
from handrail.domain.step_up import StepUpDecision, StepUpDecisionKind, StepUpOrigin, Urgency
from handrail.domain.taper import AdjustmentKind
from handrail.store.models import AuditEvent, Decision, OutboxMessage, StepDownPlan, Transition
from handrail.workflows.step_down import StepDown
from handrail.workflows.step_up import StepUp
from tests.workflows.conftest import HISTORIES
from tests.workflows.feedback import answer
from tests.workflows.feedback import questions as feedback_questions
from tests.workflows.step_downs import (
    ALL_CRITERIA,
    add_person,
    attend,
    contact_row,
    open_tasks,
    reach_contact,
    short_taper,
    start_step_down,
    status,
    tasks_of,
)


def plan(h, transition_id: str) -> StepDownPlan:
    return h.rows(StepDownPlan, StepDownPlan.transition_id == transition_id)[0]


def transition(h, transition_id: str) -> Transition:
    return h.rows(Transition, Transition.id == transition_id)[0]


def timeline(h, transition_id: str) -> list[str]:
    return [e.action for e in h.rows(AuditEvent, AuditEvent.transition_id == transition_id)]


def check_ins(h, transition_id: str) -> list[OutboxMessage]:
    return [m for m in h.rows(OutboxMessage, OutboxMessage.workflow_id == transition_id)
            if "checking in" in m.body]


def one_contact(policy):
    """A taper of one contact: for what comes after the taper."""
    step_down = policy.step_down.model_copy(update={"taper": [
        TaperPhase(every=timedelta(days=7), contacts=1, window=timedelta(days=2))]})
    return policy.model_copy(update={"step_down": step_down})


async def reply(h, handle, text: str) -> None:
    await handle.signal(StepDown.person_reply, PersonReply(message_id=None, text=text,
                                                           received_at=await h.now()))


async def finish_taper_and_discharge(h, handle, contacts: int) -> None:
    for number in range(1, contacts + 1):
        await attend(h, handle, number)
    await h.advance(timedelta(days=1), step=timedelta(hours=1),
                    until=lambda: bool(open_tasks(h, handle.id, "exit_plan")))
    await h.settle(lambda: bool(open_tasks(h, handle.id, "exit_plan")))
    await handle.execute_update(StepDown.exit_plan, args=[
        ExitPlan(signposting=["Recovery college courses", "Peer support group on Tuesdays"]),
        h.staff.care_coordinator])
    await h.settle(lambda: plan(h, handle.id).discharged_at is not None)


async def record_run(h, workflow_id: str, run_id: str | None, name: str) -> None:
    """The first run too (it ends by continuing as new): both kinds of run are replayed."""
    if not os.environ.get("HANDRAIL_RECORD_HISTORIES"):
        return
    history = await h.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json())


async def reach_check_in(h, handle, number: int) -> None:
    await h.advance(timedelta(days=45), step=timedelta(hours=12),
                    until=lambda: len(check_ins(h, handle.id)) >= number)
    await h.settle(lambda: len(check_ins(h, handle.id)) >= number)


async def test_a_whole_taper_runs_on_new_runs_to_discharge_check_ins_and_closes_completed(harness):
    h = harness
    handle = await start_step_down(h, add_person(h), policy=short_taper(h.policy))
    row = transition(h, handle.id)
    assert (row.kind, row.owner_id) == ("step_down", h.staff.care_coordinator.id)
    assert len(plan(h, handle.id).taper_dates) == 5

    await finish_taper_and_discharge(h, handle, 5)
    assert all(contact_row(h, f"{handle.id}.c{n}").status == "attended" for n in range(1, 6))
    # Weekly, weekly, fortnightly, fortnightly, monthly: the policy's dates, kept.
    dates = [contact_row(h, f"{handle.id}.c{n}").appointment_at for n in range(1, 6)]
    assert [(b - a).days for a, b in zip(dates, dates[1:], strict=False)] == [7, 14, 14, 28]
    assert plan(h, handle.id).exit_plan["signposting"][0] == "Recovery college courses"

    for number in (1, 2):
        await reach_check_in(h, handle, number)
        await reply(h, handle, "5")
    final = await answer(h, handle, "4")  # the closure question, after the check-ins
    assert final.outcome == StepDownOutcome.completed and final.runs == 2  # continued as new
    assert (transition(h, handle.id).status, transition(h, handle.id).outcome) == ("closed", "completed")
    assert plan(h, handle.id).outcome == "completed"
    assert not tasks_of(h, handle.id, "check_in_call")
    assert "step_down.discharged" in timeline(h, handle.id)
    assert timeline(h, handle.id).count("step_down.check_in_answered") == 2
    discharged = plan(h, handle.id).discharged_at
    sent = [m.created_at for m in check_ins(h, handle.id)]
    assert len(sent) == 2 and discharged < sent[0] < sent[1]
    # The closure question once, at the real end: after the check-ins, from the last run.
    [question] = feedback_questions(h, handle.id)
    assert question.created_at > sent[1] and final.feedback_rating == 4
    await h.record_history(handle.id, "stepdown_taper_completed")  # the last run
    await record_run(h, handle.id, handle.first_execution_run_id, "stepdown_taper_first_run")


async def test_stabilization_is_refused_naming_what_is_missing_and_accepted_with_an_override(harness):
    h = harness
    person_id = add_person(h)
    refused = await start_step_down(h, person_id, wait=False, stabilization=Stabilization(
        confirmed=["symptom_control", "adherence"]))
    with pytest.raises(WorkflowFailureError) as caught:
        await refused.result()
    assert "functional_markers, safety_plan_reliability" in str(caught.value.cause)
    assert not h.rows(Transition, Transition.id == refused.id)  # nothing recorded

    accepted = await start_step_down(h, person_id, stabilization=Stabilization(
        confirmed=["symptom_control", "adherence", "functional_markers"],
        overrides={"safety_plan_reliability": "Plan rewritten this week; reviewed at first contact"}))
    await h.settle(lambda: transition(h, accepted.id).stage == "tapering")
    assert plan(h, accepted.id).stabilization["overrides"] == {
        "safety_plan_reliability": "Plan rewritten this week; reviewed at first contact"}


async def test_the_taper_is_adjusted_mid_way_slower_and_paused_and_each_change_is_logged(harness):
    h = harness
    handle = await start_step_down(h, add_person(h), policy=short_taper(h.policy))
    await attend(h, handle, 1)
    state = await handle.execute_update(StepDown.adjust_taper, args=[
        AdjustTaper(kind=AdjustmentKind.slower, reason="Agreed with Robin: weekly for longer"),
        h.staff.clinician])
    assert len(state.remaining) == 5  # one more weekly contact
    await attend(h, handle, 2)
    await attend(h, handle, 3)
    dates = [contact_row(h, f"{handle.id}.c{n}").appointment_at for n in (1, 2, 3)]
    assert [(b - a).days for a, b in zip(dates, dates[1:], strict=False)] == [7, 7]  # still weekly

    until = await h.now() + timedelta(days=21)
    state = await handle.execute_update(StepDown.adjust_taper, args=[
        AdjustTaper(kind=AdjustmentKind.pause, reason="Away with family", until=until),
        h.staff.clinician])
    await h.settle(lambda: transition(h, handle.id).stage == "paused")
    contact_id = await reach_contact(h, handle, 4, within=timedelta(days=60))
    # The next contact counts its fortnight from the pause's end.
    assert contact_row(h, contact_id).appointment_at == until + timedelta(days=14)
    decisions = h.rows(Decision, Decision.transition_id == handle.id, Decision.kind == "taper_adjustment")
    assert [d.decision for d in decisions] == ["slower", "pause"]
    assert decisions[0].reason == "Agreed with Robin: weekly for longer"
    assert plan(h, handle.id).adjustments == 2
    state = await status(handle)
    assert [a.kind for a in state.adjustments] == [AdjustmentKind.slower, AdjustmentKind.pause]


async def test_two_missed_contacts_in_a_row_raise_a_review_for_the_owner(harness):
    h = harness
    handle = await start_step_down(h, add_person(h), policy=short_taper(h.policy))
    for number in (1, 2):
        contact_id = await reach_contact(h, handle, number)
        # Nobody records it: the window passes and the ladder chases to its end.
        await h.advance(timedelta(days=10), step=timedelta(hours=6),
                        until=lambda cid=contact_id: contact_row(h, cid).status == "ladder_exhausted")
        await h.settle(lambda cid=contact_id: contact_row(h, cid).status == "ladder_exhausted")
        if number == 1:
            assert not tasks_of(h, handle.id, "step_down_review")
    await h.settle(lambda: bool(tasks_of(h, handle.id, "step_down_review")))
    [review] = tasks_of(h, handle.id, "step_down_review")
    assert review.owner_id == h.staff.care_coordinator.id and review.priority == "urgent"
    state = await status(handle)
    assert state.consecutive_misses == 2 and state.contacts_missed == 2
    await handle.execute_update(StepDown.complete_task, args=[
        CompleteTask(task_id=review.id, note="Spoke to Robin; keeping the plan"), h.staff.care_coordinator])


async def test_an_early_warning_below_the_threshold_is_an_urgent_task_and_the_taper_goes_on(harness):
    h = harness
    handle = await start_step_down(h, add_person(h), policy=short_taper(h.policy))
    state = await handle.execute_update(StepDown.early_warning, args=[
        EarlyWarning(sign="sleeping badly", severity=WarningSeverity.moderate), h.staff.clinician])
    assert state.re_escalation_id is None and state.stage == StepDownStage.tapering
    [task] = tasks_of(h, handle.id, "early_warning")
    assert (task.owner_id, task.priority) == (h.staff.care_coordinator.id, "urgent")
    assert not h.rows(Transition, Transition.kind == "step_up")
    await attend(h, handle, 1)


async def test_an_early_warning_at_the_threshold_starts_an_urgent_step_up_and_pauses_the_taper(harness):
    h = harness
    handle = await start_step_down(h, add_person(h), policy=short_taper(h.policy))
    contact_id = await reach_contact(h, handle, 1)
    state = await handle.execute_update(StepDown.early_warning, args=[
        EarlyWarning(sign="stopped medication, not sleeping", severity=WarningSeverity.high),
        h.staff.clinician])
    step_up_id = state.re_escalation_id
    assert step_up_id is not None and step_up_id.startswith("stepup-")
    await h.settle(lambda: bool(h.rows(Transition, Transition.id == step_up_id))
                   and bool(open_tasks(h, step_up_id, "step_up_huddle")))
    step_up = transition(h, step_up_id)
    assert step_up.follows_step_down_id == handle.id  # linked both ways
    assert plan(h, handle.id).re_escalation_id == step_up_id
    [huddle] = open_tasks(h, step_up_id, "step_up_huddle")
    assert huddle.priority == "urgent"
    up = h.client.get_workflow_handle(step_up_id)
    up_state = await up.query(StepUp.status)
    assert (up_state.origin, up_state.urgency) == (StepUpOrigin.early_warning, Urgency.urgent)
    huddle_wait = up_state.decision_due - up_state.requested_at  # the urgent deadline
    assert abs(huddle_wait - h.policy.step_up.decision_due_urgent) < timedelta(minutes=1)
    await h.settle(lambda: contact_row(h, contact_id).status == "cancelled")  # the taper paused
    await h.settle(lambda: transition(h, handle.id).stage == "awaiting_re_escalation")
    assert tasks_of(h, handle.id, "early_warning")[0].priority == "urgent"

    # The huddle approves: the step-down ends re-escalated.
    await up.execute_update(StepUp.decide, args=[StepUpDecision(
        decision=StepUpDecisionKind.approve, reason="Relapse signature", lead_id=h.staff.clinician.id),
        h.staff.supervisor])
    await h.advance(timedelta(hours=3), step=timedelta(minutes=30),
                    until=lambda: transition(h, handle.id).status == "closed")
    final = await answer(h, handle, "4")
    assert final.outcome == StepDownOutcome.re_escalated and final.re_escalation_ids == [step_up_id]
    assert "step_down.re_escalated" in timeline(h, handle.id)
    await up.terminate("test finished")


async def test_post_discharge_check_ins_a_good_reply_is_recorded_and_a_worrying_one_is_a_call(harness):
    h = harness
    handle = await start_step_down(h, add_person(h), policy=one_contact(h.policy))
    await finish_taper_and_discharge(h, handle, 1)
    await reach_check_in(h, handle, 1)
    await reply(h, handle, "4")
    await h.settle(lambda: "step_down.check_in_answered" in timeline(h, handle.id))
    assert not tasks_of(h, handle.id, "check_in_call")
    await reach_check_in(h, handle, 2)
    await reply(h, handle, "3")
    final = await answer(h, handle, "4")
    [call] = tasks_of(h, handle.id, "check_in_call")
    assert call.title.startswith("The check-in answer is worrying")
    assert final.outcome == StepDownOutcome.completed


async def test_a_low_check_in_rating_is_an_early_warning_sign_that_takes_the_fast_track(harness):
    h = harness
    handle = await start_step_down(h, add_person(h), policy=one_contact(h.policy))
    await finish_taper_and_discharge(h, handle, 1)
    await reach_check_in(h, handle, 1)
    await reply(h, handle, "1")
    await h.settle(lambda: bool(tasks_of(h, handle.id, "early_warning")))
    await h.settle(lambda: bool(h.rows(Transition, Transition.follows_step_down_id == handle.id)))
    state = await status(handle)
    assert state.warnings[0].source == "reply" and state.re_escalation_id is not None
    assert ALL_CRITERIA  # the builders' full stabilization stays in use
