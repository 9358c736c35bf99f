"""A long-lived command stops when told to, even when its own shutdown hangs (as a Temporal
worker's does when its server went away at the same moment)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from handrail.cli.signals import run_until_signalled

    async def main():
        try:
            print("ready", flush=True)
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if sys.argv[1] == "hangs":
                while True:  # a shutdown that never finishes, deaf to further cancels
                    try:
                        await asyncio.sleep(3600)
                    except asyncio.CancelledError:
                        pass
            print("stopped cleanly", flush=True)
            raise

    run_until_signalled(main(), stop_within=2)
""")


def run_and_terminate(mode: str) -> tuple[int, float, str]:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, mode], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
    return code, time.monotonic() - signalled, proc.stdout.read()


def test_a_clean_shutdown_exits_at_once_with_success() -> None:
    code, took, output = run_and_terminate("clean")
    assert (code, output.strip()) == (0, "stopped cleanly")
    assert took < 2


def test_a_shutdown_that_hangs_is_cut_off_after_its_bound() -> None:
    code, took, output = run_and_terminate("hangs")
    assert code == 143
    assert "stopped cleanly" not in output
    assert 2 <= took < 10
