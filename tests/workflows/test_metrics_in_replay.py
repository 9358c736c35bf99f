"""The pathways' counters are safe in workflow code: replaying a history counts nothing.

A worker that picks up a running transition replays its history first; if that counted the
fallback steps again, every worker restart would inflate them. The SDK drops metrics while
replaying (the e2e test tests/e2e/test_production_settings_e2e.py shows them counted live)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.worker import Replayer

from handrail.workflows.contact import Contact
from handrail.workflows.handoff import PostCrisisHandoff
from handrail.workflows.metrics import ESCALATIONS, FALLBACK_STEPS

HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.parametrize("name", ["contact_ladder_exhausted", "handoff_ladder_disengaged"])
async def test_replaying_a_ladder_that_ran_to_the_end_counts_no_step_and_no_escalation(name: str):
    buffer = MetricBuffer(10_000)
    replayer = Replayer(workflows=[PostCrisisHandoff, Contact], data_converter=pydantic_data_converter,
                        runtime=Runtime(telemetry=TelemetryConfig(metrics=buffer)))
    history = WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
    counted = {update.metric.name for update in buffer.retrieve_updates()}
    assert not counted & {FALLBACK_STEPS, ESCALATIONS}
