"""The one place that holds the shared state of downloads: status, bytes, attempts, errors."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from pydownloads.domain.models import DownloadInfo, DownloadStats, DownloadStatus


class _Record:
    """The mutable state of one download; only touched under the tracker's lock."""

    __slots__ = (
        "attempts",
        "bytes_downloaded",
        "error",
        "error_type",
        "finished_at",
        "key",
        "path",
        "resumed_from",
        "started_at",
        "status",
        "total_bytes",
        "unchanged",
        "url",
    )

    def __init__(self, url: str, key: int | None = None) -> None:
        self.url = url
        self.key = key
        self.status = DownloadStatus.PENDING
        self.bytes_downloaded = 0
        self.total_bytes: int | None = None
        self.path: Path | None = None
        self.error: str | None = None
        self.error_type: str | None = None
        self.attempts = 0
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.unchanged = False
        self.resumed_from = 0

    def snapshot(self) -> DownloadInfo:
        return DownloadInfo(
            url=self.url, status=self.status, bytes_downloaded=self.bytes_downloaded,
            total_bytes=self.total_bytes, path=self.path, error=self.error,
            error_type=self.error_type, attempts=self.attempts, started_at=self.started_at,
            finished_at=self.finished_at, unchanged=self.unchanged, resumed_from=self.resumed_from,
        )


class TrackerStore(Protocol):
    """Where a tracker keeps downloads it does not hold in memory (the journal)."""

    def started(self, row_id: int, *, path: Path, total: int | None, attempt: int, started_at: float) -> None: ...

    def finished(self, row_id: int, info: DownloadInfo) -> None: ...

    def lookup(self, url: str) -> DownloadInfo | None: ...

    def rows(self, status: str | None = None) -> Iterator[DownloadInfo]: ...

    def run_rows(self) -> Iterator[DownloadInfo]: ...

    def carried_rows(self, since: float) -> Iterator[DownloadInfo]: ...

    def counts(self) -> dict[str, int]: ...

    def total_bytes(self) -> int: ...


class DownloadTracker:
    """Status, bytes and errors of every download, keyed by URL.

    Thread-safe: the download threads write and any thread may read at any time.  One lock,
    held only for O(1) work (a per-chunk update is one addition), never across I/O.
    Readers get frozen :class:`DownloadInfo` snapshots, never live records.  ``get_stats``
    is O(1): the counts are kept up to date on every transition.

    With a store (a manager's ``state_file``), only downloads handed to a worker are held in
    memory: pending ones wait in the store, and finished ones go back to it, their final
    status durable before the tracker reports it.  Memory then stays flat however many URLs
    are queued.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        self._counts: Counter[DownloadStatus] = Counter()
        self._bytes = 0
        self._clock = clock
        self._store: TrackerStore | None = None
        # The store keeps no ``resumed_from``: held here for the store-kept downloads that
        # resumed (only those, so memory does not grow with every file done).
        self._resumed: dict[str, int] = {}

    def bind_store(self, store: TrackerStore) -> None:
        """Keep downloads in ``store`` from now on, starting from the counts it holds.

        :raises RuntimeError: the tracker already tracks downloads in memory.
        """
        counts = store.counts()
        total_bytes = store.total_bytes()
        with self._lock:
            if self._records or self._store is not None:
                raise RuntimeError("a tracker can be bound to a state file only before it tracks anything")
            self._store = store
            for status in DownloadStatus:
                self._counts[status] = counts.get(status.value, 0)
            self._bytes = total_bytes

    def count_queued(self, before: str | None, now: str, count: int = 1) -> None:
        """``count`` store-kept downloads were queued (``before`` None) or changed status
        on being added again."""
        with self._lock:
            if before is not None:
                self._counts[DownloadStatus(before)] -= count
            self._counts[DownloadStatus(now)] += count

    def adopt(self, url: str, key: int, info: DownloadInfo) -> bool:
        """Hold a store-kept pending download in memory while a worker has it; False if the
        same URL is already held (another destination of it is running)."""
        with self._lock:
            if url in self._records:
                return False
            record = self._records[url] = _Record(url, key)
            record.attempts, record.bytes_downloaded = info.attempts, info.bytes_downloaded
            record.resumed_from = info.bytes_downloaded  # an earlier run's, until this run starts it
            return True

    # -- written by the download machinery -------------------------------------------------

    def register(self, url: str) -> bool:
        """Record ``url`` as PENDING; False if it is already pending or in progress."""
        with self._lock:
            record = self._records.get(url)
            if record is not None:
                if not record.status.is_final:
                    return False
                self._counts[record.status] -= 1
                self._bytes -= record.bytes_downloaded
            record = self._records[url] = _Record(url)
            self._counts[DownloadStatus.PENDING] += 1
            return True

    def mark_started(
        self, url: str, *, path: Path, total_bytes: int | None, attempt: int, bytes_downloaded: int = 0
    ) -> bool:
        """An attempt is streaming, keeping ``bytes_downloaded`` from earlier attempts.

        Returns False (and changes nothing) if the download already reached a final status,
        e.g. a shutdown cancelled it while its request was on the way.
        """
        with self._lock:
            record = self._records[url]
            if record.status.is_final:
                return False
            self._move(record, DownloadStatus.IN_PROGRESS)
            self._bytes += bytes_downloaded - record.bytes_downloaded
            record.bytes_downloaded = bytes_downloaded
            store_key = record.key if self._store is not None else None
            if record.started_at is None:  # this run's first attempt: what it starts from is an earlier run's
                record.started_at = self._clock()
                record.resumed_from = bytes_downloaded
            else:  # a later attempt keeps this run's bytes, or started over (fewer bytes kept)
                record.resumed_from = min(record.resumed_from, bytes_downloaded)
            record.path = path
            record.total_bytes = total_bytes
            record.attempts = attempt
            started_at = record.started_at
        if store_key is not None and self._store is not None:
            self._store.started(store_key, path=path, total=total_bytes, attempt=attempt, started_at=started_at)
        return True

    def set_bytes(self, url: str, bytes_downloaded: int) -> None:
        """Set the byte count outright (a restart from zero, or a resume offset)."""
        with self._lock:
            record = self._records[url]
            self._bytes += bytes_downloaded - record.bytes_downloaded
            record.bytes_downloaded = bytes_downloaded
            record.resumed_from = min(record.resumed_from, bytes_downloaded)

    def add_bytes(self, url: str, count: int) -> int:
        """Count ``count`` more body bytes written (the per-chunk update); returns the
        download's new byte count."""
        with self._lock:
            record = self._records[url]
            record.bytes_downloaded += count
            self._bytes += count
            return record.bytes_downloaded

    def set_attempts(self, url: str, attempts: int) -> None:
        """Record how many attempts have been made so far."""
        with self._lock:
            self._records[url].attempts = attempts

    def mark_finished(
        self,
        url: str,
        status: DownloadStatus,
        *,
        path: Path | None = None,
        error: BaseException | None = None,
        unchanged: bool = False,
    ) -> DownloadInfo:
        """Move to a final status, stamp the time and keep the error's message and type.

        With a store, the final status is committed there first: until then the tracker
        (its counts, :meth:`get_download`) still shows the download in progress, and the
        caller reports it only once this returns.  So nothing is ever reported final that a
        killed process could lose.
        """
        if not status.is_final:
            raise ValueError(f"{status} is not a final status")
        with self._lock:
            record = self._records[url]
            info = self._final(record, status, path, error, unchanged)
            store, key = self._store, record.key
            if store is None or key is None:
                self._settle(record, info)
                return info
        store.finished(key, info)  # durable before anyone sees it final
        with self._lock:
            self._settle(record, info)
            if self._records.get(url) is record:
                del self._records[url]  # the store holds it from now on
                if info.resumed_from:
                    self._resumed[url] = info.resumed_from
                else:
                    self._resumed.pop(url, None)
        return info

    def _final(self, record: _Record, status: DownloadStatus, path: Path | None,
               error: BaseException | None, unchanged: bool) -> DownloadInfo:
        """What ``record`` becomes at ``status``, the record left as it is."""
        finished_at = self._clock()
        kept = not unchanged  # unchanged: nothing was transferred this time, whatever an earlier run counted
        return DownloadInfo(
            url=record.url, status=status, bytes_downloaded=record.bytes_downloaded if kept else 0,
            total_bytes=record.total_bytes, path=record.path if path is None else path,
            error=record.error if error is None else str(error),
            error_type=record.error_type if error is None else type(error).__name__,
            attempts=record.attempts, finished_at=finished_at,
            started_at=finished_at if record.started_at is None else record.started_at,
            unchanged=unchanged, resumed_from=record.resumed_from if kept else 0)

    def _settle(self, record: _Record, info: DownloadInfo) -> None:
        """Give ``record`` the final state ``info`` (under the lock)."""
        self._move(record, info.status)
        self._bytes += info.bytes_downloaded - record.bytes_downloaded
        record.bytes_downloaded, record.resumed_from = info.bytes_downloaded, info.resumed_from
        record.finished_at, record.started_at = info.finished_at, info.started_at
        record.path, record.unchanged = info.path, info.unchanged
        record.error, record.error_type = info.error, info.error_type

    def _move(self, record: _Record, status: DownloadStatus) -> None:
        self._counts[record.status] -= 1
        self._counts[status] += 1
        record.status = status

    # -- read by anyone --------------------------------------------------------------------

    def get_download(self, url: str) -> DownloadInfo | None:
        """The snapshot of ``url``, or None if it was never queued."""
        with self._lock:
            record = self._records.get(url)
            store = self._store
            if record is not None:
                return record.snapshot()
            resumed = self._resumed.get(url, 0)
        info = store.lookup(url) if store is not None else None
        return dataclasses.replace(info, resumed_from=resumed) if info is not None and resumed else info

    def get_all_downloads(self) -> dict[str, DownloadInfo]:
        """Snapshots of every download, in the order they were first queued.

        With a state file this reads the whole journal: O(downloads) time and memory.
        """
        stored = {info.url: info for info in self._store.rows()} if self._store is not None else {}
        with self._lock:
            for url, resumed in self._resumed.items():
                info = stored.get(url)
                if info is not None:
                    stored[url] = dataclasses.replace(info, resumed_from=resumed)
            stored.update((url, record.snapshot()) for url, record in self._records.items())
        return stored

    def iter_queued(self) -> Iterator[DownloadInfo]:
        """Snapshots of the downloads queued through this tracker's manager, in the order
        queued.  With a store: those this run added (or added again), streamed from it in
        the order added, in O(1) memory; without one: every download, first queued first.
        """
        if self._store is None:
            with self._lock:
                return iter([record.snapshot() for record in self._records.values()])
        return (self._overlaid(info) for info in self._store.run_rows())

    def iter_carried(self, since: float) -> Iterator[DownloadInfo]:
        """With a store: snapshots of the downloads this run did not add that reached a final
        status at ``since`` or later (an earlier run's leftovers), streamed; else none."""
        if self._store is None:
            return iter(())
        return (self._overlaid(info) for info in self._store.carried_rows(since))

    def _overlaid(self, info: DownloadInfo) -> DownloadInfo:
        """A store's snapshot of a download with what only memory holds: its live record, or
        where it resumed from."""
        with self._lock:
            record = self._records.get(info.url)
            if record is not None:
                return record.snapshot()
            resumed = self._resumed.get(info.url, 0)
        return dataclasses.replace(info, resumed_from=resumed) if resumed else info

    def get_stats(self) -> DownloadStats:
        """Counts by status and the total bytes downloaded, in O(1)."""
        with self._lock:
            counts = self._counts
            return DownloadStats(
                total=sum(counts.values()),
                pending=counts[DownloadStatus.PENDING],
                in_progress=counts[DownloadStatus.IN_PROGRESS],
                completed=counts[DownloadStatus.COMPLETED],
                failed=counts[DownloadStatus.FAILED],
                cancelled=counts[DownloadStatus.CANCELLED],
                bytes_downloaded=self._bytes,
            )
