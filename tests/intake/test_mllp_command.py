"""`handrail mllp` as an operator runs it: listens, answers, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import hl7
from hl7.mllp import open_hl7_connection
from intake_world import fixture_bytes

from handrail.intake.hl7 import normalise_segments
from handrail.store import migrate


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_handrail_mllp_answers_on_its_port_and_stops_on_sigterm(tmp_path):
    migrate.upgrade(f"sqlite:///{tmp_path / 'handrail.db'}")
    port = _free_port()
    env = {**os.environ, "HANDRAIL_DATA_DIR": str(tmp_path), "HANDRAIL_POLICY": "seconds",
           "HANDRAIL_ID_KEY": "cli-test", "HANDRAIL_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    handrail = Path(sys.executable).parent / "handrail"
    process = await asyncio.create_subprocess_exec(
        str(handrail), "mllp", "--port", str(port), "--host", "127.0.0.1",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        for _ in range(150):
            try:
                reader, writer = await open_hl7_connection("127.0.0.1", port)
                break
            except OSError:
                assert process.returncode is None, (await process.stdout.read()).decode()
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("handrail mllp never listened")
        acks = []
        for name in ("garbage.txt", "bad_no_pid3_v251.hl7"):
            writer.writeblock(fixture_bytes(name))
            await writer.drain()
            block = await asyncio.wait_for(reader.readblock(), 10)
            acks.append(str(hl7.parse(normalise_segments(block)).segment("MSA")(1)))
        writer.close()
        assert acks == ["AR", "AE"]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
