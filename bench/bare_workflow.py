"""The yardstick: one workflow that runs one activity, on the same dev server."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def touch(value: int) -> int:
    return value + 1


@workflow.defn
class BareWorkflow:
    @workflow.run
    async def run(self, value: int) -> int:
        return await workflow.execute_activity(touch, value, start_to_close_timeout=timedelta(seconds=30))
