"""Downloads one URL at a time per thread: request, stream to ``.part``, verify, rename."""

from __future__ import annotations

import time
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import requests

from pydownloads.domain.errors import (
    DeadlineExceededError,
    DownloadCancelledError,
    DownloadError,
    HTTPStatusError,
    InvalidArgumentError,
    TransferError,
)
from pydownloads.domain.models import DownloadStatus, FileConfig, check_rate
from pydownloads.domain.redact import get_logger
from pydownloads.downloads.job import DownloadJob, DownloadRequest, Owner, PathClaims
from pydownloads.downloads.retry import RetryHandler
from pydownloads.downloads.settings import DEFAULT_CHUNK_SIZE, DEFAULT_TIMEOUT, TransferSettings
from pydownloads.downloads.transfer import Transfer, TransferContext
from pydownloads.events.emitter import EventEmitter
from pydownloads.events.types import DownloadCancelled, DownloadCompleted, DownloadFailed, DownloadRetrying
from pydownloads.infrastructure import transport
from pydownloads.infrastructure.http import RetryHooks, takes_request_retry
from pydownloads.infrastructure.limits import HostLimiter, TokenBucket
from pydownloads.infrastructure.watch import ConnectionWatch
from pydownloads.tracking.tracker import DownloadTracker

logger = get_logger(__name__)

class DownloadWorker:
    """Fetches URLs into files; one instance serves every thread of a manager.

    :param client: the requests Session to use (its adapters, auth, proxies are honoured).
    :param retry_handler: default: a RetryHandler with RetryConfig() defaults.
    :param emitter: where events go (``worker.emitter.on(...)``); default: a new one.
    :param tracker: where state goes; default: a new DownloadTracker.
    :param timeout: seconds, or (connect, read): no wait for the server lasts longer.
    :param chunk_size: most bytes read and written at a time.
    :param settings: every transfer option at once (then ``timeout`` and ``chunk_size`` are
        not used); its ``cancel_event``, set by a hard shutdown, stops every download.
    :param retry_hooks: accepted for callers of earlier versions and not used: the adapter of
        a session the manager built holds its RetryHooks.
    :param limiter: connections per host, shared with other workers.
    :param rate_limit: bytes per second over all downloads of this worker.
    :param watch: accepted for callers of earlier versions and not used: the adapter holds
        its ConnectionWatch.

    With a session the manager built, each download's requests carry its retry budget,
    deadline and reports to the adapter; a caller's own session gets plain requests.

    Thread-safe: ``download`` may run in many threads at once; per-download state lives in
    the call, shared state in the tracker and the path claims.
    """

    def __init__(
        self,
        client: requests.Session | None = None,
        retry_handler: RetryHandler | None = None,
        *,
        emitter: EventEmitter | None = None,
        tracker: DownloadTracker | None = None,
        timeout: transport.Timeout = DEFAULT_TIMEOUT,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        settings: TransferSettings | None = None,
        retry_hooks: RetryHooks | None = None,
        limiter: HostLimiter | None = None,
        rate_limit: float | None = None,
        watch: ConnectionWatch | None = None,
    ) -> None:
        if client is not None and not isinstance(client, requests.Session):
            raise InvalidArgumentError(f"client must be a requests.Session, not {type(client).__name__}")
        check_rate("rate_limit", rate_limit)
        self.client = client if client is not None else requests.Session()
        self.emitter = emitter if emitter is not None else EventEmitter()
        self.retry_handler = retry_handler if retry_handler is not None else RetryHandler(emitter=self.emitter)
        self.tracker = tracker if tracker is not None else DownloadTracker()
        self.settings = settings if settings is not None else TransferSettings(timeout=timeout, chunk_size=chunk_size)
        self.cancel_event = self.settings.cancel_event
        # retry_hooks and watch live in the session's adapter; what a download adds (budget,
        # deadline, reports) goes with its requests, where the session takes it.
        self._explicit = takes_request_retry(self.client)
        self._context = TransferContext(
            session=self.client, settings=self.settings, tracker=self.tracker, emitter=self.emitter,
            claims=PathClaims(), limiter=limiter, bucket=TokenBucket(rate_limit) if rate_limit else None,
        )

    @property
    def claims(self) -> PathClaims:
        """The final paths the downloads this worker runs own: one file, one download."""
        return self._context.claims

    def download(
        self, url: str, destination_path: str | PathLike[str], *, headers: Mapping[str, str] | None = None
    ) -> Path:
        """Download ``url`` to ``destination_path`` and return the final path.

        ``destination_path`` is the file to create, or an existing folder to put it in under
        the name the server or the URL gives.

        :raises InvalidArgumentError: bad URL, headers or destination (nothing was fetched).
        :raises DownloadError: the download failed after its retries; nothing is left
            under the final name.
        """
        destination = Path(destination_path)
        config = FileConfig(url=url, headers=headers or {})
        if destination.is_dir():
            request = DownloadRequest.from_config(config, destination)
        else:
            config = FileConfig(url=url, headers=headers or {}, filename=destination.name)
            request = DownloadRequest.from_config(config, destination.parent)
        if not self.tracker.register(url):
            raise InvalidArgumentError(f"{url} is already being downloaded")
        outcome = self.run(DownloadJob(request))
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def run(self, job: DownloadJob) -> Path | DownloadError:
        """Download a registered job to its end and settle it; never raises.

        Returns the final path, or the error the download ended with.
        """
        state, url = job.state, job.url
        if self.settings.deadline is not None:
            state.start_clock(time.monotonic())
        retries = _Retries(job, self.settings.deadline, self.retry_handler.config.max_retries,
                           self.tracker, self.emitter)
        try:
            path = self.retry_handler.execute_with_retry(
                lambda: self._attempt(job, retries), url,
                cancel_event=self.cancel_event, attempts=state.attempts, on_retry=retries.on_retry,
            )
        except DownloadCancelledError as error:
            self._settle(job, DownloadStatus.CANCELLED, error)
            return error
        except DownloadError as error:
            self._settle(job, DownloadStatus.FAILED, error)
            return error
        except Exception as error:  # a bug must not kill the thread or hang join()
            logger.exception("unexpected error downloading %s", url)
            wrapped = DownloadError(f"unexpected error: {error!r}", url=url, cause=error)
            self._settle(job, DownloadStatus.FAILED, wrapped)
            return wrapped
        self._complete(job, path)
        return path

    def _attempt(self, job: DownloadJob, retries: _Retries) -> Path:
        late = retries.past_deadline(0.0)
        if late is not None:
            raise late
        # Only a session of ours hands the download's retry context on to its adapter.
        return Transfer(self._context, job, retries.deadline_at, retries if self._explicit else None).run()

    def _settle(self, job: DownloadJob, status: DownloadStatus, error: DownloadError) -> None:
        """Record a failure or cancellation, unless a shutdown already settled the job."""
        claimed, attempts = job.state.claimed_path, job.state.attempt
        if claimed is not None:
            self._context.claims.release(claimed, job.url)
        if not job.claim(Owner.WORKER):
            return
        self.tracker.set_attempts(job.url, attempts)
        info = self.tracker.mark_finished(job.url, status, error=error)
        if status is DownloadStatus.CANCELLED:
            logger.info("cancelled %s", job.url)
            if self.emitter.is_listening(DownloadCancelled):
                self.emitter.emit(DownloadCancelled(url=job.url, bytes_downloaded=info.bytes_downloaded))
        else:
            logger.warning("failed %s: %s", job.url, error)
            if self.emitter.is_listening(DownloadFailed):
                self.emitter.emit(DownloadFailed(
                    url=job.url, error=str(error), error_type=type(error).__name__, attempts=attempts))

    def _complete(self, job: DownloadJob, path: Path) -> None:
        """Record a successful download (called once the part file is renamed)."""
        info = self.tracker.mark_finished(job.url, DownloadStatus.COMPLETED, path=path, unchanged=job.state.unchanged)
        self._context.claims.completed(path, job.url)  # with a state file, it holds the path from now on
        if self.emitter.is_listening(DownloadCompleted):
            self.emitter.emit(DownloadCompleted(
                url=job.url, path=path, bytes_downloaded=info.bytes_downloaded,
                elapsed=info.elapsed or 0.0, attempts=info.attempts))



class _Retries:
    """One download's retries as the worker sees them: its deadline, what is left of its
    attempt budget for urllib3's retries, and the report of every retry (tracker, event).

    Both retry layers report here: :meth:`on_retry` for whole attempts (RetryHandler), the
    :class:`~pydownloads.infrastructure.request_retry.RetryListener` methods for urllib3's.
    One thread: the one running the download.
    """

    __slots__ = ("_deadline", "_emitter", "_job", "_max_retries", "_tracker", "_url", "deadline_at")

    def __init__(self, job: DownloadJob, deadline: float | None, max_retries: int, tracker: DownloadTracker,
                 emitter: EventEmitter) -> None:
        self._job, self._deadline, self._max_retries = job, deadline, max_retries
        self._tracker, self._emitter = tracker, emitter
        self._url = job.url
        started = job.state.started_at
        self.deadline_at = None if deadline is None or started is None else started + deadline

    def past_deadline(self, wait: float) -> DeadlineExceededError | None:
        """The error to fail with now rather than wait ``wait`` s past the deadline, if so."""
        if self.deadline_at is not None and time.monotonic() + wait > self.deadline_at:
            return DeadlineExceededError(f"{self._url} would pass its deadline of {self._deadline} s",
                                         url=self._url)
        return None

    def on_retry(self, attempt: int, delay: float, reason: str) -> None:
        """RetryHandler's callback: attempt ``attempt`` starts in ``delay`` s.

        :raises DeadlineExceededError: the wait would pass the download's deadline.
        """
        late = self.past_deadline(delay)
        if late is not None:
            raise late
        self._report(attempt, delay, reason)

    def retries_left(self) -> int:
        return self._job.state.transport_retries_left(self._max_retries)

    def retrying(self, delay: float, reason: str) -> DownloadError | None:
        attempt = self._job.state.retry_in_transport()
        late = self.past_deadline(delay)
        if late is None:
            self._report(attempt, delay, reason)
        return late

    def exhausted(self, reason: str, status: int | None) -> DownloadError:
        if status is not None:
            return HTTPStatusError(f"{reason} from {self._url}, retries exhausted", status=status, url=self._url)
        return TransferError(f"{reason} ({self._url}), retries exhausted", url=self._url)

    def _report(self, attempt: int, delay: float, reason: str) -> None:
        self._tracker.set_attempts(self._job.url, attempt)
        if self._emitter.is_listening(DownloadRetrying):
            self._emitter.emit(DownloadRetrying(url=self._url, attempt=attempt, delay=delay, reason=reason))
