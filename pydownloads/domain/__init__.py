"""Domain models: what a download is, with no I/O and no dependency on the rest of the package."""

from pydownloads.domain.errors import (
    DestinationConflictError,
    DownloadCancelledError,
    DownloadError,
    DownloadTimeoutError,
    FileSystemError,
    HTTPStatusError,
    IncompleteDownloadError,
    InvalidArgumentError,
    RedirectError,
    TLSError,
    TransferError,
)
from pydownloads.domain.models import DownloadInfo, DownloadStats, DownloadStatus, FileConfig
from pydownloads.domain.retry import RetryConfig, RetryPolicy

__all__ = [
    "DestinationConflictError",
    "DownloadCancelledError",
    "DownloadError",
    "DownloadInfo",
    "DownloadStats",
    "DownloadStatus",
    "DownloadTimeoutError",
    "FileConfig",
    "FileSystemError",
    "HTTPStatusError",
    "IncompleteDownloadError",
    "InvalidArgumentError",
    "RedirectError",
    "RetryConfig",
    "RetryPolicy",
    "TLSError",
    "TransferError",
]
