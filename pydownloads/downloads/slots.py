"""How many of the manager's worker threads transfer at once.

CPython runs one thread's Python at a time.  Many small files over a fast link keep a
process busy with Python (request, headers, bookkeeping) rather than waiting on the
network; there, more threads transferring add no throughput, only hand-overs of the
interpreter lock between cores on each socket call.  Measured on two idle cores, 5,000
files of 16 KiB from loopback nginx: one thread 1,939 files/s at 0.49 ms of CPU per file,
sixteen 1,204 files/s at 0.87 ms.  Behind a 20 ms round trip the same files need all
sixteen.

:class:`SlotGauge` decides, window after window, from the share of a core the process used
and the bytes it received: a process using about one core (``busy``) is bound by its
interpreter, and the limit halves, on trial: once the threads above the new limit have
finished their jobs, a window that received clearly fewer bytes than before (below
``LOSS`` of them) puts the old limit back and holds it (1 s, doubled at each failed trial,
up to 60 s).  A process using less than ``idle`` of a core waits on the network or the
disk, and the limit doubles, up to every thread.  Between the two it stays.  A process
given less than a core by a busy machine reads as not bound and keeps its threads, as
before.  :class:`WorkerSlots` applies the limit to the worker threads.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

__all__ = ["SlotGauge", "WorkerSlots", "start_threads"]

#: Seconds of one measuring window.
WINDOW = 0.1
#: Share of one core at and above which the process is bound by its interpreter.
BUSY = 0.9
#: Share of one core below which more threads may add throughput.
IDLE = 0.5
#: A trial of fewer threads fails when its window receives less than this share of the
#: bytes per second received before it.
LOSS = 0.85
#: Seconds a failed trial holds its limit, doubled at each failed trial in a row.
HOLD, MAX_HOLD = 1.0, 60.0


class SlotGauge:
    """The limit of threads transferring at once; pure (the caller passes clock and counts).

    :param most: the number of worker threads; the limit starts there.
    """

    __slots__ = ("_busy", "_floor", "_hold", "_idle", "_opened", "_speed", "_trial", "_window", "limit",
                 "most")

    def __init__(self, most: int, now: float, cpu: float, received: int, *, window: float = WINDOW,
                 busy: float = BUSY, idle: float = IDLE) -> None:
        self.most = self.limit = most
        self._window, self._busy, self._idle = window, busy, idle
        self._opened = (now, cpu, received)  # the current window: when, CPU seconds, bytes
        self._speed: float | None = None  # bytes/s, smoothed over the windows so far
        self._trial: tuple[int, float] | None = None  # (limit before, bytes/s before) of a cut on trial
        self._floor = (0.0, 1)  # (until when, limit): no cut below it before then (a failed trial)
        self._hold = HOLD

    def due(self, now: float) -> bool:
        """True when a window has passed since the last look that counted."""
        return now - self._opened[0] >= 0.95 * self._window  # a timed wait may end a hair early

    def look(self, now: float, cpu: float, received: int, taken: int) -> int | None:
        """One look: the new limit when it changes, else None.

        :param now: the clock.
        :param cpu: the process's CPU seconds so far.
        :param received: body bytes received so far.
        :param taken: threads holding a slot now.
        """
        opened, used, had = self._opened
        elapsed = now - opened
        if elapsed < 0.95 * self._window:
            return None
        trial = self._trial
        if trial is not None and taken > self.limit:  # the cut is not in force yet: wait for it
            self._opened = (now, cpu, received)
            return None
        self._opened = (now, cpu, received)
        share, speed = (cpu - used) / elapsed, max(0, received - had) / elapsed
        if trial is not None:
            self._trial = None
            before, was = trial
            if speed < LOSS * was:  # fewer threads moved fewer bytes: back, and stay a while
                self._floor = (now + self._hold, before)
                self._hold = min(MAX_HOLD, 2 * self._hold)
                self._speed = was
                return self._set(before)
            self._hold = HOLD
        self._speed = speed if self._speed is None else (self._speed + speed) / 2
        limit = self.limit
        floor = self._floor[1] if now < self._floor[0] else 1
        if share >= self._busy and limit > floor:
            self._trial = (limit, self._speed)
            return self._set(max(floor, limit // 2))
        if share < self._idle and limit < self.most:
            return self._set(min(self.most, 2 * limit))
        return None

    def _set(self, limit: int) -> int:
        self.limit = limit
        return limit


class WorkerSlots:
    """Slots for worker threads: hold one (:meth:`held`) while taking jobs, and call
    :meth:`keep` after each job.

    ``adaptive=False`` (or one thread) keeps every thread transferring.  Thread-safe; the
    gauge looks at most once per window, under the slots' lock, at the end of a job or from
    a parked thread's timed wait (so a limit moves while every transfer is long).

    :param most: the number of worker threads (``max_workers``).
    :param received: body bytes received so far (the tracker's count).
    :param cpu: the process's CPU seconds so far (``time.process_time``).
    """

    def __init__(self, most: int, received: Callable[[], int], *, adaptive: bool = True,
                 window: float = WINDOW, clock: Callable[[], float] = time.monotonic,
                 cpu: Callable[[], float] = time.process_time) -> None:
        self.most = most
        self.adaptive = adaptive and most > 1
        self._received, self._clock, self._cpu, self._window = received, clock, cpu, window
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self._gauge = SlotGauge(most, clock(), cpu(), received(), window=window) if self.adaptive else None
        self._limit = most
        self._taken = 0
        self._watching = False  # one parked thread looks at the clock while the others sleep
        self._parked = 0  # threads asleep without a timeout
        self._closed = False
        #: The latest limits, with their times (what tests and benchmarks read).
        self.history: deque[tuple[float, int]] = deque(maxlen=64)

    @property
    def limit(self) -> int:
        """Threads allowed to transfer at once now."""
        return self._limit

    def take(self) -> None:
        """Return holding a slot: at once while fewer than the limit hold one."""
        with self._lock:
            while self._taken >= self._limit and not self._closed:
                if self._watching:
                    self._parked += 1
                    try:
                        self._freed.wait()
                    finally:
                        self._parked -= 1
                    continue
                self._watching = True  # no job may end for long: someone must look at the clock
                try:
                    self._freed.wait(self._window)
                finally:
                    self._watching = False
                self._look()
            self._taken += 1
            if self._parked and not self._watching and self._taken >= self._limit:
                self._freed.notify()  # a parked thread takes the watch over

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """:meth:`take` a slot, :meth:`give` it back at the end of the block."""
        self.take()
        try:
            yield
        finally:
            self.give()

    def keep(self) -> None:
        """After a job: go on at once, or, when the limit came down below the slots held,
        give this one back and wait for a slot again."""
        if self._gauge is None:
            return
        with self._lock:
            self._look()
            if self._taken <= self._limit or self._closed:
                return
            self._taken -= 1
        self.take()

    def give(self) -> None:
        """Give the slot back (the thread leaves)."""
        with self._lock:
            self._taken -= 1
            if self._taken < self._limit:
                self._freed.notify()

    def close(self) -> None:
        """No limit from now on: parked threads go and take their stop markers."""
        with self._lock:
            self._closed = True
            self._freed.notify_all()

    def _look(self) -> None:
        """Let the gauge look; under the lock."""
        gauge = self._gauge
        if gauge is None:
            return
        now = self._clock()
        if not gauge.due(now):  # the cheap test first: most calls end here
            return
        limit = gauge.look(now, self._cpu(), self._received(), self._taken)
        if limit is None:
            return
        if limit > self._limit:
            self._freed.notify(limit - self._limit)
        self._limit = limit
        self.history.append((now, limit))


def start_threads(target: Callable[[], None], count: int) -> list[threading.Thread]:
    """Start ``count`` worker threads running ``target``.

    Daemon threads of our own rather than a ThreadPoolExecutor: the interpreter joins
    executor threads at exit before any hook of ours could stop them, so a manager its user
    forgot to close would hang the program.  A closed manager joins its threads.
    """
    threads = [threading.Thread(target=target, name=f"pydownloads-{number}", daemon=True) for number in range(count)]
    for thread in threads:
        thread.start()
    return threads
