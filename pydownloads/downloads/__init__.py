"""The download machinery: queue, manager, worker and the retry layer above urllib3."""

from pydownloads.downloads.manager import DownloadManager
from pydownloads.downloads.queue import PriorityDownloadQueue
from pydownloads.downloads.retry import ErrorCategoriser, ErrorCategory, RetryHandler
from pydownloads.downloads.worker import DownloadWorker

__all__ = [
    "DownloadManager",
    "DownloadWorker",
    "ErrorCategoriser",
    "ErrorCategory",
    "PriorityDownloadQueue",
    "RetryHandler",
]
