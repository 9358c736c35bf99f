"""Which tasks a list may complete, and which only their pathway's action answers."""

from handrail.domain.tasks import TaskKind, answered_by_action


def test_decisions_are_answered_by_their_action_not_from_a_list() -> None:
    assert answered_by_action(TaskKind.step_up_huddle, "stepup-1")
    assert answered_by_action(TaskKind.step_up_review, "stepup-1")
    assert answered_by_action(TaskKind.avoidance_decision, "avoid-1")


def test_the_ladders_supervisor_task_is_the_handoffs_decision_but_elsewhere_acknowledged() -> None:
    assert answered_by_action(TaskKind.supervisor_decision, "handoff-1")
    assert not answered_by_action(TaskKind.supervisor_decision, "stepup-1")


def test_ordinary_tasks_are_completed_from_the_list() -> None:
    assert not answered_by_action(TaskKind.outreach_call, "handoff-1")
    assert not answered_by_action(TaskKind.medication_reconciliation, "handoff-1")


def test_the_step_downs_exit_plan_is_answered_by_its_action() -> None:
    assert answered_by_action(TaskKind.exit_plan, "stepdown-1")
