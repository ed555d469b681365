"""Run one download job across a Dask cluster (``pip install 'pydownloads[dask]'``)::

    from distributed import Client
    from pydownloads.distributed import download_on_dask

    with Client("tcp://scheduler:8786"):
        results = download_on_dask(urls, "/shared/downloads", shard_size=1000, max_workers=16)
    print(results.stats, results.failed)

The shards' managers take the same settings as a local one: the DownloadManager keywords
(``max_workers=16`` above), or one :class:`~pydownloads.DownloadSettings` (``settings=``),
which travels to the workers pickled.

The files are cut into shards as they are read (any iterable: a generator over a file of
millions of lines is never held whole); each shard is one Dask task running a regular
:class:`~pydownloads.DownloadManager` on a worker, with its own threads, per-host limits and
a state file of its own in ``download_dir/.pydownloads-shards/<job>/``; the client writes
each shard's list of files there (not in the task graph).  At most ``max_in_flight`` shard
tasks are submitted and not finished at once.  ``download_dir`` must be a folder every
worker and the client can write, the same path on each (a shared file system).  The
results stay in the shards' state files and are read on demand (``results.stats`` and
``results.failed`` at once, ``results.downloads`` record by record).

Reruns continue.  A shard's state file is named from the job (``job=``, or derived from the
first shard) and from what the shard holds: the same call again, after the client died
(laptop closed, kernel restarted, Ctrl-C), opens the same state files, skips the files
already completed (no request) and resumes the partial ones.  A shard task of the dead
client may still run on a worker: the rerun's task has the same key, so the scheduler runs
it only once while it still knows it; otherwise the rerun's task waits (up to
``earlier_wait`` seconds) for the older one to let go of the state file, then finds its
work done.  ``pydownloads status DIR`` sums a job's state files.

Faults: if a worker dies mid-shard, Dask runs the shard again elsewhere; its state file
makes the rerun skip the files already completed (no request) and resume the partial ones.
A shard never fails as a whole because of a download: failures come back per URL.

Politeness: a ``max_connections_per_host`` given holds for the whole job, over every shard
and worker (one ``distributed.Semaphore`` per host; a dead worker's leases come back after
Dask's ``distributed.scheduler.locks.lease-timeout``).  The default cap (none given) and
``rate_limit`` bound each shard task: ``T`` tasks at once may open ``T`` times the default
connections to a host, and move ``T`` times the rate.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sized
from os import PathLike
from pathlib import Path
from typing import Any

try:
    import distributed
except ImportError as error:  # pragma: no cover - exercised only without Dask
    raise ImportError(
        "pydownloads.distributed needs Dask's distributed scheduler: pip install 'pydownloads[dask]'"
    ) from error

from tqdm.auto import tqdm

from pydownloads._dask_gate import share_host_cap
from pydownloads._shards import (
    ShardDigest,
    ShardedDownloads,
    check_job,
    read_shard_input,
    shard_file,
    shard_input,
    state_file_busy,
    summary_stats,
    wait_until_free,
    write_shard_input,
)
from pydownloads.domain.errors import InvalidArgumentError, StateFileError
from pydownloads.domain.models import FileConfig, validate_url
from pydownloads.downloads.job import DownloadRequest
from pydownloads.downloads.manager import DownloadManager
from pydownloads.downloads.settings import DownloadSettings
from pydownloads.events.types import ChunkDownloaded, DownloadCompleted, DownloadFailed
from pydownloads.infrastructure.journal_reader import JournalSummary, read_summary
from pydownloads.results import DownloadResults

__all__ = ["DEFAULT_EARLIER_WAIT", "DEFAULT_SHARD_SIZE", "DistributedResults", "DownloadResults",
           "download_on_dask"]

DEFAULT_SHARD_SIZE = 500
#: Seconds a shard waits for a task of an earlier call still running it (see the module's doc).
DEFAULT_EARLIER_WAIT = 3600.0
#: How often a shard sends its progress to the client.
_REPORT_INTERVAL = 0.5


#: The name this results type had before the one call shared it; the same class.
DistributedResults = DownloadResults


@dataclasses.dataclass(frozen=True)
class _Shard:
    number: int
    items: list[FileConfig | str]
    digest: str


def download_on_dask(
    files: Iterable[FileConfig | str],
    download_dir: str | PathLike[str],
    client: distributed.Client | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    *,
    progress: bool = False,
    settings: DownloadSettings | None = None,
    job: str | None = None,
    max_in_flight: int | None = None,
    earlier_wait: float = DEFAULT_EARLIER_WAIT,
    **manager_options: Any,
) -> DownloadResults:
    """Download ``files`` with one Dask task per shard of ``shard_size`` files; the results
    are those of :func:`pydownloads.download` (by URL, in the order given), read from the
    shards' state files on demand.

    :param files: FileConfigs or URLs, any iterable: read as the shards are submitted.
    :param client: default: the current Dask client (``distributed.get_client()``).
    :param progress: show a tqdm bar of files and bytes in this process, fed by the workers
        (the shards' own ``settings.progress`` bars are never shown on the workers).
    :param settings: each shard's DownloadManager settings (without a state file: it is set
        per shard); or give them as ``manager_options``, not both.
    :param job: the job's name (letters, digits, ``.``, ``_``, ``-``), its state folder in
        ``download_dir/.pydownloads-shards/``; default: derived from the first shard.
    :param max_in_flight: shard tasks submitted and not finished at most; default: twice
        the cluster's threads (at least 2).
    :param earlier_wait: seconds a shard waits for an earlier call's task that still runs it.
    :param manager_options: the DownloadManager keywords of each shard (``max_workers``,
        ``max_segments``, ``retry_config``...); ``state_file`` is set per shard.
    :raises InvalidArgumentError: bad shard size, settings, job or window (before anything
        runs), or a bad item (when the input reaches it: the shards before it run).
    :raises StateFileError: a shard's state file is unusable, or still held by an earlier
        task after ``earlier_wait`` seconds.
    """
    _check_call(shard_size, job, max_in_flight, earlier_wait)
    settings = _shard_settings(settings, manager_options)
    folder = Path(download_dir).expanduser().absolute()
    client = client if client is not None else distributed.get_client()
    started = time.time()
    topic = f"pydownloads-progress-{uuid.uuid4().hex[:12]}" if progress else None
    names: dict[str, str] = {"job": job} if job is not None else {}

    def submit(shard: _Shard) -> tuple[Path, distributed.Future[JournalSummary]]:
        name = names.setdefault("job", shard.digest)  # by default the first shard names the job
        state = shard_file(folder, name, shard.number, shard.digest)
        # Named after what it does: a task an earlier call left running is this one, if
        # the scheduler still knows it (else its state file's lock makes this one wait).
        key = f"pydownloads-shard-{name}-{state.stem}"
        # The list goes by the shared folder, not in the graph: Dask keeps its last thousand
        # messages (client and scheduler), which would hold a thousand shards' URLs.
        write_shard_input(shard_input(state), shard.items)
        return state, client.submit(_run_shard, str(folder), str(state), topic, settings, earlier_wait, key=key)

    window = max_in_flight if max_in_flight is not None else max(2, 2 * sum(client.nthreads().values()))
    items: Iterable[FileConfig | str] = [files] if isinstance(files, (str, FileConfig)) else files
    with _ProgressFeed(topic, len(items) if isinstance(items, Sized) else None):
        states, summaries = _run_window(_read_shards(items, shard_size), submit, window, client)
    return DownloadResults(ShardedDownloads(tuple(states), summary_stats(summaries)), started_at=started)


def _check_call(shard_size: object, job: object, max_in_flight: object, earlier_wait: object) -> None:
    for name, value in (("shard_size", shard_size), ("max_in_flight", max_in_flight)):
        if (value is not None or name == "shard_size") and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise InvalidArgumentError(f"{name} must be an int >= 1, not {value!r}")
    if job is not None:
        check_job(job)
    if not isinstance(earlier_wait, (int, float)) or isinstance(earlier_wait, bool) or not earlier_wait >= 0:
        raise InvalidArgumentError(f"earlier_wait must be a number of seconds >= 0, not {earlier_wait!r}")


def _run_window(
    shards: Iterator[_Shard], submit: Callable[[_Shard], tuple[Path, distributed.Future[JournalSummary]]],
    window: int, client: distributed.Client,
) -> tuple[list[Path], list[JournalSummary]]:
    """Submit the shards keeping at most ``window`` in flight; their state files and
    summaries in order.  A shard that fails raises here (the others are released)."""
    states: list[Path] = []
    summaries: dict[int, JournalSummary] = {}
    numbers: dict[distributed.Future[JournalSummary], int] = {}

    def collect(future: distributed.Future[JournalSummary]) -> None:
        try:
            summaries[numbers.pop(future)] = future.result()
        finally:
            # Now, not when the future is collected: a traceback kept (a notebook's) would
            # keep an erred task whose key the same call again would be given back at once.
            future.release()

    # Given the client's loop: not the default client's (the command's is not the default).
    in_flight = distributed.as_completed(loop=client.loop)
    try:
        for shard in shards:
            if in_flight.count() >= window:
                collect(next(in_flight))
            state, future = submit(shard)
            states.append(state)
            numbers[future] = shard.number
            in_flight.add(future)
        for future in in_flight:
            collect(future)
    finally:
        for future in list(numbers):
            future.release()  # a shard failed, or the input: the others are not waited for
    return states, [summaries[number] for number in range(len(states))]


def _read_shards(files: Iterable[FileConfig | str], size: int) -> Iterator[_Shard]:
    """The input cut into shards of ``size`` items, each checked and digested as it is read."""
    items = iter(files)
    for number in itertools.count():
        batch = [_checked(item) for item in itertools.islice(items, size)]
        if not batch:
            return
        digest = ShardDigest()
        for item in batch:
            digest.add(item)
        yield _Shard(number, batch, digest.hexdigest())


def _checked(item: object) -> FileConfig | str:
    if isinstance(item, str):
        return validate_url(item)
    if isinstance(item, FileConfig):
        DownloadRequest.check(item)
        return item
    raise InvalidArgumentError(f"download_on_dask takes FileConfig objects or URL strings, not {type(item).__name__}")


def _shard_settings(settings: DownloadSettings | None, options: dict[str, Any]) -> DownloadSettings:
    """The settings every shard starts from, checked here rather than on each worker."""
    if "state_file" in options or "tracker" in options or "session" in options or (
            settings is not None and settings.journal.state_file is not None):
        raise InvalidArgumentError("state_file, tracker and session are set per shard on the workers")
    if settings is None:
        return DownloadSettings.from_options(**options)
    if not isinstance(settings, DownloadSettings):
        raise InvalidArgumentError(f"settings must be a DownloadSettings, not {type(settings).__name__}")
    if options:
        raise InvalidArgumentError(f"give settings or {min(options)}, not both: vary settings with "
                                   "dataclasses.replace")
    return settings


def _run_shard(
    folder: str, state: str, topic: str | None, settings: DownloadSettings, earlier_wait: float,
) -> JournalSummary:
    """One shard on a worker: a regular manager with the shard's state file; its summary."""
    journal = dataclasses.replace(settings.journal, state_file=Path(state))
    # The job's per-host cap, cluster-wide: the job is the state file's folder.
    settings = share_host_cap(settings, Path(state).parent.name)
    shard_settings = dataclasses.replace(settings, journal=journal, progress=False)
    reporter = _Reporter(topic)
    with _open_manager(folder, shard_settings, Path(state), earlier_wait) as manager:
        reporter.attach(manager)
        manager.add_to_queue(read_shard_input(shard_input(Path(state))))
        manager.queue.join()
    reporter.flush()
    return read_summary(Path(state))


def _open_manager(folder: str, settings: DownloadSettings, state: Path, earlier_wait: float) -> DownloadManager:
    """The shard's manager, once no earlier task holds its state file (a rerun after the
    client died, while the dead client's task goes on: the journal then skips what it did)."""
    deadline = time.monotonic() + earlier_wait
    while True:
        try:
            return DownloadManager(folder, settings=settings)
        except StateFileError:
            if not state_file_busy(state):
                raise
        wait_until_free(state, timeout=max(0.0, deadline - time.monotonic()), cancelled=_task_cancelled)


def _task_cancelled() -> bool:
    """True once the scheduler no longer wants the task this thread runs (its client left)."""
    try:
        worker = distributed.get_worker()
        task = worker.state.tasks.get(worker.get_current_task())
    except (ValueError, KeyError):  # not in a worker's task thread
        return False
    return task is None or task.state == "cancelled"


class _Reporter:
    """Sends a shard's progress (files done, bytes) to the client, at most every half second.

    Only sends when the client asked for progress (``topic`` set); results never go this way.
    """

    def __init__(self, topic: str | None) -> None:
        self._queue = distributed.Queue(topic) if topic else None
        self._lock = threading.Lock()
        self._files = 0
        self._bytes = 0
        self._last = time.monotonic()

    def attach(self, manager: DownloadManager) -> None:
        manager.emitter.on("worker.chunk_downloaded", self._on_chunk)
        manager.emitter.on("worker.completed", self._on_done)
        manager.emitter.on("worker.failed", self._on_done)

    def _on_chunk(self, event: ChunkDownloaded) -> None:
        with self._lock:
            self._bytes += event.bytes_downloaded
        self._maybe_send()

    def _on_done(self, event: DownloadCompleted | DownloadFailed) -> None:
        with self._lock:
            self._files += 1
        self._maybe_send()

    def _maybe_send(self) -> None:
        if time.monotonic() - self._last >= _REPORT_INTERVAL:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            files, size, self._files, self._bytes = self._files, self._bytes, 0, 0
            self._last = time.monotonic()
        if self._queue is not None and (files or size):
            self._queue.put((files, size))


class _ProgressFeed:
    """A tqdm bar in the client, fed by the shards' reports on a background thread."""

    def __init__(self, topic: str | None, total: int | None) -> None:
        self._topic, self._total = topic, total
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _ProgressFeed:
        if self._topic is not None:
            self._thread = threading.Thread(target=self._follow, name="pydownloads-dask-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _follow(self) -> None:
        if self._topic is None:
            return

        queue = distributed.Queue(self._topic)
        with tqdm(total=self._total, unit="file", desc="downloads") as bar:
            received = 0
            # Polled, not a blocking get: Dask logs every timed-out get as an error.
            while True:
                stopped = self._stop.wait(_REPORT_INTERVAL)
                for files, size in queue.get(batch=True):
                    received += size
                    bar.update(files)
                bar.set_postfix_str(f"{received / 2**20:.1f} MiB")
                if stopped:
                    return
