"""Login throttling: after 5 failed attempts for one account from one address within 15 minutes,
that pair is refused (429) until the oldest failure ages out of the window.

In memory, per API process: enough for one process; several API replicas would each count on
their own (a shared store such as the database would be the next step)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60
_MAX_TRACKED = 10_000


class LoginRateLimiter:
    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        cutoff = self._clock() - self.window_seconds
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures

    def retry_after(self, account: str, address: str) -> int | None:
        """Seconds until the pair may try again, or None when it may try now."""
        key = (account.strip().lower(), address)
        with self._lock:
            failures = self._recent(key)
            if len(failures) < self.max_failures:
                return None
            return max(1, int(failures[0] + self.window_seconds - self._clock()) + 1)

    def record_failure(self, account: str, address: str) -> None:
        key = (account.strip().lower(), address)
        with self._lock:
            if len(self._failures) >= _MAX_TRACKED:
                for stale in list(self._failures):
                    self._recent(stale)  # forgets pairs whose failures all aged out
            self._recent(key)
            self._failures.setdefault(key, deque()).append(self._clock())

    def reset(self, account: str, address: str) -> None:
        with self._lock:
            self._failures.pop((account.strip().lower(), address), None)
