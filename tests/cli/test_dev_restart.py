"""Stopping and starting `handrail dev` again: SIGTERM stops everything, state survives a
restart without a second round of demo data, a busy port is refused up front, and a supervisor
killed outright takes its children with it."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import httpx
import pytest
from devstack import DevStackProcess, free_ports, process_running, wait_for

pytestmark = pytest.mark.e2e


def transitions(stack: DevStackProcess, token: str) -> list[dict]:
    # The demo discharges (the demo's step-up, asked for a moment later, is one more transition).
    response = httpx.get(f"{stack.api_url}/api/transitions?kind=handoff",
                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def test_restart_keeps_state_and_seeds_nothing_twice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = DevStackProcess(data).start()
    try:
        first.wait_ready()
        token = first.logins()["transition_coordinator"]
        demo = wait_for(lambda: len(transitions(first, token)) == 3 and transitions(first, token),
                        within=30, what="the three demo transitions")
        children = first.children()
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(timeout=60) == 0
        assert [pid for pid in children.values() if process_running(pid)] == []
    finally:
        first.kill_everything()

    again = DevStackProcess(data).start()
    try:
        again.wait_ready()
        # The same logins still work; none are printed or added; no new demo notifications.
        assert "Demo logins (shown once" not in again.output()
        assert again.logins()["transition_coordinator"] == token
        assert {t["id"] for t in transitions(again, token)} == {t["id"] for t in demo}
        assert "posted 3 synthetic demo notifications" not in again.output()
    finally:
        again.stop()
        again.kill_everything()


def test_a_busy_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    stack = DevStackProcess(tmp_path / "data")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", stack.api_port))
        squatter.listen()
        stack.start()
        try:
            assert stack.proc.wait(timeout=30) == 1
        finally:
            stack.kill_everything()
    assert f"--api-port {stack.api_port}" in stack.output()
    assert not (tmp_path / "data" / "temporal.db").exists()


# A synthetic discharge from a crisis stabilization unit (ADT^A03, HL7 2.5.1), as an EHR sends
# it over MLLP.
A03 = "\r".join([
    "MSH|^~\\&|EHR|DEVTEST-CSU|HANDRAIL|CMHT|20261120163000+0000||ADT^A03^ADT_A03|DEV-A03-1|P|2.5.1",
    "EVN|A03|20261120163000+0000",
    "PID|1||DEV0001^^^DEVTEST-CSU^MR||Sample^Charlie||19920303|U|||||^ORN^CP^^^^^^^^^+447700900777",
    "PV1|1|E|CSU^ROOM1^1^DEVTEST-CSU||||||||||||||||DEV-VISIT-1^^^DEVTEST-CSU^VN"
    "|||||||||||||||||01||||||||20261120082500+0000|20261120162000+0000",
]) + "\r"


def send_mllp(port: int, message: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.sendall(b"\x0b" + message.encode() + b"\x1c\r")
        answer = b""
        while not answer.endswith(b"\x1c\r"):
            chunk = connection.recv(4096)
            assert chunk, f"connection closed after {answer!r}"
            answer += chunk
    return answer.strip(b"\x0b\x1c\r").decode()


def test_mllp_child_starts_handoffs_and_nothing_outlives_a_killed_supervisor(tmp_path: Path) -> None:
    (mllp_port,) = free_ports(1)
    stack = DevStackProcess(
        tmp_path / "data", demo_notifications=False, extra_args=("--mllp-port", str(mllp_port))
    ).start()
    try:
        stack.wait_ready()
        assert f"127.0.0.1:{mllp_port}" in stack.output()
        children = wait_for(lambda: len(stack.children()) == 4 and stack.children(), within=20,
                            what="temporal, worker, api and mllp children")
        assert set(children) == {"temporal", "worker", "api", "mllp"}

        ack = wait_for(lambda: send_mllp(mllp_port, A03), within=20, what="an ACK over MLLP")
        msa = next(segment for segment in ack.split("\r") if segment.startswith("MSA|"))
        assert msa.startswith("MSA|AA|DEV-A03-1"), ack
        token = stack.logins()["transition_coordinator"]
        listed = wait_for(lambda: transitions(stack, token), within=30, what="the handoff from HL7")
        assert [(t["kind"], t["source"], t["team"]) for t in listed] == [
            ("handoff", "crisis_stabilization", "crisis-north")
        ]

        os.kill(stack.proc.pid, signal.SIGKILL)
        survivors = lambda: {name: pid for name, pid in children.items() if process_running(pid)}  # noqa: E731
        try:
            wait_for(lambda: not survivors(), within=40,
                     what=f"the children {children} to exit after the supervisor was killed")
        except AssertionError as err:
            raise AssertionError(f"{err}; still running: {survivors()}") from None
    finally:
        stack.kill_everything()
