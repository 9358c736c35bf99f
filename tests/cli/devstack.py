"""Run `handrail dev` as a user would, on free ports with its own data dir, and look inside it.

Shared by the supervisor tests (tests/cli) and the end-to-end tests (tests/e2e).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")

CHILD_MARKERS = {
    "temporal": ("server", "start-dev"),
    "worker": ("handrail.cli.main", "worker"),
    "api": ("handrail.cli.main", "api"),
    "mllp": ("handrail.cli.main", "mllp"),
}


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for(check: Callable[[], T], *, within: float, what: str, every: float = 0.5) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `within` s."""
    deadline = time.monotonic() + within
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as err:  # noqa: BLE001 - keep polling, report the last one
            last_error = err
        time.sleep(every)
    raise AssertionError(f"timed out after {within:.0f}s waiting for {what} (last error: {last_error!r})")


# What a transition's workflow may still write after closing it: the person's feedback question
# (sent, or skipped without consent) and their answer.
AFTER_CLOSING = ("outreach.", "feedback.")


def closed_last(timeline: list[str]) -> bool:
    """Whether the transition was closed and nothing but the closing question followed."""
    if "transition.closed" not in timeline:
        return False
    after = timeline[timeline.index("transition.closed") + 1:]
    return all(action.startswith(AFTER_CLOSING) for action in after)


def _proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may hold spaces: split after its closing one.
    return [raw[: raw.index("(")].strip(), "comm", *raw[raw.rindex(")") + 2 :].split()]


def process_running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    stat = _proc_stat(pid)
    return stat is not None and stat[2] != "Z"


def process_start_ticks(pid: int) -> int:
    stat = _proc_stat(pid)
    assert stat is not None, f"process {pid} is gone"
    return int(stat[21])


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None and stat[3] == str(pid) and stat[2] != "Z":
                found.append(int(entry.name))
    return found


def descendants_of(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        for child in children_of(queue.pop()):
            found.append(child)
            queue.append(child)
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except FileNotFoundError:
        return []


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class DevStackProcess:
    """`handrail dev` in a subprocess on free ports; `stop()` sends Ctrl-C (SIGINT)."""

    def __init__(
        self, data_dir: Path, *, policy: str = "seconds", demo_notifications: bool = True,
        extra_args: tuple[str, ...] = (), headless: bool = True,
    ):
        self.data_dir = data_dir
        self.temporal_port, self.ui_port, self.api_port = free_ports(3)
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.temporal_address = f"127.0.0.1:{self.temporal_port}"
        self.output_path = data_dir / "dev-output.txt"
        self.argv = [
            sys.executable, "-m", "handrail.cli.main", "dev",
            "--data-dir", str(data_dir),
            "--temporal-port", str(self.temporal_port),
            "--ui-port", str(self.ui_port),
            "--api-port", str(self.api_port),
            "--policy", policy,
        ]
        if headless:  # no Temporal UI: one server less to start on two cores
            self.argv.append("--headless")
        if not demo_notifications:
            self.argv.append("--no-demo-notifications")
        self.argv += extra_args
        # Only what the test chooses: no HANDRAIL_* from the developer's shell.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HANDRAIL_")}
        self.proc: subprocess.Popen | None = None
        self.seen_pids: set[int] = set()

    def start(self) -> DevStackProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_path, "wb") as output:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdout=output, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        return self

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def log(self, name: str) -> str:
        path = self.data_dir / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def diagnostics(self) -> str:
        parts = [f"--- handrail dev output\n{self.output()[-3000:]}"]
        for name in ("dev", "temporal", "worker", "api"):
            parts.append(f"--- logs/{name}.log (tail)\n{self.log(name)[-2500:]}")
        return "\n".join(parts)

    def wait_ready(self, within: float = 120.0) -> None:
        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, (
                f"handrail dev exited with {self.proc.returncode}\n{self.diagnostics()}"
            )
            # As a user would: the stack says it is running, and the API says it is ready.
            return (
                "Handrail is running" in self.output()
                and httpx.get(f"{self.api_url}/readyz", timeout=3).status_code == 200
            )

        try:
            wait_for(ready, within=within, what="'Handrail is running' and GET /readyz 200")
        except AssertionError as err:
            raise AssertionError(f"{err}\n{self.diagnostics()}") from None

    def children(self) -> dict[str, int]:
        """The supervised children by name (temporal, worker, api) and their pids."""
        assert self.proc is not None
        found = {}
        for pid in children_of(self.proc.pid):
            args = cmdline(pid)
            for name, markers in CHILD_MARKERS.items():
                if all(marker in args for marker in markers):
                    found[name] = pid
        self.seen_pids.update(found.values())
        return found

    def wait_child(self, name: str, *, other_than: int | None = None, within: float = 60.0) -> int:
        def present() -> int | None:
            pid = self.children().get(name)
            return pid if pid is not None and pid != other_than else None

        return wait_for(present, within=within, what=f"a running {name} (not pid {other_than})")

    def logins(self) -> dict[str, str]:
        """role -> token of the first demo login of that role on crisis-north."""
        tokens: dict[str, str] = {}
        for line in (self.data_dir / "demo-logins.txt").read_text().splitlines():
            parts = line.split()
            if len(parts) == 4 and not line.startswith("#") and parts[1] == "crisis-north":
                tokens.setdefault(parts[0], parts[3])
        return tokens

    def console_logins(self) -> tuple[dict[str, list[str]], str]:
        """role -> e-mails of the demo logins of that role (crisis-north first, in the file's
        order), and the console password they share (its own comment line in the file)."""
        emails: dict[str, list[str]] = {}
        password = ""
        lines = (self.data_dir / "demo-logins.txt").read_text().splitlines()
        for line in sorted(lines, key=lambda text: "crisis-north" not in text):
            parts = line.split()
            if line.startswith("# console password"):
                password = parts[-1]
            elif len(parts) == 4 and not line.startswith("#"):
                emails.setdefault(parts[0], []).append(parts[2])
        return emails, password

    def stop(self, within: float = 60.0) -> int:
        """Ctrl-C, as a user would; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.children()
            self.seen_pids.update(descendants_of(self.proc.pid))
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=within)
            except subprocess.TimeoutExpired:
                self.kill_everything()
                raise
        return self.proc.returncode

    def kill_everything(self) -> None:
        """Last resort in teardown, so a failed test leaves no servers behind."""
        pids = set(self.seen_pids)
        if self.proc is not None:
            pids.update(descendants_of(self.proc.pid))
            pids.add(self.proc.pid)
        for pid in pids:
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


@contextmanager
def running_stack(data_dir: Path, **options) -> Iterator[DevStackProcess]:
    """`handrail dev` started on `data_dir` and ready; stopped, and anything left killed, after."""
    dev = DevStackProcess(data_dir, **options).start()
    try:
        dev.wait_ready()
        yield dev
    finally:
        try:
            dev.stop()
        finally:
            dev.kill_everything()
