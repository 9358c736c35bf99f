"""Running a long-lived command until SIGTERM or Ctrl-C, with a bound on how long it may take
to stop: a process that cannot stop is worse for the supervisor than one that stops hard."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("handrail")

# The exit code of a stop that ran out of time (128 + SIGTERM, as a shell reports it).
HARD_EXIT_CODE = 143


def run_until_signalled(main: Coroutine[Any, Any, None], *, stop_within: float) -> None:
    """Run `main` until it returns or a SIGTERM/SIGINT cancels it; once signalled it has
    `stop_within` seconds to finish cleanly before the process exits regardless.

    The hard stop exists because a Temporal worker whose server went away at the same moment
    (the dev server stopped together with it) retries its pollers instead of finishing its
    shutdown, and would otherwise outlive everything around it."""
    asyncio.run(_until_signalled(main, stop_within))


async def _until_signalled(main: Coroutine[Any, Any, None], stop_within: float) -> None:
    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if task.done():
            return
        log.info("%s received: stopping (at most %.0fs)", signal.Signals(signum).name, stop_within)
        _arm_hard_stop(stop_within)
        task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    with contextlib.suppress(asyncio.CancelledError):
        await task


_armed = threading.Event()


def _arm_hard_stop(after: float) -> None:
    if _armed.is_set():
        return
    _armed.set()

    def hard_stop() -> None:
        log.error("did not stop within %.0fs: exiting without a clean shutdown", after)
        logging.shutdown()
        os._exit(HARD_EXIT_CODE)

    timer = threading.Timer(after, hard_stop)
    timer.daemon = True  # a clean stop that finishes in time exits without waiting for it
    timer.start()
