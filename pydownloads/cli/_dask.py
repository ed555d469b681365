"""``--dask-scheduler ADDRESS``: the same job, run by :func:`pydownloads.distributed.download_on_dask`.

The results come back as a local run's do (one DownloadInfo per URL, read from the shards'
state files), so the summary, ``--json`` and the exit status are the same code.  Each shard
keeps a state file of its own (``DIR/.pydownloads-shards/<job>/``): the command's state
options do not apply, but the same command again continues the job, as a local rerun does
(what was completed is skipped, what was partial resumed).  Ctrl-C stops waiting (exit 130);
shards already running on the workers finish there, and a rerun picks up after them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable

from pydownloads.cli._report import Outcome
from pydownloads.cli._run import RunSettings
from pydownloads.domain.models import FileConfig
from pydownloads.downloads.settings import JournalSettings

#: Seconds to wait for the scheduler to answer before giving up.
CONNECT_TIMEOUT = 10.0


class DaskUnavailableError(Exception):
    """Dask is not installed, or its scheduler cannot be reached (the message says which)."""


def run_on_dask(
    configs: Iterable[FileConfig], settings: RunSettings, address: str, *, shard_size: int | None = None
) -> Outcome:
    """Download ``configs`` on the Dask cluster of the scheduler at ``address``.

    :raises DaskUnavailableError: no ``distributed`` here, or no scheduler at ``address``.
    :raises InvalidArgumentError: the settings or an item were refused (nothing started).
    """
    try:
        import distributed

        from pydownloads.distributed import DEFAULT_SHARD_SIZE, download_on_dask
    except ImportError:
        raise DaskUnavailableError(
            "--dask-scheduler needs Dask's distributed scheduler: pip install 'pydownloads[dask]'") from None
    started = time.monotonic()
    try:
        client = distributed.Client(  # type: ignore[no-untyped-call]  # Dask's API is not annotated
            address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, ValueError) as error:  # refused, timed out (TimeoutError is an OSError), bad address
        raise DaskUnavailableError(f"cannot reach the Dask scheduler at {address}: {error}") from None
    # The state is set per shard on the workers: the command's state options do not apply.
    shards = dataclasses.replace(settings.download, journal=JournalSettings())
    with client:
        results = download_on_dask(configs, settings.download_dir, client,
                                   DEFAULT_SHARD_SIZE if shard_size is None else shard_size,
                                   progress=settings.progress, settings=shards)
    # In the input's order, read from the shards' state files (settled: not final is cancelled).
    downloads = list(results.downloads.values())
    return Outcome(downloads=downloads, elapsed=time.monotonic() - started, started_at=results.started_at)
