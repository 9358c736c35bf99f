"""The shared fixtures' promise about PostgreSQL: skip when it is down, but never silently in CI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
A_POSTGRES_TEST = (
    "tests/store/test_store_demo.py::test_demo_logins_text_lists_every_new_login_once[postgres]"
)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("in_ci", [False, True], ids=["local", "ci"])
def test_unreachable_postgres_skips_locally_and_fails_in_ci(in_ci):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["HANDRAIL_TEST_PG_ADMIN_URL"] = (
        f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/postgres"
    )
    if in_ci:
        env["CI"] = "1"

    run = subprocess.run(
        [sys.executable, "-m", "pytest", A_POSTGRES_TEST, "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )

    assert "PostgreSQL unreachable" in run.stdout
    if in_ci:
        assert run.returncode != 0 and "CI is set" in run.stdout
    else:
        assert run.returncode == 0 and "1 skipped" in run.stdout
