"""pydownloads: download many files over HTTP(S) at once, from plain synchronous Python::

    results = pydownloads.download(urls, download_dir="downloads")   # blocks until done
    results.raise_for_failures()

or, to queue, watch and stop as you go::

    with DownloadManager(download_dir="downloads", max_workers=4) as manager:
        manager.add_to_queue(["https://example.com/a.zip"])
        manager.queue.join()

Everything meant to be imported from here is in ``__all__``; the guide and the API reference
are in ``docs/``.
"""

import logging

from pydownloads._version import __version__
from pydownloads.api import download
from pydownloads.domain import (
    DownloadError,
    DownloadInfo,
    DownloadStats,
    DownloadStatus,
    FileConfig,
    RetryConfig,
    RetryPolicy,
)
from pydownloads.domain.errors import (
    ChecksumMismatchError,
    DeadlineExceededError,
    DestinationConflictError,
    DownloadCancelledError,
    DownloadsFailedError,
    DownloadTimeoutError,
    FileSystemError,
    HTTPStatusError,
    IncompleteDownloadError,
    InvalidArgumentError,
    RedirectError,
    ResumeMismatchError,
    SizeMismatchError,
    StateFileError,
    TLSError,
    TransferError,
    VerificationError,
)
from pydownloads.downloads import DownloadManager, DownloadWorker, ErrorCategoriser, RetryHandler
from pydownloads.downloads.settings import DownloadSettings
from pydownloads.events import (
    ChunkDownloaded,
    DownloadCancelled,
    DownloadCompleted,
    DownloadFailed,
    DownloadQueued,
    DownloadRetrying,
    DownloadStarted,
    EventEmitter,
)
from pydownloads.results import DownloadResults
from pydownloads.tracking import DownloadTracker

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "ChecksumMismatchError",
    "ChunkDownloaded",
    "DeadlineExceededError",
    "DestinationConflictError",
    "DownloadCancelled",
    "DownloadCancelledError",
    "DownloadCompleted",
    "DownloadError",
    "DownloadFailed",
    "DownloadInfo",
    "DownloadManager",
    "DownloadQueued",
    "DownloadResults",
    "DownloadRetrying",
    "DownloadSettings",
    "DownloadStarted",
    "DownloadStats",
    "DownloadStatus",
    "DownloadTimeoutError",
    "DownloadTracker",
    "DownloadWorker",
    "DownloadsFailedError",
    "ErrorCategoriser",
    "EventEmitter",
    "FileConfig",
    "FileSystemError",
    "HTTPStatusError",
    "IncompleteDownloadError",
    "InvalidArgumentError",
    "RedirectError",
    "ResumeMismatchError",
    "RetryConfig",
    "RetryHandler",
    "RetryPolicy",
    "SizeMismatchError",
    "StateFileError",
    "TLSError",
    "TransferError",
    "VerificationError",
    "__version__",
    "download",
]
