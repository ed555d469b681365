"""The upper retry layer: whole attempts, retried when a failure is worth it.

urllib3's Retry (``infrastructure.http``) retries before a body starts; this layer retries
failures in the middle of a body (reset, short body, read timeout) and, for sessions that do
not retry by themselves, transient statuses too.  Both layers draw on one attempt budget.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
from collections.abc import Callable
from typing import TypeVar

from pydownloads.domain.errors import (
    DeadlineExceededError,
    DownloadCancelledError,
    DownloadError,
    HTTPStatusError,
    IncompleteDownloadError,
    ResumeMismatchError,
    TLSError,
    TransferError,
    VerificationError,
)
from pydownloads.domain.redact import get_logger, redact_text, redact_url
from pydownloads.domain.retry import RetryConfig, RetryPolicy
from pydownloads.events.emitter import EventEmitter
from pydownloads.events.types import DownloadRetrying

T = TypeVar("T")

#: Called before a retry wait with (attempt about to start, delay, reason).
RetryCallback = Callable[[int, float, str], None]


class ErrorCategory(enum.Enum):
    """Whether trying again can help."""

    TRANSIENT = "transient"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


class ErrorCategoriser:
    """Sorts errors into transient (retry), permanent and unknown (do not retry).

    Works on the DownloadError tree only: transport exceptions were translated before.
    """

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy if policy is not None else RetryPolicy()

    def categorise(self, error: BaseException) -> ErrorCategory:
        """The category of ``error``."""
        match error:
            case HTTPStatusError(status=status):
                transient = self.policy.is_transient_status(status)
                return ErrorCategory.TRANSIENT if transient else ErrorCategory.PERMANENT
            case TLSError() | DeadlineExceededError():
                return ErrorCategory.PERMANENT
            case VerificationError(final=final):
                return ErrorCategory.PERMANENT if final else ErrorCategory.TRANSIENT
            case ResumeMismatchError():
                return ErrorCategory.TRANSIENT
            case IncompleteDownloadError() | TransferError():
                return ErrorCategory.TRANSIENT
            case DownloadError():
                return ErrorCategory.PERMANENT
            case _:
                return ErrorCategory.UNKNOWN

    def is_transient(self, error: BaseException) -> bool:
        """True when another attempt may succeed."""
        return self.categorise(error) is ErrorCategory.TRANSIENT


class RetryHandler:
    """Runs an operation, retrying transient failures with exponential backoff and jitter.

    :param config: how many retries and how long to wait.
    :param categoriser: default: an ErrorCategoriser over ``config.policy``.
    :param emitter: where DownloadRetrying events go when the caller gives no callback.
    :param logger: default: this module's logger.
    :param rng: source of jitter in [0, 1); injectable for tests.

    Thread-safe and stateless between calls: one handler serves every worker thread.
    Waits never block shutdown: they end as soon as ``cancel_event`` is set.
    """

    def __init__(
        self,
        config: RetryConfig | None = None,
        *,
        categoriser: ErrorCategoriser | None = None,
        emitter: EventEmitter | None = None,
        logger: logging.Logger | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config if config is not None else RetryConfig()
        self.categoriser = categoriser if categoriser is not None else ErrorCategoriser(self.config.policy)
        self.emitter = emitter if emitter is not None else EventEmitter()
        self.logger = logger if logger is not None else get_logger(__name__)
        self._rng = rng

    def delay_for(self, error: BaseException, retries_done: int) -> float | None:
        """Seconds to wait before retrying after ``error``, or None to give up.

        ``Retry-After`` from the server wins over backoff, capped at ``max_delay``.
        """
        if retries_done >= self.config.max_retries or not self.categoriser.is_transient(error):
            return None
        if isinstance(error, HTTPStatusError) and error.retry_after is not None:
            return min(error.retry_after, self.config.max_delay)
        return self.config.backoff(retries_done + 1, self._rng())

    def execute_with_retry(
        self,
        operation: Callable[[], T],
        url: str,
        *,
        cancel_event: threading.Event | None = None,
        attempts: AttemptCounter | None = None,
        on_retry: RetryCallback | None = None,
    ) -> T:
        """Call ``operation`` until it returns, a failure is permanent, or retries run out.

        :param attempts: shared with the transport layer, which counts its own retries in it.
        :param on_retry: told of each retry instead of emitting a DownloadRetrying event.
        :raises DownloadCancelledError: ``cancel_event`` was set during a wait.
        :raises Exception: the last failure, when it is permanent or retries ran out.
        """
        counter = attempts if attempts is not None else AttemptCounter()
        cancel = cancel_event if cancel_event is not None else threading.Event()
        while True:
            counter.begin()
            try:
                return operation()
            except DownloadCancelledError:
                raise
            except Exception as error:
                if cancel.is_set():
                    raise DownloadCancelledError("cancelled", url=url, cause=error) from error
                delay = self.delay_for(error, counter.count - 1)
                if delay is None:
                    raise
                reason = str(error) or type(error).__name__
                # The logger may be the caller's own, without our redacting filter.
                self.logger.info("retrying %s in %.2fs (attempt %d): %s", redact_url(url), delay, counter.count + 1,
                                 redact_text(reason))
                if on_retry is not None:
                    on_retry(counter.count + 1, delay, reason)
                elif self.emitter.is_listening(DownloadRetrying):
                    self.emitter.emit(DownloadRetrying(url=url, attempt=counter.count + 1, delay=delay, reason=reason))
                if cancel.wait(delay):
                    raise DownloadCancelledError("cancelled while waiting to retry", url=url) from error


class AttemptCounter:
    """How many attempts one download has made, across both retry layers (one thread)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def begin(self) -> int:
        """Another attempt begins; returns its number (1 for the first)."""
        self.count += 1
        return self.count
