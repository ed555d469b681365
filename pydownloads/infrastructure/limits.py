"""Politeness shared by threads: bytes per second (token bucket) and connections per host,
the latter optionally also bounded by a :class:`HostGate` beyond this process (a cluster's)."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

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


class HostGate(Protocol):
    """A bound on connections per host shared beyond one limiter (the processes of a
    cluster, say), consulted by :class:`HostLimiter` once it has granted a slot of its own.

    Thread-safe.  ``acquire`` blocks until the host has a free slot (``wait=True``) or
    answers at once (``wait=False``); a wait ends soon after ``cancel_event`` is set.
    """

    def acquire(self, host: str, cancel_event: threading.Event, *, wait: bool) -> bool:
        """Take one of ``host``'s slots; False only with ``wait=False`` and none free.

        :raises DownloadCancelledError: cancelled while waiting.
        """

    def release(self, host: str) -> None:
        """Give back a slot ``acquire`` took for ``host``."""

    def close(self) -> None:
        """Stop whatever the gate runs in the background (the limiter's owner calls it)."""


class HostGateFactory(Protocol):
    """What a run's settings carry to make its gate where the run happens (it pickles)."""

    def __call__(self, limit: int) -> HostGate:
        """A gate allowing ``limit`` connections at once to each host, over everyone sharing it."""


class _Waiter:
    """One thread waiting for a host slot; ``granted`` is written under the limiter's lock."""

    __slots__ = ("gone", "granted", "woken")

    def __init__(self) -> None:
        self.granted = False  # a release handed this waiter its slot
        self.gone = False  # cancelled: releases skip it
        self.woken = threading.Event()


# How often a waiter looks at its cancel event: ``threading.Event`` cannot wake a thread
# that waits on something else, so a cancel is noticed within this time (a slot handed
# over wakes its waiter at once).
_CANCEL_CHECK = 0.1


class HostLimiter:
    """At most ``limit`` connections at once to each host, over files and segments.

    Waiters are served by priority (higher first), then in order of arrival: a freed slot is
    handed to the first of them directly, so neither a newcomer nor a segment lane asking
    with ``wait=False`` can take it from a download that was waiting.

    Thread-safe; the lock is held for O(log waiters) work (amortised: a cancelled waiter
    is dropped by the next release).  A wait ends when the cancel event is set (noticed
    within 0.1 s; a handed-over slot wakes its waiter at once).

    With a ``gate``, a slot granted here is also taken from the gate before ``acquire``
    returns (and given back to it first on release): the gate's bound holds over everyone
    sharing it, while this limiter keeps the order among this process's threads and keeps
    at most ``limit`` of them asking the gate.  The gate is called with no lock held.
    """

    def __init__(self, limit: int, *, gate: HostGate | None = None) -> None:
        self.limit = limit
        self.gate = gate
        self._lock = threading.Lock()
        self._in_use: dict[str, int] = {}
        # Per host, a heap of (-priority, arrival, waiter); cancelled waiters stay in it,
        # marked gone, until a release pops them.
        self._queues: dict[str, list[tuple[int, int, _Waiter]]] = {}
        self._waiting: dict[str, int] = {}  # waiters not gone, per host
        self._waits: dict[str, int] = {}  # every wait so far, per host (what the cap held back)
        self._arrivals = itertools.count()

    def acquire(self, host: str, cancel_event: threading.Event, *, wait: bool = True, priority: int = 0) -> bool:
        """Take a connection slot for ``host``; with ``wait=False`` only if one is free.

        :param priority: among threads waiting for ``host``, higher is served first, then
            first come first served.
        :raises DownloadCancelledError: cancelled while waiting (here or at the gate).
        """
        if not self._acquire_here(host, cancel_event, wait, priority):
            return False
        if self.gate is None:
            return True
        granted = False
        try:
            granted = self.gate.acquire(host, cancel_event, wait=wait)
        finally:
            if not granted:  # refused, cancelled or failed at the gate: the local slot goes back
                self._release_here(host)
        return granted

    def _acquire_here(self, host: str, cancel_event: threading.Event, wait: bool, priority: int) -> bool:
        """A slot of this limiter only (see :meth:`acquire`)."""
        with self._lock:
            taken = self._in_use.get(host, 0)
            if taken < self.limit:
                self._in_use[host] = taken + 1
                return True
            if not wait:
                return False
            waiter = _Waiter()
            heapq.heappush(self._queues.setdefault(host, []), (-priority, next(self._arrivals), waiter))
            self._waiting[host] = self._waiting.get(host, 0) + 1
            self._waits[host] = self._waits.get(host, 0) + 1
        while not cancel_event.is_set():
            if waiter.woken.wait(_CANCEL_CHECK):
                return True
        with self._lock:
            handed_over = waiter.granted
            if not handed_over:
                waiter.gone = True
                self._forget_waiter(host)
        if handed_over:
            self._release_here(host)  # the slot came with the cancel: pass it on
        raise DownloadCancelledError("cancelled while waiting for a connection slot")

    def release(self, host: str) -> None:
        """Give a slot back (to the gate first, if any): to the first waiter for ``host``
        if there is one."""
        if self.gate is None:
            self._release_here(host)
            return
        try:
            self.gate.release(host)
        finally:
            self._release_here(host)

    def _release_here(self, host: str) -> None:
        """Give back a slot of this limiter only (see :meth:`release`)."""
        with self._lock:
            queue = self._queues.get(host)
            while queue:
                waiter = heapq.heappop(queue)[2]
                if not waiter.gone:
                    waiter.granted = True  # the slot changes hands: in_use stays as it is
                    self._forget_waiter(host)
                    waiter.woken.set()
                    return
            left = self._in_use[host] - 1
            if left:
                self._in_use[host] = left
            else:
                del self._in_use[host]

    def raise_limit(self, limit: int) -> None:
        """Allow up to ``limit`` connections per host from now on (a lower one is ignored);
        the new slots go at once to the threads waiting for them, in their order."""
        with self._lock:
            if limit <= self.limit:
                return
            self.limit = limit
            for host in list(self._queues):
                queue = self._queues.get(host)
                while queue and self._in_use.get(host, 0) < limit:
                    waiter = heapq.heappop(queue)[2]
                    if waiter.gone:
                        continue
                    waiter.granted = True
                    self._in_use[host] = self._in_use.get(host, 0) + 1
                    self._forget_waiter(host)
                    waiter.woken.set()

    def _forget_waiter(self, host: str) -> None:
        """One waiter for ``host`` fewer (lock held); drop the host's books when none is left."""
        left = self._waiting[host] - 1
        if left:
            self._waiting[host] = left
        else:  # only gone waiters remain queued, if any: nothing will ever pop them
            del self._waiting[host]
            del self._queues[host]

    @contextmanager
    def slot(self, host: str, cancel_event: threading.Event, *, priority: int = 0) -> Iterator[None]:
        """Hold one slot for ``host`` while the block runs."""
        self.acquire(host, cancel_event, priority=priority)
        try:
            yield
        finally:
            self.release(host)

    def in_use(self, host: str) -> int:
        """Slots taken for ``host`` now."""
        with self._lock:
            return self._in_use.get(host, 0)

    def waiting(self, host: str) -> int:
        """Threads waiting for a slot for ``host`` now."""
        with self._lock:
            return self._waiting.get(host, 0)

    def waits(self) -> dict[str, int]:
        """Per host, how many acquisitions had to wait for a slot so far (a copy)."""
        with self._lock:
            return dict(self._waits)
