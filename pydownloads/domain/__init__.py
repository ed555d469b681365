"""Domain models: what a download is, with no I/O and no dependency on the rest of the package."""

from pydownloads.domain.checksum import Checksum
from pydownloads.domain.errors import (
    ChecksumMismatchError,
    DeadlineExceededError,
    DestinationConflictError,
    DownloadCancelledError,
    DownloadError,
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
from pydownloads.domain.models import DownloadInfo, DownloadStats, DownloadStatus, FileConfig
from pydownloads.domain.retry import RetryConfig, RetryPolicy

__all__ = [
    "Checksum",
    "ChecksumMismatchError",
    "DeadlineExceededError",
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
    "ResumeMismatchError",
    "RetryConfig",
    "RetryPolicy",
    "SizeMismatchError",
    "StateFileError",
    "TLSError",
    "TransferError",
    "VerificationError",
]
