"""Downloads one URL at a time per thread: request, stream to ``.part``, verify, rename."""

from __future__ import annotations

import contextlib
import logging
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
from pydownloads.downloads.job import DownloadJob, DownloadRequest, Owner, PathClaims
from pydownloads.downloads.retry import AttemptCounter, RetryHandler
from pydownloads.downloads.settings import DEFAULT_CHUNK_SIZE, DEFAULT_TIMEOUT, TransferSettings
from pydownloads.downloads.transfer import Transfer, TransferContext
from pydownloads.events.emitter import EventEmitter
from pydownloads.events.types import DownloadCancelled, DownloadCompleted, DownloadFailed, DownloadRetrying
from pydownloads.infrastructure import transport
from pydownloads.infrastructure.http import RetryHooks
from pydownloads.infrastructure.limits import HostLimiter, TokenBucket
from pydownloads.infrastructure.redact import redact_url
from pydownloads.infrastructure.watch import ConnectionWatch
from pydownloads.tracking.tracker import DownloadTracker

logger = logging.getLogger(__name__)

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
    :param retry_hooks: the RetryHooks of ``client``'s adapter, when the manager built it.
    :param limiter: connections per host, shared with other workers.
    :param rate_limit: bytes per second over all downloads of this worker.
    :param watch: the ConnectionWatch of ``client``'s adapter, which learns each download's
        deadline.

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
        self._hooks = retry_hooks
        self._watch = watch
        self._context = TransferContext(
            session=self.client, settings=self.settings, tracker=self.tracker, emitter=self.emitter,
            claims=PathClaims(), limiter=limiter, bucket=TokenBucket(rate_limit) if rate_limit else None,
        )

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
            raise InvalidArgumentError(f"{redact_url(url)} is already being downloaded")
        outcome = self.run(DownloadJob(request))
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def run(self, job: DownloadJob) -> Path | DownloadError:
        """Download a registered job to its end and settle it; never raises.

        Returns the final path, or the error the download ended with.
        """
        counter = AttemptCounter()
        url = job.url
        if self.settings.deadline is not None and job.started_at is None:
            job.started_at = time.monotonic()

        def on_retry(attempt: int, delay: float, reason: str) -> None:
            self._check_deadline(job, delay)
            self.tracker.set_attempts(url, attempt)
            if self.emitter.is_listening(DownloadRetrying):
                self.emitter.emit(DownloadRetrying(url=redact_url(url), attempt=attempt, delay=delay, reason=reason))

        def on_transport_retry(delay: float, reason: str, status: int | None) -> None:
            if counter.count > self.retry_handler.config.max_retries or len(job.request.sources) > 1:
                # With mirrors, the next attempt goes to another one instead of insisting here.
                raise self._exhausted(url, reason, status)
            counter.count += 1
            on_retry(counter.count, delay, reason)

        observing = self._hooks.observing(on_transport_retry) if self._hooks else contextlib.nullcontext()
        try:
            with observing:
                path = self.retry_handler.execute_with_retry(
                    lambda: self._attempt(job, counter), redact_url(url),
                    cancel_event=self.cancel_event, attempts=counter, on_retry=on_retry,
                )
        except DownloadCancelledError as error:
            self._settle(job, DownloadStatus.CANCELLED, error, counter.count)
            return error
        except DownloadError as error:
            self._settle(job, DownloadStatus.FAILED, error, counter.count)
            return error
        except Exception as error:  # a bug must not kill the thread or hang join()
            logger.exception("unexpected error downloading %s", redact_url(url))
            wrapped = DownloadError(f"unexpected error: {error!r}", url=redact_url(url), cause=error)
            self._settle(job, DownloadStatus.FAILED, wrapped, counter.count)
            return wrapped
        self._complete(job, path)
        return path

    @staticmethod
    def _exhausted(url: str, reason: str, status: int | None) -> DownloadError:
        shown = redact_url(url)
        if status is not None:
            return HTTPStatusError(f"HTTP {status} from {shown}, retries exhausted", status=status, url=shown)
        return TransferError(f"{reason} from {shown}, retries exhausted", url=shown)

    def _attempt(self, job: DownloadJob, counter: AttemptCounter) -> Path:
        self._check_deadline(job, 0.0)
        deadline_at = self._deadline_at(job)
        if self._watch is None or deadline_at is None:  # the watch's own header timeout applies
            return Transfer(self._context, job, counter, deadline_at).run()
        with self._watch.deadline(deadline_at):
            return Transfer(self._context, job, counter, deadline_at).run()

    def _deadline_at(self, job: DownloadJob) -> float | None:
        deadline = self.settings.deadline
        return None if deadline is None or job.started_at is None else job.started_at + deadline

    def _check_deadline(self, job: DownloadJob, wait: float) -> None:
        """Fail now rather than wait past the download's deadline (retries, Retry-After)."""
        deadline_at = self._deadline_at(job)
        if deadline_at is not None and time.monotonic() + wait > deadline_at:
            shown = redact_url(job.url)
            raise DeadlineExceededError(f"{shown} would pass its deadline of {self.settings.deadline} s", url=shown)

    def _settle(self, job: DownloadJob, status: DownloadStatus, error: DownloadError, attempts: int) -> None:
        """Record a failure or cancellation, unless a shutdown already settled the job."""
        if job.claimed_path is not None:
            self._context.claims.release(job.claimed_path, job.url)
        if not job.claim(Owner.WORKER):
            return
        self.tracker.set_attempts(job.url, attempts)
        info = self.tracker.mark_finished(job.url, status, error=error)
        shown = redact_url(job.url)
        if status is DownloadStatus.CANCELLED:
            logger.info("cancelled %s", shown)
            if self.emitter.is_listening(DownloadCancelled):
                self.emitter.emit(DownloadCancelled(url=shown, bytes_downloaded=info.bytes_downloaded))
        else:
            logger.warning("failed %s: %s", shown, error)
            if self.emitter.is_listening(DownloadFailed):
                self.emitter.emit(DownloadFailed(
                    url=shown, error=str(error), error_type=type(error).__name__, attempts=attempts))

    def _complete(self, job: DownloadJob, path: Path) -> None:
        """Record a successful download (called once the part file is renamed)."""
        info = self.tracker.mark_finished(job.url, DownloadStatus.COMPLETED, path=path, unchanged=job.unchanged)
        if self.emitter.is_listening(DownloadCompleted):
            self.emitter.emit(DownloadCompleted(
                url=redact_url(job.url), path=path, bytes_downloaded=info.bytes_downloaded,
                elapsed=info.elapsed or 0.0, attempts=info.attempts))

