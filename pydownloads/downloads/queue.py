"""The priority queue between ``add_to_queue`` and the worker threads."""

from __future__ import annotations

import itertools
import math
import queue
import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class PriorityDownloadQueue(Generic[T]):
    """Thread-safe queue: higher priority first, first-in first-out among equals.

    ``join()`` returns when every item put has been marked done, whatever its outcome.
    """

    def __init__(self) -> None:
        self._queue: queue.PriorityQueue[tuple[float, int, T | None]] = queue.PriorityQueue()
        self._sequence = itertools.count()
        self._sequence_lock = threading.Lock()

    def put(self, item: T, priority: int) -> None:
        """Queue ``item``; higher ``priority`` comes out first."""
        self._queue.put((-priority, self._next(), item))

    def put_stop(self) -> None:
        """Queue a stop marker behind everything else (``get`` returns None for it).

        A marker is not a task: ``join()`` does not wait for it to be taken.
        """
        self._queue.put((math.inf, self._next(), None))
        self._queue.task_done()

    def get(self, timeout: float) -> T | None:
        """The next item, None for a stop marker; raises ``queue.Empty`` after ``timeout``."""
        return self._queue.get(timeout=timeout)[2]

    def drain(self) -> list[T]:
        """Take every item still waiting (stop markers are dropped)."""
        items: list[T] = []
        while True:
            try:
                item = self._queue.get_nowait()[2]
            except queue.Empty:
                return items
            if item is not None:
                items.append(item)

    def task_done(self) -> None:
        """Mark one item taken from the queue as finished."""
        self._queue.task_done()

    def join(self, timeout: float | None = None) -> bool:
        """Block until every queued item is done (completed, failed or cancelled), or at most
        ``timeout`` seconds; returns True when everything is done, False on timeout."""
        done = self._queue.all_tasks_done
        with done:
            return done.wait_for(lambda: not self._queue.unfinished_tasks, timeout)

    def qsize(self) -> int:
        """How many items wait (approximate while threads run)."""
        return self._queue.qsize()

    @property
    def unfinished(self) -> int:
        """Items queued and not yet done, in-flight ones included."""
        with self._queue.all_tasks_done:
            return self._queue.unfinished_tasks

    def _next(self) -> int:
        with self._sequence_lock:
            return next(self._sequence)
