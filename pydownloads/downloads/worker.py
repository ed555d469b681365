"""Downloads one URL at a time per thread: request, stream to ``.part``, verify, rename."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import requests

from pydownloads.domain.errors import (
    DownloadCancelledError,
    DownloadError,
    HTTPStatusError,
    InvalidArgumentError,
    TransferError,
)
from pydownloads.domain.models import DownloadStatus, FileConfig
from pydownloads.downloads.job import DownloadJob, DownloadRequest, Owner, PathClaims
from pydownloads.downloads.retry import AttemptCounter, RetryHandler
from pydownloads.events.emitter import EventEmitter
from pydownloads.events.types import (
    ChunkDownloaded,
    DownloadCancelled,
    DownloadCompleted,
    DownloadFailed,
    DownloadRetrying,
    DownloadStarted,
)
from pydownloads.infrastructure import transport
from pydownloads.infrastructure.files import PartFile
from pydownloads.infrastructure.http import RetryHooks
from pydownloads.infrastructure.paths import DEFAULT_NAME, name_from_url, parse_content_disposition
from pydownloads.infrastructure.redact import redact_url
from pydownloads.tracking.tracker import DownloadTracker

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 60.0)
DEFAULT_CHUNK_SIZE = 1 << 20


def validate_timeout(timeout: object) -> transport.Timeout:
    """``timeout`` as requests takes it: seconds, or (connect, read) seconds, all > 0."""
    values = timeout if isinstance(timeout, tuple) else (timeout,)
    if not 1 <= len(values) <= 2 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf") for v in values
    ):
        raise InvalidArgumentError(f"timeout must be seconds > 0 or a (connect, read) pair, not {timeout!r}")
    return timeout  # type: ignore[return-value]


class DownloadWorker:
    """Fetches URLs into files; one instance serves every thread of a manager.

    :param client: the requests Session to use (its adapters, auth, proxies are honoured).
    :param retry_handler: default: a RetryHandler with RetryConfig() defaults.
    :param emitter: where events go (``worker.emitter.on(...)``); default: a new one.
    :param tracker: where state goes; default: a new DownloadTracker.
    :param timeout: seconds, or (connect, read): no wait for the server lasts longer.
    :param chunk_size: bytes read and written at a time.
    :param cancel_event: set by a hard shutdown; every download stops at its next chunk.
    :param retry_hooks: the RetryHooks of ``client``'s adapter, when the manager built it.

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
        cancel_event: threading.Event | None = None,
        retry_hooks: RetryHooks | None = None,
    ) -> None:
        if client is not None and not isinstance(client, requests.Session):
            raise InvalidArgumentError(f"client must be a requests.Session, not {type(client).__name__}")
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
            raise InvalidArgumentError(f"chunk_size must be an int >= 1, not {chunk_size!r}")
        self.client = client if client is not None else requests.Session()
        self.emitter = emitter if emitter is not None else EventEmitter()
        self.retry_handler = retry_handler if retry_handler is not None else RetryHandler(emitter=self.emitter)
        self.tracker = tracker if tracker is not None else DownloadTracker()
        self.timeout = validate_timeout(timeout)
        self.chunk_size = chunk_size
        self.cancel_event = cancel_event if cancel_event is not None else threading.Event()
        self._hooks = retry_hooks
        self._claims = PathClaims()

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

        def on_retry(attempt: int, delay: float, reason: str) -> None:
            self.tracker.set_attempts(url, attempt)
            if self.emitter.is_listening(DownloadRetrying):
                self.emitter.emit(DownloadRetrying(url=redact_url(url), attempt=attempt, delay=delay, reason=reason))

        def on_transport_retry(delay: float, reason: str, status: int | None) -> None:
            if counter.count > self.retry_handler.config.max_retries:
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
        if self.cancel_event.is_set():
            raise DownloadCancelledError("cancelled before it started", url=redact_url(job.url))
        request = job.request
        headers = {"Accept-Encoding": "identity", **request.headers}
        response = transport.send_get(self.client, request.url, headers=headers, timeout=self.timeout)
        job.response = response
        try:
            transport.check_status(response, request.url)
            final = self._destination(job, response)
            expected = transport.content_length(response)
            self.tracker.mark_started(request.url, path=final, total_bytes=expected, attempt=counter.count)
            self.tracker.set_bytes(request.url, 0)
            if self.emitter.is_listening(DownloadStarted):
                self.emitter.emit(DownloadStarted(
                    url=redact_url(request.url), path=final, total_bytes=expected, attempt=counter.count))
            part = PartFile(final, url=redact_url(request.url))
            try:
                self._stream(transport.BodyReader(response, request.url, expected), part, request.url)
                if self.cancel_event.is_set() or not job.claim(Owner.WORKER):
                    raise DownloadCancelledError("cancelled", url=redact_url(request.url))
                return part.commit()
            except BaseException:
                part.discard()
                raise
        finally:
            job.response = None
            transport.close(response)

    def _stream(self, reader: transport.BodyReader, part: PartFile, url: str) -> None:
        """Copy the body into the part file: the hot loop, kept to O(1) work per chunk."""
        read, write, size = reader.read, part.write, self.chunk_size
        add_bytes, cancelled = self.tracker.add_bytes, self.cancel_event.is_set
        emitter = self.emitter
        shown = redact_url(url) if emitter.is_listening(ChunkDownloaded) else url
        while data := read(size):
            write(data)
            add_bytes(url, len(data))
            if emitter.is_listening(ChunkDownloaded):
                emitter.emit(ChunkDownloaded(
                    url=shown, bytes_downloaded=len(data), total_downloaded=reader.received,
                    total_bytes=reader.expected))
            if cancelled():
                raise DownloadCancelledError("cancelled", url=redact_url(url))

    def _destination(self, job: DownloadJob, response: requests.Response) -> Path:
        request = job.request
        name = request.filename
        if name is None:
            disposition = response.headers.get("Content-Disposition")
            name = parse_content_disposition(disposition) if disposition else None
        if name is None:
            name = name_from_url(request.url) or DEFAULT_NAME
        final = request.destination(name)
        if final != job.claimed_path:
            if job.claimed_path is not None:
                self._claims.release(job.claimed_path, job.url)
            self._claims.claim(final, job.url)
            job.claimed_path = final
        return final

    def _settle(self, job: DownloadJob, status: DownloadStatus, error: DownloadError, attempts: int) -> None:
        """Record a failure or cancellation, unless a shutdown already settled the job."""
        if job.claimed_path is not None:
            self._claims.release(job.claimed_path, job.url)
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
        info = self.tracker.mark_finished(job.url, DownloadStatus.COMPLETED, path=path)
        if self.emitter.is_listening(DownloadCompleted):
            self.emitter.emit(DownloadCompleted(
                url=redact_url(job.url), path=path, bytes_downloaded=info.bytes_downloaded,
                elapsed=info.elapsed or 0.0, attempts=info.attempts))

