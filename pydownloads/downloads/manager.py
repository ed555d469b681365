"""The facade users hold: a priority queue feeding a pool of worker threads."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import queue as queue_module
import threading
import time
from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import requests

from pydownloads.domain.errors import DownloadCancelledError
from pydownloads.domain.models import DownloadStatus, FileConfig
from pydownloads.domain.redact import get_logger
from pydownloads.downloads.feeder import JournalQueue
from pydownloads.downloads.job import DownloadJob, NameClaims, Owner
from pydownloads.downloads.journaled import add_journaled, as_items, new_jobs
from pydownloads.downloads.queue import PriorityDownloadQueue
from pydownloads.downloads.resources import (
    check_collaborators,
    check_timeout,
    open_journal,
    open_limiter,
    open_session,
    prepare_folder,
    resolve_settings,
)
from pydownloads.downloads.retry import RetryHandler
from pydownloads.downloads.settings import DEFAULT_CANCEL_GRACE as DEFAULT_CANCEL_GRACE  # their old home
from pydownloads.downloads.settings import DEFAULT_MAX_WORKERS as DEFAULT_MAX_WORKERS
from pydownloads.downloads.settings import DownloadSettings, fit_host_cap
from pydownloads.downloads.slots import WorkerSlots, start_threads
from pydownloads.downloads.worker import DownloadWorker
from pydownloads.events.emitter import EventEmitter
from pydownloads.events.types import DownloadCancelled, DownloadQueued
from pydownloads.tracking.tracker import DownloadTracker

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from pydownloads.downloads.settings import Options
    from pydownloads.progress import ProgressDisplay

logger = get_logger(__name__)

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
    :param max_workers: downloads running at once; default (or None) 4.
    :param settings: every setting at once, as a :class:`DownloadSettings` (what the command
        and Dask build); then no keyword setting may be given (nor ``max_workers``): vary it
        with ``dataclasses.replace`` instead.  Default: built from the keywords below, which
        :meth:`DownloadSettings.from_options` takes too.
    :param tracker: where state goes; default: a new DownloadTracker (``manager.tracker``).
    :param session: a requests Session to use as given (auth, proxies, adapters); the manager
        then leaves its retry adapter alone and does not close it.  Default: a pooled Session
        with urllib3 Retry built from ``retry_config``, closed with the manager.
    :param emitter: where events go (``manager.worker.emitter``); default: a new one.

    Keyword settings (``settings.…`` says where each lands):

    :param retry_config: retries of both layers; default: RetryConfig().
    :param timeout: seconds, or (connect, read) seconds; default (10, 60).
    :param chunk_size: bytes read and written at a time.
    :param cancel_grace: seconds ``shutdown(wait_for_current=False)`` waits for in-flight
        downloads to stop before it declares them cancelled.
    :param headers: headers for every request (a FileConfig's own headers win), e.g.
        ``{"User-Agent": ...}``.
    :param proxies: ``{"http": url, "https": url}`` as requests takes them; they win over
        the environment's.
    :param trust_env: read proxies, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE`` (else ``CURL_CA_BUNDLE``)
        and ``$NETRC``/``~/.netrc`` as a requests Session does (True, the default), once per host;
        False: explicit arguments only.  Explicit ``proxies``, ``verify``, ``netrc`` win over them.
    :param auth: ``(user, password)``, sent as the server's 401 asks (Digest or Basic), or an
        AuthBase used as given; dropped on a redirect to another host, port or scheme.
    :param cookies: a cookie jar (e.g. a loaded ``http.cookiejar.MozillaCookieJar``); each
        cookie goes only where its domain and path say.
    :param verify: TLS certificates are verified (True, the default), against a CA bundle
        (a path), or not at all (False: logged as a warning at every manager start).  A path
        or False wins over a CA bundle of the environment.
    :param netrc: credentials per host when ``auth`` is not given: True (the default) reads
        ``$NETRC`` or ``~/.netrc`` with ``trust_env``; a path reads that file; False none.
    :param auth_no_challenge: Basic before any challenge over plain HTTP too (as wget's option).

    Not applied to a given ``session`` (configure it yourself): ``headers``, ``proxies``,
    ``trust_env``, ``auth``, ``cookies``, ``verify``, ``netrc``, ``auth_no_challenge``.

    :param max_segments: most parallel ranges one file is split into when the server
        supports ranges (``FileConfig.segments`` overrides it per file).
    :param min_segment_size: no range is smaller; files under twice this size use one connection.
    :param max_connections_per_host: connections open at once to one host, over files and
        segments.  Default: never below what the run asks, the largest of 8, ``max_workers``,
        ``max_segments`` and the ``segments`` of any FileConfig queued (up to 32; raised for
        the run, on every host, when such a file is queued); given, it caps everything.
    :param rate_limit: bytes per second over all downloads (``FileConfig.rate_limit``: per file).
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
    :param retry_failed: with ``state_file``, retry what an earlier run failed (else kept failed).
    :param progress: show progress bars (``tqdm.auto``: widgets in Jupyter) until shutdown;
        for options, attach a ``pydownloads.progress.ProgressDisplay`` yourself instead.
    :param adaptive_workers: True (default): fewer downloads at once while the process is
        bound by its interpreter and that costs no throughput; False: ``max_workers`` always.
    :raises InvalidArgumentError: a bad setting or collaborator, or ``settings`` with a
        keyword setting (checked before the folder is created or anything is opened).
    :raises TypeError: a keyword that is not a setting.

    Use it as a context manager: leaving the block normally downloads everything queued and
    then stops; leaving it by an exception (Ctrl-C included) cancels at once.  In between,
    :meth:`join` waits for what is queued.  (``pydownloads.download`` does all of it at once.)

    Threading: ``add_to_queue`` and ``shutdown`` may be called from any thread; after
    ``shutdown`` the manager refuses new work.
    """

    def __init__(
        self,
        download_dir: str | PathLike[str] = Path("downloads"),
        max_workers: int | None = None,
        *,
        settings: DownloadSettings | None = None,
        tracker: DownloadTracker | None = None,
        session: requests.Session | None = None,
        emitter: EventEmitter | None = None,
        **options: Unpack[Options],
    ) -> None:
        self.settings = settings = resolve_settings(settings, max_workers, options)
        check_collaborators(tracker=tracker, emitter=emitter, session=session)
        self.download_dir = prepare_folder(download_dir)
        self.max_workers = settings.max_workers
        self.tracker = tracker if tracker is not None else DownloadTracker()
        # Its own event: two managers built from the same settings never cancel each other.
        transfer = dataclasses.replace(settings.transfer, cancel_event=threading.Event())
        self._cancel = transfer.cancel_event
        emitter = emitter if emitter is not None else EventEmitter()
        self._progress: ProgressDisplay | None = None  # made when the first downloads are queued
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._state = _State.OPEN
        self._stopping = threading.Event()
        self._active: set[DownloadJob] = set()
        self._threads: list[threading.Thread] = []
        self._slots = WorkerSlots(settings.max_workers, lambda: self.tracker.get_stats().bytes_downloaded,
                                  adaptive=settings.adaptive_workers)
        with contextlib.ExitStack() as opened:
            self._limiter = open_limiter(opened, settings)
            connection = open_session(opened, settings, session, self._cancel)
            self._session, self._watch = connection.session, connection.watch
            # Every option was checked before: a bad one never leaves the state file locked,
            # and a failure from here on closes it with the rest.
            self._journal = open_journal(opened, settings.journal, self.tracker)
            self.worker = DownloadWorker(
                client=self._session, retry_handler=RetryHandler(settings.retry_config, emitter=emitter),
                emitter=emitter, tracker=self.tracker, settings=transfer, retry_hooks=connection.hooks,
                watch=self._watch, limiter=self._limiter, rate_limit=settings.politeness.rate_limit,
            )
            self._names = NameClaims(self.worker.claims, rename=transfer.on_existing == "rename")
            self.queue = self._new_queue()
            self._resources = opened.pop_all()  # closed by the shutdown, in reverse order
        if self._journal is not None and self.tracker.get_stats().pending:  # an earlier run left work
            with self._lock:
                self._start_workers()

    def _new_queue(self) -> PriorityDownloadQueue[DownloadJob]:
        if self._journal is None:
            return PriorityDownloadQueue()
        return JournalQueue(self._journal, self.tracker, self.download_dir, names=self._names,
                            window=max(_MIN_WINDOW, 4 * self.max_workers), stopping=self._stopping)

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
        files = fit_host_cap(as_items(files), self.settings, self._limiter)
        if self._journal is not None:
            return add_journaled(files, self._journal, tracker=self.tracker, emitter=self.emitter,
                                 retry_failed=self.settings.journal.retry_failed, check_open=self._check_open_now,
                                 start_workers=self._start_workers_if_open)
        jobs = new_jobs(files, self.download_dir)
        with self._lock:
            self._check_open()
            queued = [job for job in jobs if self._register(job)]
            self._names.reserve(queued)
        # Queued events go out before any thread can start the download (and outside the lock).
        if self.emitter.is_listening(DownloadQueued):
            for job in queued:
                self.emitter.emit(DownloadQueued(url=job.url, priority=job.priority))
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

    def _check_open_now(self) -> None:
        with self._lock:
            self._check_open()

    def _start_workers_if_open(self) -> None:
        with self._lock:
            if self._state is _State.OPEN:
                self._start_workers()

    def _check_open(self) -> None:
        if self._state is not _State.OPEN:
            raise RuntimeError("this DownloadManager has been shut down")

    def _register(self, job: DownloadJob) -> bool:
        if self.tracker.register(job.url):
            return True
        logger.warning("%s is already queued; skipped", job.url)
        return False

    def _start_workers(self) -> None:
        if self.settings.progress and self._progress is None:
            # Imported here: tqdm (and asyncio, which tqdm.auto loads) cost every process
            # 20-35 ms and 2-3 MiB otherwise, bars or not.
            from pydownloads.progress import ProgressDisplay

            self._progress = ProgressDisplay(self.emitter, self.tracker, max_bars=self.max_workers)
        if not self._threads:
            self._threads = start_threads(self._consume, self.max_workers)

    # -- the worker threads ----------------------------------------------------------------

    def _consume(self) -> None:
        with self._slots.held():  # only as many threads transfer at once as add throughput
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
                self._slots.keep()

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
            self.emitter.emit(DownloadCancelled(url=job.url, bytes_downloaded=info.bytes_downloaded))
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
        self._slots.close()
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
        deadline = time.monotonic() + float(self.settings.cancel_grace)
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
        self._resources.close()  # the journal, then the session and its watch, if the manager opened them

    def connection_waits(self) -> tuple[int, dict[str, int]]:
        """The per-host cap, and per host how many times a download waited for it so far."""
        return self._limiter.limit, self._limiter.waits()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued download is final: True when all finished (completed,
        failed or cancelled), False when ``timeout`` seconds passed first (None: no limit).

        ``manager.queue.join()`` with a timeout, waiting on a condition (no polling); the
        manager stays open for more.  :raises InvalidArgumentError: a bad ``timeout``.
        """
        return self.queue.join(check_timeout(timeout))

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
