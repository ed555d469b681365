"""Politeness shared by threads: bytes per second (token bucket) and connections per host."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pydownloads.domain.errors import DownloadCancelledError


class TokenBucket:
    """Allows ``rate`` bytes per second on average, with bursts of ``burst`` bytes.

    Thread-safe; ``consume`` is O(1) under a lock held only for arithmetic, and its waits
    end at once when ``cancel_event`` is set.
    """

    def __init__(self, rate: float, *, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        # A tenth of a second of traffic (at least 16 KiB) smooths reads of any size.
        self.burst = float(burst) if burst is not None else max(self.rate / 10, 16384.0)
        self._tokens = self.burst
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def consume(self, count: int, cancel_event: threading.Event) -> float:
        """Take ``count`` bytes' worth of tokens, waiting as long as the rate requires;
        returns the seconds waited.

        :raises DownloadCancelledError: ``cancel_event`` was set during the wait.
        """
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= count  # may go negative: the debt is the wait
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0 and cancel_event.wait(wait):
            raise DownloadCancelledError("cancelled while rate limited")
        return wait


class HostLimiter:
    """At most ``limit`` connections at once to each host, over files and segments.

    Thread-safe; waits end at once when the cancel event is set.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Condition()
        self._in_use: dict[str, int] = {}

    def acquire(self, host: str, cancel_event: threading.Event, *, wait: bool = True) -> bool:
        """Take a connection slot for ``host``; with ``wait=False`` only if one is free.

        :raises DownloadCancelledError: cancelled while waiting.
        """
        with self._lock:
            while self._in_use.get(host, 0) >= self.limit:
                if not wait:
                    return False
                if cancel_event.is_set():
                    raise DownloadCancelledError("cancelled while waiting for a connection slot")
                # Bounded wait: a cancel is noticed within this time even without a notify.
                self._lock.wait(0.1)
            self._in_use[host] = self._in_use.get(host, 0) + 1
            return True

    def release(self, host: str) -> None:
        """Give a slot back."""
        with self._lock:
            left = self._in_use[host] - 1
            if left:
                self._in_use[host] = left
            else:
                del self._in_use[host]
            self._lock.notify()

    @contextmanager
    def slot(self, host: str, cancel_event: threading.Event) -> Iterator[None]:
        """Hold one slot for ``host`` while the block runs."""
        self.acquire(host, cancel_event)
        try:
            yield
        finally:
            self.release(host)

    def in_use(self, host: str) -> int:
        """Slots taken for ``host`` now."""
        with self._lock:
            return self._in_use.get(host, 0)
