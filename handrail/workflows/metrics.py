"""Counters the pathways keep through the Temporal SDK's metric meter (exported by the worker).

Safe in workflow code: a metric is no command, so it never changes a workflow's history, and
the SDK drops metrics while a workflow is being replayed. Labels are bounded enums, never ids.
"""

from __future__ import annotations

from temporalio import workflow

FALLBACK_STEPS = "handrail_fallback_steps_total"
ESCALATIONS = "handrail_escalations_total"


def fallback_step_taken(action: str) -> None:
    workflow.metric_meter().create_counter(
        FALLBACK_STEPS, "Steps of a fallback ladder taken after a missed contact, by action"
    ).add(1, {"action": action})


def escalated(reason: str) -> None:
    workflow.metric_meter().create_counter(
        ESCALATIONS, "Escalations to a supervisor, by what was not done in time"
    ).add(1, {"reason": reason})
