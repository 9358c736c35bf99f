"""Recorded histories replay against today's workflow code: a change that would alter the
commands of a running transition fails here and must go behind `workflow.patched`.

Re-record (after a deliberate, patched change) with:
    HANDRAIL_RECORD_HISTORIES=1 .venv/bin/pytest tests/workflows/test_handoff.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from handrail.workflows.contact import Contact
from handrail.workflows.handoff import PostCrisisHandoff
from handrail.workflows.step_down import StepDown
from handrail.workflows.step_up import StepUp

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
TEXTS = {path: path.read_text() for path in HISTORIES}


def test_there_is_a_recorded_history_of_each_workflow():
    names = {path.stem.split("_")[0] for path in HISTORIES}
    assert {"handoff", "contact", "stepup", "stepdown"} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays_without_nondeterminism(path: Path):
    replayer = Replayer(workflows=[PostCrisisHandoff, Contact, StepUp, StepDown],
                        data_converter=pydantic_data_converter)
    history = WorkflowHistory.from_json(path.stem, TEXTS[path])
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
