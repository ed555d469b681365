"""The facade users hold: a priority queue feeding a pool of worker threads."""

from __future__ import annotations

import enum
import http.cookiejar
import itertools
import logging
import os
import queue as queue_module
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import requests
import requests.auth

from pydownloads.domain.errors import DownloadCancelledError, FileSystemError, InvalidArgumentError
from pydownloads.domain.models import DownloadStatus, FileConfig, check_count, check_rate, validate_url
from pydownloads.domain.retry import RetryConfig
from pydownloads.downloads.feeder import JournalQueue
from pydownloads.downloads.job import DownloadJob, DownloadRequest, Owner
from pydownloads.downloads.queue import PriorityDownloadQueue
from pydownloads.downloads.retry import RetryHandler
from pydownloads.downloads.settings import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_CONNECTIONS_PER_HOST,
    DEFAULT_MAX_SEGMENTS,
    DEFAULT_MIN_SEGMENT_SIZE,
    DEFAULT_MIN_SPEED,
    DEFAULT_MIN_SPEED_WINDOW,
    DEFAULT_TIMEOUT,
    TransferSettings,
)
from pydownloads.downloads.worker import DownloadWorker
from pydownloads.events.emitter import EventEmitter
from pydownloads.events.types import DownloadCancelled, DownloadQueued
from pydownloads.infrastructure import transport
from pydownloads.infrastructure.http import RetryHooks, build_session
from pydownloads.infrastructure.journal import Journal
from pydownloads.infrastructure.limits import HostLimiter
from pydownloads.infrastructure.redact import redact_url
from pydownloads.infrastructure.watch import ConnectionWatch
from pydownloads.tracking.tracker import DownloadTracker

if TYPE_CHECKING:
    from pydownloads.tracking.progress import ProgressDisplay

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_MAX_WORKERS = 4
#: How long a hard shutdown lets in-flight downloads notice it before it cancels them.
DEFAULT_CANCEL_GRACE = 1.0
#: Downloads journaled per transaction by add_to_queue with a state file.
_JOURNAL_BATCH = 5000
#: Fewest downloads held in memory, ready for the workers, with a state file.
_MIN_WINDOW = 64
#: How often an idle worker thread checks whether it should stop (stop markers wake it sooner).
_IDLE_POLL = 0.25


class _State(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class DownloadManager:
    """Downloads queued files with ``max_workers`` threads, highest priority first.

    :param download_dir: every file lands below this folder (created if missing).
    :param max_workers: downloads running at once.
    :param tracker: where state goes; default: a new DownloadTracker (``manager.tracker``).
    :param retry_config: retries of both layers; default: RetryConfig().
    :param session: a requests Session to use as given (auth, proxies, adapters); the manager
        then leaves its retry adapter alone and does not close it.  Default: a pooled Session
        with urllib3 Retry built from ``retry_config``, closed with the manager.
    :param emitter: where events go (``manager.worker.emitter``); default: a new one.
    :param timeout: seconds, or (connect, read) seconds; default (10, 60).
    :param chunk_size: bytes read and written at a time.
    :param cancel_grace: seconds ``shutdown(wait_for_current=False)`` waits for in-flight
        downloads to stop before it declares them cancelled.
    :param headers: headers for every request (a FileConfig's own headers win), e.g.
        ``{"User-Agent": ...}``.  Not applied to a given ``session``.
    :param proxies: ``{"http": url, "https": url}`` as requests takes them.  Not applied
        to a given ``session``.
    :param trust_env: let requests read proxies, CA bundle and ``.netrc`` from the
        environment (off: explicit arguments only; the CLI turns it on).
    :param auth: credentials for every request, as requests takes them (``(user, password)``
        for Basic); requests drops them on a redirect to another host, port or scheme.
    :param cookies: a cookie jar (e.g. a loaded ``http.cookiejar.MozillaCookieJar``); each
        cookie goes only where its domain and path say.
    :param verify: TLS certificates are verified (True, the default), against a CA bundle
        (a path), or not at all (False: logged as a warning at every manager start).

    Not applied to a given ``session`` (configure it yourself): ``headers``, ``proxies``,
    ``trust_env``, ``auth``, ``cookies``, ``verify``.

    :param max_segments: most parallel ranges one file is split into when the server
        supports ranges (``FileConfig.segments`` overrides it per file).
    :param min_segment_size: no range is smaller; files under twice this size use one
        connection.
    :param max_connections_per_host: connections open at once to one host, over files and
        segments; default: 8, or ``max_workers`` when more (so that the workers asked for
        are not silently halved on a single host).
    :param rate_limit: bytes per second over all downloads (``FileConfig.rate_limit`` adds
        a per-file limit).
    :param min_speed: a stream slower than this many bytes/s over ``min_speed_window``
        seconds fails (and is retried), so a server dripping bytes cannot hold a download;
        default 1,000 bytes/s over 60 s; None turns it off.  The wait for response headers
        is bounded separately, by connect + read timeout (or ``deadline`` if sooner).
    :param deadline: seconds a download may take in all, retries included.
    :param on_existing: a file already under the final name is ``"replace"``-d atomically
        (the default), ``"skip"``-ped (no request when the name is known beforehand), or
        kept while the download is saved as ``name (1).ext`` (``"rename"``).  A FileConfig
        with ``if_changed`` asks the server instead.
    :param state_file: keep every queued download and its state in this SQLite journal, so
        that a run killed at any moment continues where it stopped when started again with
        the same file: completed downloads whose file is intact are skipped, the others
        resume.  Memory then stays flat however many URLs are queued.
    :param retry_failed: with ``state_file``, downloads that failed in an earlier run are
        tried again (otherwise they keep their failure).
    :param progress: show tqdm progress bars (``tqdm.auto``: widgets in Jupyter, bars in a
        terminal) until the manager shuts down.  For options, attach
        ``pydownloads.progress.ProgressDisplay`` yourself instead.

    Use it as a context manager: leaving the block normally downloads everything queued and
    then stops; leaving it by an exception (Ctrl-C included) cancels at once.

    Threading: ``add_to_queue`` and ``shutdown`` may be called from any thread; after
    ``shutdown`` the manager refuses new work.
    """

    def __init__(
        self,
        download_dir: str | PathLike[str] = Path("downloads"),
        max_workers: int = DEFAULT_MAX_WORKERS,
        *,
        tracker: DownloadTracker | None = None,
        retry_config: RetryConfig | None = None,
        session: requests.Session | None = None,
        emitter: EventEmitter | None = None,
        timeout: transport.Timeout = DEFAULT_TIMEOUT,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        cancel_grace: float = DEFAULT_CANCEL_GRACE,
        headers: Mapping[str, str] | None = None,
        proxies: Mapping[str, str] | None = None,
        trust_env: bool = False,
        auth: tuple[str, str] | requests.auth.AuthBase | None = None,
        cookies: http.cookiejar.CookieJar | None = None,
        verify: bool | str = True,
        max_segments: int = DEFAULT_MAX_SEGMENTS,
        min_segment_size: int = DEFAULT_MIN_SEGMENT_SIZE,
        max_connections_per_host: int | None = None,
        rate_limit: float | None = None,
        min_speed: float | None = DEFAULT_MIN_SPEED,
        min_speed_window: float = DEFAULT_MIN_SPEED_WINDOW,
        deadline: float | None = None,
        progress: bool = False,
        on_existing: str = "replace",
        state_file: str | PathLike[str] | None = None,
        retry_failed: bool = False,
    ) -> None:
        if not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1:
            raise InvalidArgumentError(f"max_workers must be an int >= 1, not {max_workers!r}")
        if retry_config is not None and not isinstance(retry_config, RetryConfig):
            raise InvalidArgumentError(f"retry_config must be a RetryConfig, not {type(retry_config).__name__}")
        if isinstance(cancel_grace, bool) or not isinstance(cancel_grace, (int, float)) or not (
                0 <= cancel_grace < float("inf")):
            raise InvalidArgumentError(f"cancel_grace must be seconds >= 0, not {cancel_grace!r}")
        if max_connections_per_host is None:
            max_connections_per_host = max(DEFAULT_MAX_CONNECTIONS_PER_HOST, max_workers if isinstance(
                max_workers, int) else 0)
        check_count("max_connections_per_host", max_connections_per_host, minimum=1)
        for name, value, kind in (("tracker", tracker, DownloadTracker), ("emitter", emitter, EventEmitter),
                                  ("session", session, requests.Session)):
            if value is not None and not isinstance(value, kind):
                raise InvalidArgumentError(f"{name} must be a {kind.__name__}, not {type(value).__name__}")
        for name, flag in (("trust_env", trust_env), ("progress", progress), ("retry_failed", retry_failed)):
            if not isinstance(flag, bool):
                raise InvalidArgumentError(f"{name} must be True or False, not {flag!r}")
        check_rate("rate_limit", rate_limit)
        self._cancel = threading.Event()
        settings = TransferSettings(
            timeout=timeout, chunk_size=chunk_size, max_segments=max_segments, min_segment_size=min_segment_size,
            min_speed=min_speed, min_speed_window=min_speed_window, deadline=deadline, cancel_event=self._cancel,
            on_existing=on_existing,
        )
        self.download_dir = _prepare_folder(download_dir)
        self.max_workers = max_workers
        self.tracker = tracker if tracker is not None else DownloadTracker()
        self._retry_failed = bool(retry_failed)
        config = retry_config if retry_config is not None else RetryConfig()
        hooks = RetryHooks(config, self._cancel) if session is None else None
        self._owns_session = session is None
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self._watch = ConnectionWatch(header_timeout=connect + read) if session is None else None
        if session is None:
            session = build_session(pool_size=max_connections_per_host, config=config, hooks=hooks,
                                    watch=self._watch)
            try:
                _configure(session, headers, proxies, trust_env)
                _secure(session, auth, cookies, verify)
            except BaseException:
                session.close()
                raise
        self._session = session
        # The state file is opened last of all that can fail on the caller's options, so a
        # bad option never leaves it locked (open until the garbage collector came by).
        try:
            self._journal = Journal(Path(state_file)) if state_file is not None else None
        except BaseException:
            if self._owns_session:
                session.close()
            raise
        if self._journal is not None:
            try:
                self._journal.requeue_unfinished(retry_failed=self._retry_failed)
                self.tracker.bind_store(self._journal)
            except BaseException:
                self._journal.close()  # the file stays unlocked for whoever fixes the cause
                if self._owns_session:
                    session.close()
                raise
        emitter = emitter if emitter is not None else EventEmitter()
        self.worker = DownloadWorker(
            client=self._session, retry_handler=RetryHandler(config, emitter=emitter), emitter=emitter,
            tracker=self.tracker, settings=settings, retry_hooks=hooks, watch=self._watch,
            limiter=HostLimiter(max_connections_per_host), rate_limit=rate_limit,
        )
        self._show_progress = bool(progress)
        self._progress: ProgressDisplay | None = None  # made when the first downloads are queued
        self._cancel_grace = float(cancel_grace)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._state = _State.OPEN
        self._stopping = threading.Event()
        self._active: set[DownloadJob] = set()
        self._threads: list[threading.Thread] = []
        self.queue: PriorityDownloadQueue[DownloadJob]
        if self._journal is None:
            self.queue = PriorityDownloadQueue()
        else:
            self.queue = JournalQueue(self._journal, self.tracker, self.download_dir,
                                      window=max(_MIN_WINDOW, 4 * max_workers), stopping=self._stopping)
            if self.tracker.get_stats().pending:  # an earlier run left work: go on with it
                with self._lock:
                    self._start_workers()

    @property
    def emitter(self) -> EventEmitter:
        """The event emitter (same as ``manager.worker.emitter``)."""
        return self.worker.emitter

    # -- queueing --------------------------------------------------------------------------

    def add_to_queue(self, files: Iterable[FileConfig | str]) -> int:
        """Queue downloads; returns how many were queued.

        Plain strings are URLs with default options.  Every item is checked before any is
        queued.  A URL already pending or in progress is skipped (logged).

        :raises InvalidArgumentError: an item is not a valid FileConfig or URL, or its
            destination would leave ``download_dir``; nothing of the batch is queued.
        :raises RuntimeError: the manager was shut down.
        """
        if isinstance(files, (str, FileConfig)):
            files = [files]
        elif not isinstance(files, Iterable):
            raise InvalidArgumentError(f"add_to_queue takes FileConfigs or URLs, not {type(files).__name__}")
        if self._journal is not None:
            return self._add_journaled(files, self._journal)
        configs = [item if isinstance(item, FileConfig) else _as_config(item) for item in files]
        jobs = [DownloadJob(DownloadRequest.from_config(c, self.download_dir), c.priority) for c in configs]
        with self._lock:
            self._check_open()
            queued = [job for job in jobs if self._register(job)]
        # Queued events go out before any thread can start the download (and outside the lock).
        if self.emitter.is_listening(DownloadQueued):
            for job in queued:
                self.emitter.emit(DownloadQueued(url=redact_url(job.url), priority=job.priority))
        with self._lock:
            open_ = self._state is _State.OPEN
            if open_:
                for job in queued:
                    self.queue.put(job, job.priority)
                # Threads start once the first batch is in, so that it comes out in priority order.
                self._start_workers()
        if not open_:  # a shutdown came while the events went out
            for job in queued:
                self._cancel_job(job, queued=False)
            self._check_open()
        return len(queued)

    def _add_journaled(self, files: Iterable[FileConfig | str], journal: Journal) -> int:
        """Journal ``files`` in batches (any iterable, a generator over millions of lines
        included); the workers read them back from the journal in priority order."""
        queued = 0
        for batch in _batches(files, _JOURNAL_BATCH):
            configs: list[FileConfig | str] = []
            for item in batch:  # URLs stay strings: a FileConfig each would double the cost
                if isinstance(item, FileConfig):
                    DownloadRequest.check(item)
                    configs.append(item)
                elif isinstance(item, str):
                    configs.append(validate_url(item))
                else:
                    configs.append(_as_config(item))
            with self._lock:
                self._check_open()
            results = journal.add(configs, retry_failed=self._retry_failed)
            moves: Counter[tuple[str | None, str]] = Counter((before, now) for _, before, now in results)
            moves.pop(("pending", "pending"), None)  # journaled already and waiting
            for (before, now), count in moves.items():
                if before != now:  # not: completed and intact, or failed and not retried
                    self.tracker.count_queued(before, now, count)
                    queued += count
            if self.emitter.is_listening(DownloadQueued):
                for config, (_, before, now) in zip(configs, results, strict=True):
                    if before != now:
                        url, priority = (config, 0) if isinstance(config, str) else (config.url, config.priority)
                        self.emitter.emit(DownloadQueued(url=redact_url(url), priority=priority))
            with self._lock:
                if self._state is _State.OPEN:
                    self._start_workers()
        return queued

    def _check_open(self) -> None:
        if self._state is not _State.OPEN:
            raise RuntimeError("this DownloadManager has been shut down")

    def _register(self, job: DownloadJob) -> bool:
        if self.tracker.register(job.url):
            return True
        logger.warning("%s is already queued; skipped", redact_url(job.url))
        return False

    def _start_workers(self) -> None:
        if self._show_progress and self._progress is None:
            # Imported here: tqdm (and asyncio, which tqdm.auto loads) cost every process
            # 20-35 ms and 2-3 MiB otherwise, bars or not.
            from pydownloads.tracking.progress import ProgressDisplay

            self._progress = ProgressDisplay(self.emitter, self.tracker, max_bars=self.max_workers)
        # Daemon threads of our own rather than a ThreadPoolExecutor: the interpreter joins
        # executor threads at exit before any hook of ours could stop them, so a manager its
        # user forgot to close would hang the program.  A closed manager joins its threads.
        if not self._threads:
            for number in range(self.max_workers):
                thread = threading.Thread(target=self._consume, name=f"pydownloads-{number}", daemon=True)
                thread.start()
                self._threads.append(thread)

    # -- the worker threads ----------------------------------------------------------------

    def _consume(self) -> None:
        while True:
            try:
                job = self.queue.get(timeout=_IDLE_POLL)
            except queue_module.Empty:
                if self._stopping.is_set():  # a stop marker was missed: stop anyway
                    return
                continue
            if job is None:
                return
            if self._stopping.is_set():
                self._cancel_job(job)
                continue
            self._run(job)

    def _run(self, job: DownloadJob) -> None:
        with self._lock:
            self._active.add(job)
        try:
            self.worker.run(job)
        finally:
            with self._lock:
                self._active.discard(job)
                self._idle.notify_all()
            if job.owner is Owner.WORKER:
                self.queue.task_done()

    def _cancel_job(self, job: DownloadJob, *, queued: bool = True) -> None:
        """Settle ``job`` as CANCELLED unless its worker settled it first."""
        if not job.claim(Owner.SHUTDOWN):
            return
        info = self.tracker.mark_finished(
            job.url, DownloadStatus.CANCELLED, error=DownloadCancelledError("cancelled by shutdown"))
        if self.emitter.is_listening(DownloadCancelled):
            self.emitter.emit(DownloadCancelled(url=redact_url(job.url), bytes_downloaded=info.bytes_downloaded))
        if queued:
            self.queue.task_done()

    # -- stopping --------------------------------------------------------------------------

    def shutdown(self, wait_for_current: bool = True) -> None:
        """Stop: everything still queued ends CANCELLED; ``queue.join()`` returns.

        :param wait_for_current: True lets in-flight downloads finish; False stops them
            within about ``cancel_grace`` seconds (they end CANCELLED).

        Idempotent; a later call may turn a graceful shutdown into a hard one.
        """
        with self._lock:
            if self._state is _State.CLOSED:
                return
            self._state = _State.CLOSING
        self._stopping.set()
        for job in self.queue.drain():
            self._cancel_job(job)
        if not wait_for_current:
            self._cancel_in_flight()
        self._stop_threads(wait=wait_for_current)

    def _cancel_in_flight(self) -> None:
        self._cancel.set()
        if self._watch is not None:
            self._watch.abort_all()  # requests still waiting for their headers
        with self._lock:
            active = list(self._active)
        for job in active:
            abort = job.abort
            if abort is not None:
                abort()
        deadline = time.monotonic() + self._cancel_grace
        with self._idle:
            while self._active and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
            stuck = list(self._active)
        for job in stuck:  # blocked before a response came; its thread ends at its timeout
            self._cancel_job(job)

    def _stop_threads(self, *, wait: bool) -> None:
        if self._threads:
            for _ in self._threads:
                self.queue.put_stop()
            if wait:
                for thread in self._threads:
                    if thread is not threading.current_thread():  # shutdown from an event handler
                        thread.join()
        with self._lock:
            self._state = _State.CLOSED
        if self._progress is not None:
            self._progress.close()
        if self._journal is not None:
            self._journal.close()
        if self._owns_session:
            self._session.close()
        if self._watch is not None:
            self._watch.close()

    def close(self) -> None:
        """Download everything queued, then stop (what leaving the ``with`` block does)."""
        try:
            self.queue.join()
        except BaseException:
            self.shutdown(wait_for_current=False)
            raise
        self.shutdown(wait_for_current=True)

    def __enter__(self) -> DownloadManager:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.shutdown(wait_for_current=False)


def _configure(
    session: requests.Session, headers: Mapping[str, str] | None, proxies: Mapping[str, str] | None, trust_env: bool
) -> None:
    session.trust_env = bool(trust_env)
    if headers is not None:
        FileConfig(url="http://headers.check/", headers=headers)  # same validation as per-file headers
        session.headers.update(headers)
    if proxies is not None:
        if not isinstance(proxies, Mapping) or not all(isinstance(v, str) for v in proxies.values()):
            raise InvalidArgumentError("proxies must map a scheme to a proxy URL string")
        session.proxies.update(proxies)


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _secure(
    session: requests.Session, auth: object, cookies: http.cookiejar.CookieJar | None, verify: bool | str
) -> None:
    if auth is not None:
        if not (isinstance(auth, requests.auth.AuthBase) or (
                isinstance(auth, tuple) and len(auth) == 2 and all(isinstance(x, str) for x in auth))):
            raise InvalidArgumentError("auth must be (user, password) or a requests AuthBase")
        session.auth = auth
    if cookies is not None:
        if not isinstance(cookies, http.cookiejar.CookieJar):
            raise InvalidArgumentError(f"cookies must be a CookieJar, not {type(cookies).__name__}")
        for cookie in cookies:
            session.cookies.set_cookie(cookie)
    if not isinstance(verify, (bool, str)):
        raise InvalidArgumentError(f"verify must be True, False or a CA bundle path, not {verify!r}")
    if verify is False:
        logger.warning("TLS certificate verification is OFF: anyone on the path can alter the downloads")
    session.verify = verify


def _as_config(item: object) -> FileConfig:
    if isinstance(item, str):
        return FileConfig(url=item)
    raise InvalidArgumentError(f"add_to_queue takes FileConfig objects or URL strings, not {type(item).__name__}")


def _prepare_folder(folder: str | PathLike[str]) -> Path:
    if not isinstance(folder, (str, PathLike)):
        raise InvalidArgumentError(f"download_dir must be a path, not {type(folder).__name__}")
    path = Path(folder).expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FileSystemError(f"cannot create download_dir {path}: {error.strerror or error}", cause=error) from error
    if not path.is_dir():
        raise FileSystemError(f"download_dir {path} is not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise FileSystemError(f"download_dir {path} is not writable")
    return path
