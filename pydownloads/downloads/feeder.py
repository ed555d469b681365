"""The queue of a manager with a state file: the journal holds what waits, memory a window.

Workers take jobs from a small in-memory priority queue; when it runs low, the next
pending downloads (highest priority first) are read from the journal.  Memory so stays flat
whatever the number of URLs queued.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path

from pydownloads.domain.errors import DownloadError, InvalidArgumentError
from pydownloads.domain.models import DownloadStatus
from pydownloads.domain.redact import get_logger
from pydownloads.downloads.job import DownloadJob, DownloadRequest, NameClaims
from pydownloads.downloads.queue import PriorityDownloadQueue
from pydownloads.infrastructure.journal import Journal, JournalRow
from pydownloads.tracking.tracker import DownloadTracker

logger = get_logger(__name__)


class JournalQueue(PriorityDownloadQueue[DownloadJob]):
    """A :class:`PriorityDownloadQueue` refilled from the journal.

    ``join()`` returns when nothing is pending in the journal and every job taken is done
    (or, after a shutdown, when every job taken is done: the rest stays pending for the next
    run).  Thread-safe.

    With ``names``, the names known before the response are claimed as rows are read, in
    the order they are read: priority, then input order (see :class:`NameClaims`); their
    claims are bound to the journal, which answers for the completed downloads' paths.
    """

    def __init__(
        self,
        journal: Journal,
        tracker: DownloadTracker,
        root: Path,
        *,
        window: int,
        stopping: threading.Event,
        names: NameClaims | None = None,
    ) -> None:
        super().__init__()
        self._journal, self._tracker, self._root = journal, tracker, root
        self._window, self._stopping = window, stopping
        self._names = names
        if names is not None:  # a completed download's name is the journal's to defend from now on
            names.claims.bind(journal.completed_owner)
        self._feed_lock = threading.Lock()

    def get(self, timeout: float) -> DownloadJob | None:
        if self.qsize() < self._window // 2 and not self._stopping.is_set():
            self.refill()
        return super().get(timeout)

    def refill(self) -> int:
        """Move the next pending downloads from the journal into memory; returns how many."""
        with self._feed_lock:
            room = self._window - self.qsize()
            if room <= 0 or self._stopping.is_set():
                return 0
            rows = self._journal.next_pending(room)
            base = os.path.realpath(self._root) if rows else ""  # once per refill
            for row in rows:
                try:
                    request = DownloadRequest.from_config(row.config, self._root, base=base)
                except InvalidArgumentError as error:
                    self._fail(row, error)
                    continue
                if not self._tracker.adopt(row.config.url, row.id, row.info):
                    self._fail(row, InvalidArgumentError(
                        f"{row.config.url} is already being downloaded to another destination"))
                    continue
                job = DownloadJob(request, row.config.priority)
                if self._names is not None:
                    self._names.reserve((job,))
                self.put(job, row.config.priority)
            return len(rows)

    def _fail(self, row: JournalRow, error: DownloadError) -> None:
        """A journaled download that cannot run here ends FAILED, durably."""
        logger.warning("%s cannot be downloaded: %s", row.config.url, error)
        now = time.time()
        self._journal.finished(row.id, replace(
            row.info, status=DownloadStatus.FAILED, error=str(error), error_type=type(error).__name__,
            started_at=row.info.started_at or now, finished_at=now))
        self._tracker.count_queued("pending", "failed")

    def pending(self) -> int:
        """Downloads waiting in the journal or in memory (from the tracker's counts)."""
        return self._tracker.get_stats().pending

    def join(self, timeout: float | None = None) -> bool:
        """Block until every pending download of the journal is done (see the class doc), or
        at most ``timeout`` seconds; returns True when done, False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._journal.release_carried()  # waited for: what an earlier run left goes on
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not super().join(left):  # every job taken so far is done, or time is up
                return False
            if self._stopping.is_set():
                return True
            if self.refill() == 0 and self.unfinished == 0:
                return True
