"""Run a batch of downloads for the command line, with Ctrl-C handled in two steps.

Ctrl-C (SIGINT) is caught only while a batch runs.  The handler does nothing but post a
message on a ``queue.SimpleQueue`` (whose ``put`` is documented as safe to call re-entrantly,
from a signal handler included): a handler that called into the manager could deadlock on
a lock the interrupted main thread holds.  The main thread reads those messages and acts:
the first Ctrl-C starts a graceful shutdown (in-flight downloads finish, the rest is
cancelled) in a helper thread, so that the main thread stays free for the second Ctrl-C,
which stops everything at once.  A helper thread waits on ``manager.queue.join()`` and posts
when the batch is over.
"""

from __future__ import annotations

import ctypes
import dataclasses
import enum
import queue
import signal
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import urllib3.exceptions

from pydownloads.cli._args import DEFAULT_WORKERS
from pydownloads.cli._report import Console, Outcome
from pydownloads.domain.models import DownloadInfo, DownloadStatus, FileConfig
from pydownloads.downloads.manager import DownloadManager
from pydownloads.downloads.settings import DownloadSettings
from pydownloads.progress import ProgressDisplay

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from pydownloads.downloads.settings import Options


class _Message(enum.Enum):
    INTERRUPT = "interrupt"
    DONE = "done"


def command_settings(max_workers: int = DEFAULT_WORKERS, **options: Unpack[Options]) -> DownloadSettings:
    """The DownloadSettings of a command run: the library's, from the same keywords (which
    trust the environment, proxies, CA bundle and ``.netrc``, as curl and wget do).

    :raises InvalidArgumentError: a value the library refuses.
    """
    return DownloadSettings.from_options(max_workers, **options)


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """How the command runs a batch: the folder, the settings the DownloadManager gets, and
    what only the command does (its own progress bars)."""

    download_dir: Path
    download: DownloadSettings = field(default_factory=command_settings)
    progress: bool = False

    @property
    def workers(self) -> int:
        """Downloads at once (``download.max_workers``)."""
        return self.download.max_workers

    @property
    def state_file(self) -> Path | None:
        """The journal that lets a rerun continue (None: no state is kept)."""
        given = self.download.journal.state_file
        return None if given is None else Path(given)


@dataclass
class _Stops:
    """What the interrupts of one run did."""

    presses: int = 0
    graceful: threading.Thread | None = None


def run(configs: Iterable[FileConfig], settings: RunSettings, console: Console) -> Outcome:
    """Download ``configs`` and return how each ended, in their order.

    With a state file, ``configs`` is read once, in batches (a generator over millions of
    lines is never held), and the outcome reads the downloads back from the state file as
    it is reported: memory stays flat in the number of files.

    :raises InvalidArgumentError: the settings or an item were refused (nothing started).
    :raises FileSystemError: the download folder cannot be created.
    :raises StateFileError: the state file is busy, corrupt or of a newer pydownloads.
    """
    inbox: queue.SimpleQueue[_Message] = queue.SimpleQueue()
    started = time.monotonic()
    started_at = time.time()  # the tracker's clock: what finished before, an earlier run settled
    stops = _Stops()
    given = None if settings.state_file is not None else list(configs)  # without: the tracker holds them all
    with _interrupts_to(inbox), warnings.catch_warnings():
        if settings.download.session.verify is False:  # said once, loudly, before the run; not once per host
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        manager = DownloadManager(settings.download_dir, settings=settings.download)
        display: ProgressDisplay | None = None
        finished = False
        try:
            manager.emitter.on("worker.retrying", console.on_retrying)
            if settings.progress:
                display = console.display = ProgressDisplay(
                    manager.emitter, manager.tracker, max_bars=settings.workers)
            manager.add_to_queue(configs if given is None else given)
            _wait(manager, inbox, console, stops)
            finished = True
        finally:
            # After an error or a second Ctrl-C, nothing waits for the downloads in flight.
            graceful = finished and stops.presses < 2
            manager.shutdown(wait_for_current=graceful)
            if graceful and stops.graceful is not None:
                stops.graceful.join()
            console.display = None
            if display is not None:
                display.close()
    downloads: Iterable[DownloadInfo]
    carried_over: Iterable[DownloadInfo]
    if given is None:  # read back from the state file as they are reported
        downloads = _JournalView(manager, started_at)
        carried_over = _JournalView(manager, started_at, carried=True)
    else:
        downloads, carried_over = _results(manager, given, started_at)
    cap, waits = manager.connection_waits()
    return Outcome(downloads=downloads, elapsed=time.monotonic() - started,
                   interrupted=stops.presses > 0, stopped_at_once=stops.presses > 1,
                   started_at=started_at, state_file=settings.state_file, carried_over=carried_over,
                   host_cap=cap, host_waits=waits)


def _wait(manager: DownloadManager, inbox: queue.SimpleQueue[_Message], console: Console, stops: _Stops) -> None:
    """Block until the batch is over, acting on each Ctrl-C as it comes."""
    joiner = threading.Thread(
        target=_join_then_post, args=(manager, inbox), name="pydownloads-cli-join", daemon=True)
    joiner.start()
    while inbox.get() is _Message.INTERRUPT:
        stops.presses += 1
        if stops.presses == 1:
            console.interrupted("Interrupted: letting the downloads in progress finish and cancelling the rest "
                          "(press Ctrl-C again to stop at once).")
            stops.graceful = threading.Thread(
                target=manager.shutdown, kwargs={"wait_for_current": True}, name="pydownloads-cli-stop", daemon=True)
            stops.graceful.start()
        elif stops.presses == 2:
            console.interrupted("Stopping at once.")
            manager.shutdown(wait_for_current=False)
        else:  # a third: whatever still holds the batch up, leave
            raise KeyboardInterrupt
    joiner.join()


def _join_then_post(manager: DownloadManager, inbox: queue.SimpleQueue[_Message]) -> None:
    manager.queue.join()
    inbox.put(_Message.DONE)


@contextmanager
def _interrupts_to(inbox: queue.SimpleQueue[_Message]) -> Iterator[None]:
    """Post INTERRUPT to ``inbox`` on SIGINT while the block runs; then restore the handler.

    Outside the main thread (where Python allows no signal handlers) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: object) -> None:
        inbox.put(_Message.INTERRUPT)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


class _JournalView:
    """The downloads of a run with a state file, read back from it each time they are
    iterated (page by page: O(1) memory): the run's own in input order, or (``carried``)
    those an earlier run left that this one finished.  A download not final after the run
    is reported CANCELLED (see :func:`_results`)."""

    def __init__(self, manager: DownloadManager, started_at: float, *, carried: bool = False) -> None:
        self._manager, self._started_at, self._carried = manager, started_at, carried

    def __iter__(self) -> Iterator[DownloadInfo]:
        tracker = self._manager.tracker
        if self._carried:
            return tracker.iter_carried(self._started_at)
        return (_settled(info, info.url) for info in tracker.iter_queued())


def _results(
    manager: DownloadManager, configs: Sequence[FileConfig], started_at: float
) -> tuple[list[DownloadInfo], list[DownloadInfo]]:
    """How each of ``configs`` ended (in their order), and the downloads not among them that
    this run finished (left unfinished in the state file by an earlier run).

    The batch is over: a download not final now (never started, or cut off by a hard stop
    before its state was written) did not finish, and is reported CANCELLED.
    """
    everything = manager.tracker.get_all_downloads()  # one read of the journal, not one per URL
    downloads = [_settled(everything.pop(config.url, None), config.url) for config in configs]
    carried_over = [info for info in everything.values()
                    if info.status.is_final and info.finished_at is not None and info.finished_at >= started_at]
    return downloads, carried_over


def _settled(info: DownloadInfo | None, url: str) -> DownloadInfo:
    if info is None:
        return DownloadInfo(url=url, status=DownloadStatus.CANCELLED)
    return info if info.status.is_final else dataclasses.replace(info, status=DownloadStatus.CANCELLED)


#: glibc's ``mallopt`` parameter for the most malloc arenas (malloc.h: ``M_ARENA_MAX``).
_M_ARENA_MAX = -8


def few_malloc_arenas(arenas: int = 2) -> bool:
    """Cap the C allocator's arenas at ``arenas`` for this process (glibc; elsewhere nothing).

    By default glibc gives each thread that meets contention an arena of its own (up to 8
    per core); with 16 download threads and SQLite's page cache churning through them, each
    arena kept some freed memory, and the command's peak grew by about 0.03 KiB per file
    (71 MiB for 1,000,000 files, 51 with 2 arenas at 300,000: docs/BENCHMARKS.md).  Call it
    before the threads start.  Returns True if the cap was set.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): their allocators differ
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))


def threads_holding_exit() -> bool:
    """True while a thread that Python waits for at exit still runs.

    After a hard stop, a download thread blocked on a server that sends nothing ends only at
    its read timeout; the command does not wait for it.
    """
    main = threading.main_thread()
    return any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())
