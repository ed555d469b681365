"""How a batch of downloads ended: one results type for ``pydownloads.download``, the command
and ``download_on_dask``.

    results = pydownloads.download(urls, download_dir="downloads")
    print(results.stats.completed, [info.url for info in results.failed])
    results.raise_for_failures()   # one DownloadsFailedError listing every failure
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pydownloads.domain.errors import DownloadsFailedError
from pydownloads.domain.models import DownloadInfo, DownloadStats, DownloadStatus
from pydownloads.domain.redact import redact_url

__all__ = ["DownloadResults"]


@dataclass(frozen=True)
class DownloadResults:
    """Every download's final :class:`DownloadInfo`, by URL, in the order the files were given.

    Picklable (it comes back from Dask workers).  The URLs are the ones given, credentials
    included when a URL holds them: redact them before printing (the error of
    :meth:`raise_for_failures` does).
    """

    downloads: Mapping[str, DownloadInfo] = field(default_factory=dict)

    @classmethod
    def of(cls, infos: Iterable[DownloadInfo]) -> DownloadResults:
        """The results of ``infos``; one not final yet (never started, or stopped before its
        state was written) is reported CANCELLED, as it did not finish."""
        return cls({info.url: _settled(info) for info in infos})

    @property
    def completed(self) -> list[DownloadInfo]:
        """The downloads that completed (their file is in place)."""
        return [i for i in self.downloads.values() if i.status is DownloadStatus.COMPLETED]

    @property
    def failed(self) -> list[DownloadInfo]:
        """The downloads that failed (``error`` and ``error_type`` say why)."""
        return [i for i in self.downloads.values() if i.status is DownloadStatus.FAILED]

    @property
    def stats(self) -> DownloadStats:
        """Counts by status and bytes, as a local run's ``tracker.get_stats()``."""
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
        return dict(self.downloads)

    def raise_for_failures(self) -> None:
        """Raise if any download did not complete; return None when all did.

        :raises DownloadsFailedError: one error for the whole batch, listing every download
            that failed or was cancelled (``error.failures``, in the results' order).
        """
        failures = [info for info in self.downloads.values() if info.status is not DownloadStatus.COMPLETED]
        if failures:
            raise _failures_error(failures)


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


def _settled(info: DownloadInfo) -> DownloadInfo:
    return info if info.status.is_final else dataclasses.replace(info, status=DownloadStatus.CANCELLED)
