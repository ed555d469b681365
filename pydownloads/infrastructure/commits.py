"""Group commit: writes that must be durable before their callers go on, committed together.

A caller hands its write to :meth:`GroupCommit.submit` and waits there until a commit that
holds it has returned.  One committer thread makes the commits: it takes every write pending
at that moment and passes them, in one batch, to the ``write`` function (for the journal: the
rows' updates and one ``COMMIT``), then wakes their callers.  Writes submitted while a batch
is being committed wait for the next one.  Nothing waits for a timer: a lone write is
committed as soon as the committer runs, and the busier the process (the longer the
committer waits for its turn), the more writes one commit covers.

The promise is the one a commit per write keeps: when ``submit`` returns, the write is
committed; when ``write`` raises, every caller of that batch gets the error.  Once closed,
``submit`` calls ``write`` itself, in the caller's thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

__all__ = ["GroupCommit", "LatestWrites"]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class _Batch(Generic[T]):
    """The writes one commit covers, and how that commit ended.

    ``gate`` is held until the commit has returned; each waiter takes it and hands it on
    at once, so the commit wakes its own callers one after the other, and no one else.
    """

    __slots__ = ("error", "gate", "items")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.error: BaseException | None = None
        self.gate = threading.Lock()
        self.gate.acquire()

    def wait(self) -> None:
        """Return once the commit of this batch has returned."""
        self.gate.acquire()
        self.gate.release()


class GroupCommit(Generic[T]):
    """Batches the writes of concurrent callers into one call of ``write`` each.

    ``write(items)`` must make ``items`` durable before it returns; it runs in the committer
    thread (a daemon, started at the first write), with no lock of this object held, one
    call at a time.

    Thread-safe.
    """

    def __init__(self, write: Callable[[list[T]], None], *, name: str = "pydownloads-commit") -> None:
        self._write = write
        self._name = name
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the committer waits here for writes
        self._open: _Batch[T] = _Batch()
        self._committing: _Batch[T] | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
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
            closed = self._closed
            if not closed:
                batch = self._open
                batch.items.append(item)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                    self._thread.start()
                elif len(batch.items) == 1:
                    self._work.notify()
        if closed:  # no committer any more
            self._write([item])
            return
        batch.wait()
        if batch.error is not None:
            raise batch.error

    def flush(self) -> None:
        """Return once every write submitted so far is committed (or has failed)."""
        with self._lock:
            batch = self._open if self._open.items else self._committing
        if batch is not None:
            batch.wait()

    def close(self) -> None:
        """Commit what is pending and stop the committer (idempotent)."""
        with self._lock:
            self._closed = True
            self._work.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        """The committer: commit the open batch whenever it holds writes, until closed."""
        with self._lock:
            while True:
                while not self._open.items and not self._closed:
                    self._work.wait()
                if not self._open.items:
                    return  # closed, nothing left
                batch, self._open = self._open, _Batch()
                self._committing = batch
                self._lock.release()
                try:
                    self._write(batch.items)
                except BaseException as error:  # every caller of the batch learns it
                    batch.error = error
                finally:
                    self._lock.acquire()
                    self.commits += 1
                    batch.items = []
                    self._committing = None
                    batch.gate.release()  # its callers go on, one waking the next


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
