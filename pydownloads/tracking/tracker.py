"""The one place that holds the shared state of downloads: status, bytes, attempts, errors."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydownloads.domain.models import DownloadInfo, DownloadStats, DownloadStatus


class _Record:
    """The mutable state of one download; only touched under the tracker's lock."""

    __slots__ = (
        "attempts",
        "bytes_downloaded",
        "error",
        "error_type",
        "finished_at",
        "path",
        "started_at",
        "status",
        "total_bytes",
        "url",
    )

    def __init__(self, url: str) -> None:
        self.url = url
        self.status = DownloadStatus.PENDING
        self.bytes_downloaded = 0
        self.total_bytes: int | None = None
        self.path: Path | None = None
        self.error: str | None = None
        self.error_type: str | None = None
        self.attempts = 0
        self.started_at: float | None = None
        self.finished_at: float | None = None

    def snapshot(self) -> DownloadInfo:
        return DownloadInfo(
            url=self.url, status=self.status, bytes_downloaded=self.bytes_downloaded,
            total_bytes=self.total_bytes, path=self.path, error=self.error,
            error_type=self.error_type, attempts=self.attempts, started_at=self.started_at,
            finished_at=self.finished_at,
        )


class DownloadTracker:
    """Status, bytes and errors of every download, keyed by URL.

    Thread-safe: the download threads write and any thread may read at any time.  One lock,
    held only for O(1) work (a per-chunk update is one addition), never across I/O.
    Readers get frozen :class:`DownloadInfo` snapshots, never live records.  ``get_stats``
    is O(1): the counts are kept up to date on every transition.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        self._counts: Counter[DownloadStatus] = Counter()
        self._bytes = 0
        self._clock = clock

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
            if record.started_at is None:
                record.started_at = self._clock()
            record.path = path
            record.total_bytes = total_bytes
            record.attempts = attempt
            return True

    def set_bytes(self, url: str, bytes_downloaded: int) -> None:
        """Set the byte count outright (a restart from zero, or a resume offset)."""
        with self._lock:
            record = self._records[url]
            self._bytes += bytes_downloaded - record.bytes_downloaded
            record.bytes_downloaded = bytes_downloaded

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
    ) -> DownloadInfo:
        """Move to a final status, stamp the time and keep the error's message and type."""
        if not status.is_final:
            raise ValueError(f"{status} is not a final status")
        with self._lock:
            record = self._records[url]
            self._move(record, status)
            record.finished_at = self._clock()
            if record.started_at is None:
                record.started_at = record.finished_at
            if path is not None:
                record.path = path
            if error is not None:
                record.error = str(error)
                record.error_type = type(error).__name__
            return record.snapshot()

    def _move(self, record: _Record, status: DownloadStatus) -> None:
        self._counts[record.status] -= 1
        self._counts[status] += 1
        record.status = status

    # -- read by anyone --------------------------------------------------------------------

    def get_download(self, url: str) -> DownloadInfo | None:
        """The snapshot of ``url``, or None if it was never queued."""
        with self._lock:
            record = self._records.get(url)
            return None if record is None else record.snapshot()

    def get_all_downloads(self) -> dict[str, DownloadInfo]:
        """Snapshots of every download, in the order they were first queued."""
        with self._lock:
            return {url: record.snapshot() for url, record in self._records.items()}

    def get_stats(self) -> DownloadStats:
        """Counts by status and the total bytes downloaded, in O(1)."""
        with self._lock:
            counts = self._counts
            return DownloadStats(
                total=len(self._records),
                pending=counts[DownloadStatus.PENDING],
                in_progress=counts[DownloadStatus.IN_PROGRESS],
                completed=counts[DownloadStatus.COMPLETED],
                failed=counts[DownloadStatus.FAILED],
                cancelled=counts[DownloadStatus.CANCELLED],
                bytes_downloaded=self._bytes,
            )
