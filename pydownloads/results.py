"""How a batch of downloads ended: one results type for ``pydownloads.download``, the command
and ``download_on_dask``.

    results = pydownloads.download(urls, download_dir="downloads")
    print(results.stats.completed, [info.url for info in results.failed])
    results.raise_for_failures()   # one DownloadsFailedError listing every failure

How each download ended *this time* (:meth:`DownloadResults.outcome`): ``"transferred"``
(fetched by this run from the first byte, or tried to: the status says how it ended),
``"resumed"`` (this run went on from bytes an earlier run left), ``"unchanged"`` (completed
without a body: the server said not modified, or the file was kept), ``"skipped"`` (settled by
an earlier run, per the state file: no request this time).  The command adds ``"carried over"``
for a download of the state file that was not in its input.

The records may live elsewhere and be read on demand: ``downloads`` is then a
:class:`StoredDownloads` (``download_on_dask`` keeps them in its shards' state files), whose
counts and failures come without reading every record, and which iterates the others lazily.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from pydownloads.domain.errors import DownloadsFailedError
from pydownloads.domain.models import DownloadInfo, DownloadStats, DownloadStatus
from pydownloads.domain.redact import redact_url

__all__ = ["DownloadResults", "StoredDownloads"]

TRANSFERRED = "transferred"
RESUMED = "resumed"
UNCHANGED = "unchanged"
SKIPPED = "skipped"
#: What did not complete, as ``raise_for_failures`` lists it.
_NOT_COMPLETED = (DownloadStatus.FAILED, DownloadStatus.CANCELLED)


class StoredDownloads(Mapping[str, DownloadInfo], abc.ABC):
    """Final DownloadInfos by URL kept outside the process (state files), read on demand.

    An implementation reports a download that is not final as CANCELLED (it did not finish),
    as :meth:`DownloadResults.of` does, and must pickle small (it may cross processes).
    """

    @abc.abstractmethod
    def stats(self) -> DownloadStats:
        """Counts by status and bytes, without reading every record."""

    @abc.abstractmethod
    def with_status(self, *statuses: DownloadStatus) -> Iterator[DownloadInfo]:
        """The downloads whose (settled) status is one of ``statuses``, in the results' order."""


@dataclass(frozen=True)
class DownloadResults:
    """Every download's final :class:`DownloadInfo`, by URL, in the order the files were given.

    Picklable (it comes back from Dask workers).  ``downloads`` may be a
    :class:`StoredDownloads` read on demand: counts and failures then come from it at once,
    and iterating ``downloads`` reads the records one by one.  The URLs are the ones given, credentials
    included when a URL holds them: redact them before printing (the error of
    :meth:`raise_for_failures` does).  ``started_at`` (``time.time()`` when the run began)
    tells the downloads an earlier run settled (:meth:`outcome` ``"skipped"``); None: unknown.
    """

    downloads: Mapping[str, DownloadInfo] = field(default_factory=dict)
    started_at: float | None = None

    @classmethod
    def of(cls, infos: Iterable[DownloadInfo], *, started_at: float | None = None) -> DownloadResults:
        """The results of ``infos``; one not final yet (never started, or stopped before its
        state was written) is reported CANCELLED, as it did not finish."""
        return cls({info.url: settled(info) for info in infos}, started_at)

    def outcome(self, info: DownloadInfo) -> str:
        """How ``info`` ended this time: ``"transferred"``, ``"resumed"``, ``"unchanged"`` or
        ``"skipped"`` (see the module's doc)."""
        return outcome_of(info, started_at=self.started_at)

    @property
    def bytes_this_run(self) -> int:
        """Bytes transferred by this run: not those an earlier run fetched (a resumed part,
        a skipped file)."""
        return sum(bytes_this_run(info, started_at=self.started_at) for info in self.downloads.values())

    @property
    def completed(self) -> list[DownloadInfo]:
        """The downloads that completed (their file is in place)."""
        return self._with_status(DownloadStatus.COMPLETED)

    @property
    def failed(self) -> list[DownloadInfo]:
        """The downloads that failed (``error`` and ``error_type`` say why)."""
        return self._with_status(DownloadStatus.FAILED)

    @property
    def stats(self) -> DownloadStats:
        """Counts by status and bytes, as a local run's ``tracker.get_stats()``."""
        if isinstance(self.downloads, StoredDownloads):
            return self.downloads.stats()
        counts = {status: 0 for status in DownloadStatus}
        for info in self.downloads.values():
            counts[info.status] += 1
        return DownloadStats(
            total=len(self.downloads), pending=counts[DownloadStatus.PENDING],
            in_progress=counts[DownloadStatus.IN_PROGRESS], completed=counts[DownloadStatus.COMPLETED],
            failed=counts[DownloadStatus.FAILED], cancelled=counts[DownloadStatus.CANCELLED],
            bytes_downloaded=sum(i.bytes_downloaded for i in self.downloads.values()),
        )

    def get_all_downloads(self) -> dict[str, DownloadInfo]:
        """The same view a local tracker gives (a copy)."""
        return dict(self.downloads.items())

    def raise_for_failures(self) -> None:
        """Raise if any download did not complete; return None when all did.

        :raises DownloadsFailedError: one error for the whole batch, listing every download
            that failed or was cancelled (``error.failures``, in the results' order).
        """
        failures = self._with_status(*_NOT_COMPLETED)
        if failures:
            raise _failures_error(failures)

    def _with_status(self, *statuses: DownloadStatus) -> list[DownloadInfo]:
        if isinstance(self.downloads, StoredDownloads):
            return list(self.downloads.with_status(*statuses))
        return [info for info in self.downloads.values() if info.status in statuses]


def _failures_error(failures: list[DownloadInfo]) -> DownloadsFailedError:
    """One error naming every download that did not complete, without credentials."""
    shown = tuple(_redacted(info) for info in failures)
    lines = [f"{len(shown)} download(s) did not complete:"]
    for info in shown:
        reason = f"{info.error} ({info.error_type})" if info.error else info.status.value
        lines.append(f"  {info.url}: {reason}")
    return DownloadsFailedError("\n".join(lines), failures=shown)


def _redacted(info: DownloadInfo) -> DownloadInfo:
    shown = redact_url(info.url)
    if shown == info.url:
        return info
    error = None if info.error is None else info.error.replace(info.url, shown)
    return dataclasses.replace(info, url=shown, error=error)


def settled_earlier(info: DownloadInfo, *, started_at: float | None) -> bool:
    """True if ``info`` was settled by a run before the one that began at ``started_at``."""
    return started_at is not None and info.finished_at is not None and info.finished_at < started_at


def outcome_of(info: DownloadInfo, *, started_at: float | None) -> str:
    """How ``info`` ended in the run that began at ``started_at`` (see the module's doc)."""
    if settled_earlier(info, started_at=started_at):
        return SKIPPED
    if info.unchanged:
        return UNCHANGED
    return RESUMED if info.resumed_from else TRANSFERRED


def bytes_this_run(info: DownloadInfo, *, started_at: float | None) -> int:
    """Bytes of ``info`` transferred by the run that began at ``started_at``."""
    return 0 if settled_earlier(info, started_at=started_at) else info.bytes_this_run


def file_size(info: DownloadInfo) -> int | None:
    """The size of a completed download's file (None for one not completed).

    A file kept unchanged was not counted: its size is read from the disk.
    """
    if info.status is not DownloadStatus.COMPLETED:
        return None
    if not info.unchanged:
        return info.bytes_downloaded
    try:
        return os.stat(info.path).st_size if info.path is not None else None
    except OSError:
        return None


def settled(info: DownloadInfo) -> DownloadInfo:
    """``info``, or CANCELLED if it is not final (it did not finish)."""
    return info if info.status.is_final else dataclasses.replace(info, status=DownloadStatus.CANCELLED)
