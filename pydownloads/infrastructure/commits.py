"""Group commit: writes that must be durable before their callers go on, committed together.

A caller hands its write to :meth:`GroupCommit.submit` and waits there until a commit that
holds it has returned.  No thread of its own: the first caller to find no commit under way
leads, taking every write pending at that moment and passing them, in one batch, to the
``write`` function (for the journal: the rows' updates and one ``COMMIT``) in its own
thread, then wakes the others of its batch.  Writes submitted while a batch is being
committed wait for the next one, which one of their callers leads.  Nothing waits for a
timer: a lone write is committed at once, by its caller, with no hand-over to another
thread; the more callers arrive during a commit, the more writes the next one covers.

The promise is the one a commit per write keeps: when ``submit`` returns, the write is
committed; when ``write`` raises, every caller of that batch gets the error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

__all__ = ["GroupCommit", "LatestWrites"]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class _Batch(Generic[T]):
    """The writes one commit covers, and how that commit ended."""

    __slots__ = ("done", "error", "items")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.done = False
        self.error: BaseException | None = None


class GroupCommit(Generic[T]):
    """Batches the writes of concurrent callers into one call of ``write`` each.

    ``write(items)`` must make ``items`` durable before it returns; it runs in the thread
    of one of the batch's callers, with no lock of this object held, one call at a time.

    Thread-safe.
    """

    def __init__(self, write: Callable[[list[T]], None]) -> None:
        self._write = write
        self._lock = threading.Lock()
        self._ended = threading.Condition(self._lock)  # a commit returned
        self._open: _Batch[T] = _Batch()
        self._leading = False  # a caller is committing a batch now
        #: Calls of ``write`` so far (what a test or a benchmark counts).
        self.commits = 0

    @property
    def pending(self) -> int:
        """Writes waiting for the next commit (not counting those being committed)."""
        with self._lock:
            return len(self._open.items)

    def submit(self, item: T) -> None:
        """Return once a commit holding ``item`` has returned.

        :raises BaseException: whatever ``write`` raised for the batch that held ``item``.
        """
        with self._lock:
            batch = self._open
            batch.items.append(item)
            while not batch.done:
                if not self._leading:  # then ``batch`` is the open one: lead its commit
                    self._commit(batch)
                    break
                self._ended.wait()
        if batch.error is not None:
            raise batch.error

    def flush(self) -> None:
        """Return once every write submitted so far is committed (or has failed)."""
        with self._lock:
            while self._leading or self._open.items:
                self._ended.wait()

    def close(self) -> None:
        """Return once what is pending is committed (idempotent; ``submit`` still works after)."""
        self.flush()

    def _commit(self, batch: _Batch[T]) -> None:
        """Commit the open ``batch`` in this thread; under the lock, released meanwhile."""
        self._leading = True
        self._open = _Batch()
        self._lock.release()
        try:
            self._write(batch.items)
        except BaseException as error:  # every caller of the batch learns it
            batch.error = error
        finally:
            self._lock.acquire()
            self.commits += 1
            self._leading = False
            batch.done = True
            batch.items = []
            self._ended.notify_all()  # its callers return; one of the next batch's leads


class LatestWrites(Generic[K, T]):
    """Writes that need no commit of their own, held in memory until the next commit takes
    them (:meth:`take`): the latest per key (a row), so a row written again costs nothing
    more.  Thread-safe; O(1) per :meth:`put`, under a lock of its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[K, T] = {}

    def put(self, key: K, item: T) -> None:
        """Hold ``item`` for ``key``, in place of what was held for it."""
        with self._lock:
            self._items[key] = item

    def take(self, superseded: Iterable[K] = ()) -> list[T]:
        """Everything held (and no longer held), but what was held for ``superseded`` keys:
        dropped, the caller writing those keys anew."""
        with self._lock:
            for key in superseded:
                self._items.pop(key, None)
            if not self._items:
                return []
            items, self._items = self._items, {}
        return list(items.values())
