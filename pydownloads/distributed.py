"""Run one download job across a Dask cluster (``pip install 'pydownloads[dask]'``)::

    from distributed import Client
    from pydownloads.distributed import download_on_dask

    with Client("tcp://scheduler:8786"):
        results = download_on_dask(urls, "/shared/downloads", shard_size=1000, max_workers=16)
    print(results.stats, results.failed)

The shards' managers take the same settings as a local one: the DownloadManager keywords
(``max_workers=16`` above), or one :class:`~pydownloads.DownloadSettings` (``settings=``),
which travels to the workers pickled.

The files are cut into shards; each shard is one Dask task running a regular
:class:`~pydownloads.DownloadManager` on a worker, with its own threads, per-host limits and
a state file of its own in ``download_dir/.pydownloads-shards/``.  ``download_dir`` must be a
folder every worker can write, the same path on each (a shared file system).

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
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
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
from pydownloads.domain.errors import InvalidArgumentError
from pydownloads.domain.models import DownloadInfo, FileConfig
from pydownloads.downloads.manager import DownloadManager
from pydownloads.downloads.settings import DownloadSettings
from pydownloads.events.types import ChunkDownloaded, DownloadCompleted, DownloadFailed
from pydownloads.results import DownloadResults

__all__ = ["DEFAULT_SHARD_SIZE", "DistributedResults", "DownloadResults", "download_on_dask"]

DEFAULT_SHARD_SIZE = 500
_SHARD_FOLDER = ".pydownloads-shards"
#: How often a shard sends its progress to the client.
_REPORT_INTERVAL = 0.5


#: The name this results type had before the one call shared it; the same class.
DistributedResults = DownloadResults


def download_on_dask(
    files: Iterable[FileConfig | str],
    download_dir: str | PathLike[str],
    client: distributed.Client | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    *,
    progress: bool = False,
    settings: DownloadSettings | None = None,
    **manager_options: Any,
) -> DownloadResults:
    """Download ``files`` with one Dask task per shard of ``shard_size`` files; the results
    are those of :func:`pydownloads.download` (by URL, in the order given).

    :param client: default: the current Dask client (``distributed.get_client()``).
    :param progress: show a tqdm bar of files and bytes in this process, fed by the workers
        (the shards' own ``settings.progress`` bars are never shown on the workers).
    :param settings: each shard's DownloadManager settings (without a state file: it is set
        per shard); or give them as ``manager_options``, not both.
    :param manager_options: the DownloadManager keywords of each shard (``max_workers``,
        ``max_segments``, ``retry_config``...); ``state_file`` is set per shard.
    :raises InvalidArgumentError: bad files, shard size or settings (before anything runs).
    """
    if not isinstance(shard_size, int) or isinstance(shard_size, bool) or shard_size < 1:
        raise InvalidArgumentError(f"shard_size must be an int >= 1, not {shard_size!r}")
    settings = _shard_settings(settings, manager_options)
    configs = [item if isinstance(item, FileConfig) else FileConfig(url=item) for item in files]
    folder = Path(download_dir).expanduser().absolute()
    client = client if client is not None else distributed.get_client()
    run_id = uuid.uuid4().hex[:12]
    topic = f"pydownloads-progress-{run_id}" if progress else None
    futures = [
        client.submit(_run_shard, shard, str(folder), f"{run_id}-{number}", topic, settings,
                      key=f"pydownloads-shard-{run_id}-{number}", pure=False)
        for number, shard in enumerate(_shards(configs, shard_size))
    ]
    with _ProgressFeed(topic, len(configs)):
        outcomes: list[dict[str, DownloadInfo]] = client.gather(futures)
    downloads: dict[str, DownloadInfo] = {}
    for outcome in outcomes:
        downloads.update(outcome)
    return DownloadResults.of(downloads[config.url] for config in configs if config.url in downloads)


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


def _shards(configs: list[FileConfig], size: int) -> Iterator[list[FileConfig]]:
    for start in range(0, len(configs), size):
        yield configs[start:start + size]


def _run_shard(
    configs: list[FileConfig], folder: str, shard_id: str, topic: str | None, settings: DownloadSettings
) -> dict[str, DownloadInfo]:
    """One shard on a worker: a regular manager with a state file of the shard's own."""
    state = Path(folder) / _SHARD_FOLDER / f"{shard_id}.db"
    journal = dataclasses.replace(settings.journal, state_file=state)
    settings = share_host_cap(settings, shard_id.rpartition("-")[0])  # the job's cap, cluster-wide
    reporter = _Reporter(topic)
    with DownloadManager(folder, settings=dataclasses.replace(settings, journal=journal, progress=False)) as manager:
        reporter.attach(manager)
        manager.add_to_queue(configs)
        manager.queue.join()
    reporter.flush()
    infos = manager.tracker.get_all_downloads()
    return {config.url: infos[config.url] for config in configs if config.url in infos}


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

    def __init__(self, topic: str | None, total: int) -> None:
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
