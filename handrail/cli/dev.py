"""`handrail dev`: the embedded stack in one command, and the supervisor that keeps it up.

Children (each in its own process group, logs in <data_dir>/logs/): the Temporal dev server,
the worker and the API. A child that dies is restarted with backoff. When the dev server dies,
the worker is stopped and started again only once the server is healthy: a worker that stays
up through a dev-server restart has been seen to stop polling (NOTES.md). A watchdog restarts
the worker when the task queue has had no workflow pollers for a while although it is alive.
"""

from __future__ import annotations

import asyncio
import fcntl
import importlib.util
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx

from ..config import Settings
from .demo import LOGINS_FILE, post_demo_notifications, prepare_store
from .processes import Child, temporal_binary

log = logging.getLogger("handrail.dev")

HEALTH_TIMEOUT = 90.0  # seconds for a child to answer after it starts


@dataclass
class DevOptions:
    settings: Settings
    temporal_port: int = 7233
    ui_port: int = 8233
    api_port: int = 8000
    api_host: str = "127.0.0.1"
    headless: bool = False
    demo_notifications: bool = True
    mllp_port: int | None = None  # also run the HL7 v2 MLLP listener on this port
    # The worker is restarted when its task queue has had no workflow pollers for this long.
    watchdog_after: float = 15.0


class DevStack:
    def __init__(self, options: DevOptions) -> None:
        self.options = options
        self.settings = options.settings
        self.data_dir = self.settings.data_dir.resolve()
        self.logs_dir = self.data_dir / "logs"
        self.address = f"127.0.0.1:{options.temporal_port}"
        self.api_url = f"http://{_connectable(options.api_host)}:{options.api_port}"
        # What people open: `localhost` for both, so the Temporal UI and the console are the
        # same site and the UI's codec calls may carry the console's session cookie.
        self.public_api_url = f"http://{_public_host(options.api_host)}:{options.api_port}"
        self.ui_url = f"http://localhost:{options.ui_port}"
        self.hurry = asyncio.Event()
        self._client = None
        self._last_pollers_seen = 0.0
        self._temporal_unhealthy_since: float | None = None
        self._stopping: asyncio.Task | None = None  # a worker being stopped during a recovery
        self.policy_version = self.settings.load_policy().fingerprint
        env = self._child_env()
        self.temporal = Child("temporal", self._temporal_argv(), env, self.logs_dir / "temporal.log")
        handrail = [sys.executable, "-m", "handrail.cli.main"]
        self.worker = Child(
            "worker", [*handrail, "worker"], env, self.logs_dir / "worker.log", stop_timeout=20.0
        )
        self.api = Child(
            "api",
            [*handrail, "api", "--host", options.api_host, "--port", str(options.api_port)],
            env,
            self.logs_dir / "api.log",
        )
        # Services that are restarted on their own when they die (the worker also has rules).
        self.services = [self.worker, self.api]
        self.mllp: Child | None = None
        if options.mllp_port:
            self.mllp = Child(
                "mllp",
                [*handrail, "mllp", "--host", "127.0.0.1", "--port", str(options.mllp_port)],
                env,
                self.logs_dir / "mllp.log",
            )
            self.services.append(self.mllp)

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HANDRAIL_DATA_DIR=str(self.data_dir),
            HANDRAIL_TEMPORAL_ADDRESS=self.address,
            HANDRAIL_TEMPORAL_NAMESPACE=self.settings.temporal_namespace,
            HANDRAIL_POLICY=self.settings.policy,
            HANDRAIL_TEMPORAL_UI_URL=self.ui_url,
            PYTHONUNBUFFERED="1",
        )
        # A deployment may publish the API under another address (a tunnel for Twilio webhooks).
        env.setdefault("HANDRAIL_PUBLIC_BASE_URL", self.public_api_url)
        return env

    def _temporal_argv(self) -> list[str]:
        o = self.options
        argv = [
            temporal_binary(), "server", "start-dev",
            "--db-filename", str(self.data_dir / "temporal.db"),
            "--ip", "127.0.0.1",
            "--port", str(o.temporal_port),
            "--ui-port", str(o.ui_port),
            # WAL and one task-queue partition: measured faster and with a shorter tail (NOTES.md).
            "--sqlite-pragma", "journal_mode=wal",
            "--sqlite-pragma", "synchronous=normal",
            "--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
            "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
            "--ui-disable-news-fetch",
        ]
        if self.settings.temporal_namespace != "default":
            argv += ["--namespace", self.settings.temporal_namespace]
        if o.headless:
            argv.append("--headless")
        elif importlib.util.find_spec("handrail.api.routes.codec") is not None:
            # The UI shows encrypted payloads in clear through the API's login-protected codec.
            argv += ["--ui-codec-endpoint", f"{self.public_api_url}/codec"]
        return argv

    # --- start-up ------------------------------------------------------------------------

    def ports_in_use(self) -> list[str]:
        """The flags whose ports another process already holds (checked before starting)."""
        o = self.options
        wanted = [("--temporal-port", "127.0.0.1", o.temporal_port), ("--api-port", o.api_host, o.api_port)]
        if not o.headless:
            wanted.append(("--ui-port", "127.0.0.1", o.ui_port))
        if o.mllp_port:
            wanted.append(("--mllp-port", "127.0.0.1", o.mllp_port))
        taken = []
        for flag, host, port in wanted:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((host, port))
                except OSError:
                    taken.append(f"{flag} {port}")
        return taken

    def _lock_data_dir(self) -> bool:
        """One stack per data dir: two dev servers on one SQLite file would corrupt it. The lock
        goes with this process (children do not inherit it), even when it is killed outright."""
        self._lock_file = open(self.data_dir / "dev.lock", "w")  # held until the process exits
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    async def run(self) -> int:
        taken = self.ports_in_use()
        if taken:
            log.error("already in use: %s (another stack running? choose other ports)", ", ".join(taken))
            return 1
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self._lock_data_dir():
            log.error("another `handrail dev` is already running on %s", self.data_dir)
            return 1
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        # The supervisor's own record (restarts and why) beside the children's logs.
        file_log = logging.FileHandler(self.logs_dir / "dev.log")
        file_log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(file_log)
        # Made once here, not raced by the worker and the API starting together (the payload
        # keys were checked, and made, by the command before the stack starts).
        self.settings.handoff_id_key()
        try:
            self.temporal.start()
            log.info("temporal dev server starting (log: %s)", self.temporal.log_path)
            if not await self._wait_temporal_healthy(HEALTH_TIMEOUT):
                log.error("the Temporal dev server did not come up; see %s", self.temporal.log_path)
                return 1
            try:
                logins = await asyncio.to_thread(prepare_store, self.settings)
            except Exception as err:  # noqa: BLE001 - say what failed, not a traceback
                log.error("the store could not be migrated and seeded: %s: %s", type(err).__name__, err)
                return 1
            self.worker.start()
            self.api.start()
            if not await self._wait_api_healthy(HEALTH_TIMEOUT):
                log.error("the API did not come up; see %s", self.api.log_path)
                return 1
            if self.mllp is not None:
                self.mllp.start()
            self._print_summary(logins)
            if self.options.demo_notifications:
                await self._post_demo_notifications()
            await self._supervise()
            return 0
        finally:
            await self.shutdown()

    def _print_summary(self, logins_made: str) -> None:
        lines = [
            "",
            "Handrail is running (Ctrl-C stops everything):",
            f"  API               {self.public_api_url}   (OpenAPI docs: {self.public_api_url}/docs)",
            f"  Console           {self.public_api_url}/console/   (demo logins and password below)",
            f"  Temporal          {self.address}"
            + ("" if self.options.headless else f"   (UI: {self.ui_url})"),
            *(
                [f"  HL7 v2 (MLLP)     127.0.0.1:{self.options.mllp_port}"]
                if self.mllp is not None else []
            ),
            f"  Policy            {self.settings.policy_path()} (version {self.policy_version})",
            f"  Demo logins       {self.data_dir / LOGINS_FILE}",
            f"  Logs              {self.logs_dir}/",
        ]
        if logins_made:
            lines += ["", "Demo logins (shown once, saved in the file above):", logins_made.rstrip()]
        print("\n".join(lines) + "\n", flush=True)

    # --- health --------------------------------------------------------------------------

    async def _temporal_client(self):
        if self._client is None:
            from temporalio.client import Client

            self._client = await asyncio.wait_for(
                Client.connect(self.address, namespace=self.settings.temporal_namespace), 5
            )
        return self._client

    async def _temporal_healthy(self) -> bool:
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

        try:
            client = await self._temporal_client()
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=self.settings.temporal_namespace),
                timeout=timedelta(seconds=3),
            )
            return True
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            self._client = None
            return False

    async def _wait_temporal_healthy(self, within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self.temporal.alive():
                return False
            if await self._temporal_healthy():
                return True
            await asyncio.sleep(0.5)
        return False

    async def _api_healthy(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=3) as http:
                return (await http.get(f"{self.api_url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def _wait_api_healthy(self, within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.api.exited() and self.api.restart_at is None:
                # An API that crashes at start is restarted by the supervisor; keep waiting.
                log.warning("api exited with code %s at start; restarting", self.api.proc.returncode)
                self.api.schedule_restart()
            if self.api.restart_at is not None and time.monotonic() >= self.api.restart_at:
                self.api.start()
            if self.api.alive() and await self._api_healthy():
                return True
            await asyncio.sleep(0.3)
        return False

    async def _workflow_pollers(self) -> int:
        from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

        client = await self._temporal_client()
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=self.settings.temporal_namespace,
                task_queue=TaskQueue(
                    name=self.settings.task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL
                ),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            ),
            timeout=timedelta(seconds=3),
        )
        return len(response.pollers)

    # --- supervision ---------------------------------------------------------------------

    async def _supervise(self) -> None:
        last_watchdog = 0.0
        while True:
            await asyncio.sleep(0.5)
            if self.temporal.exited():
                await self._recover_temporal(f"exited with code {self.temporal.proc.returncode}")
                continue
            for child in self.services:
                if child.exited() and child.restart_at is None:
                    delay = child.schedule_restart()
                    log.warning(
                        "%s exited with code %s; restarting in %.0fs (log: %s)",
                        child.name, child.proc.returncode, delay, child.log_path,
                    )
                if child.restart_at is not None and time.monotonic() >= child.restart_at:
                    self._restart(child)
            if time.monotonic() - last_watchdog >= 3:
                last_watchdog = time.monotonic()
                await self._watchdog()

    def _restart(self, child: Child) -> None:
        child.restarts += 1
        child.start()
        log.info("%s restarted (pid %s)", child.name, child.pid)
        if child is self.worker:
            self._last_pollers_seen = time.monotonic()

    async def _recover_temporal(self, why: str) -> None:
        """Restart the dev server, then a fresh worker once the server answers again."""
        log.warning("temporal dev server %s; restarting it and then the worker", why)
        # The old worker cannot hand anything back to a dead server: a short grace, and it stops
        # while the server comes back rather than before.
        stopping_worker = self._stopping = asyncio.create_task(
            self.worker.stop(hurry=self.hurry, grace=3.0)
        )
        self.worker.restart_at = None
        await self.temporal.stop(hurry=self.hurry)
        attempt = 0
        while True:
            # At once the first time (the usual crash), then 2, 4 … 30 s between attempts.
            await asyncio.sleep(0.5 if attempt == 0 else min(2.0**attempt, 30.0))
            attempt += 1
            self.temporal.restarts += 1
            self.temporal.start()
            if await self._wait_temporal_healthy(HEALTH_TIMEOUT):
                break
            log.error("temporal dev server did not come back; see %s", self.temporal.log_path)
            await self.temporal.stop(hurry=self.hurry)
        self._temporal_unhealthy_since = None
        log.info("temporal dev server is back (pid %s); starting a fresh worker", self.temporal.pid)
        await stopping_worker
        self._restart(self.worker)

    async def _watchdog(self) -> None:
        now = time.monotonic()
        try:
            pollers = await self._workflow_pollers()
        except Exception:  # noqa: BLE001 - a server that stops answering is handled below
            self._client = None
            self._temporal_unhealthy_since = self._temporal_unhealthy_since or now
            if now - self._temporal_unhealthy_since > 45:
                await self._recover_temporal("has not answered for 45s")
            return
        self._temporal_unhealthy_since = None
        if pollers or not self.worker.alive():
            self._last_pollers_seen = now
            return
        quiet_for = now - max(self._last_pollers_seen, self.worker.started_at)
        if quiet_for >= self.options.watchdog_after:
            log.warning(
                "no workflow pollers on task queue %r for %.0fs while the worker runs; "
                "restarting the worker", self.settings.task_queue, quiet_for,
            )
            await self.worker.stop(hurry=self.hurry)
            self._restart(self.worker)

    async def shutdown(self) -> None:
        log.info("stopping")
        if self._stopping is not None:
            await self._stopping
        await asyncio.gather(*(child.stop(hurry=self.hurry) for child in self.services))
        await self.temporal.stop(hurry=self.hurry)
        log.info("stopped: every process the stack started has exited")

    # --- demo data -----------------------------------------------------------------------

    async def _post_demo_notifications(self) -> None:
        """On a first start, three synthetic discharges so the task lists and outbox show life."""
        try:
            posted = await post_demo_notifications(self.settings, self.api_url)
        except Exception as err:  # noqa: BLE001 - the stack is useful without them
            log.warning("could not post the demo notifications: %s", err)
            return
        if posted:
            log.info("posted %d synthetic demo notifications", posted)


def _connectable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _public_host(host: str) -> str:
    return "localhost" if host in ("0.0.0.0", "::", "", "127.0.0.1") else host


def run_dev(options: DevOptions) -> int:
    # Short output: the supervisor's own lines; libraries only when something is wrong.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    log.setLevel(logging.INFO)
    try:
        stack = DevStack(options)
    except FileNotFoundError as err:
        log.error("%s", err)
        return 1

    async def main() -> int:
        task = asyncio.ensure_future(stack.run())
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            if task.done() or task.cancelling():
                stack.hurry.set()  # a second Ctrl-C: kill instead of waiting
            else:
                task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal)
        try:
            return await task
        except asyncio.CancelledError:
            return 0

    return asyncio.run(main())
