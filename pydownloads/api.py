"""One call for scripts: download a list of files and get their results.

    import pydownloads

    results = pydownloads.download(["https://example.com/a.zip"], download_dir="downloads")
    results.raise_for_failures()

A :class:`~pydownloads.DownloadManager` underneath, opened and closed by the call: the
options are its keywords (or one ``settings=``).  ``pydownloads.aio.download`` is the same
call for asyncio code.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from pydownloads.domain.errors import InvalidArgumentError
from pydownloads.domain.models import FileConfig
from pydownloads.downloads.journaled import as_config
from pydownloads.downloads.manager import DownloadManager
from pydownloads.downloads.resources import resolve_settings
from pydownloads.downloads.settings import DownloadSettings, Options
from pydownloads.events.emitter import EventEmitter
from pydownloads.results import DownloadResults
from pydownloads.tracking.tracker import DownloadTracker

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Keywords", "download", "shows_progress"]


class Keywords(Options, total=False):
    """Every keyword of :func:`download`: the manager's settings and collaborators."""

    max_workers: int | None
    settings: DownloadSettings | None
    tracker: DownloadTracker | None
    session: requests.Session | None
    emitter: EventEmitter | None


def download(
    files: Iterable[FileConfig | str] | FileConfig | str,
    download_dir: str | PathLike[str] = Path("downloads"),
    *,
    max_workers: int | None = None,
    settings: DownloadSettings | None = None,
    tracker: DownloadTracker | None = None,
    session: requests.Session | None = None,
    emitter: EventEmitter | None = None,
    **options: Unpack[Options],
) -> DownloadResults:
    """Download ``files`` (URLs or FileConfigs) into ``download_dir``; block until every one
    has finished, and return how each ended, in the order given.

    A failed download does not raise: read ``results.failed``, or call
    ``results.raise_for_failures()``.  Ctrl-C (or any exception) cancels the downloads in
    flight and propagates.

    :param max_workers: downloads at once (default 4); the other options are the
        DownloadManager keywords (``retry_config``, ``timeout``, ``auth``...), or one
        ``settings`` instead of them all; ``tracker``, ``session`` and ``emitter`` as the
        manager takes them.
    :param options: ``progress``: tqdm bars while the call runs.  Default: shown where a
        terminal or a notebook shows them (standard error is a terminal, or the call runs
        in a Jupyter kernel), off otherwise (logs, pipes, CI); ``progress=True`` or
        ``settings.progress`` turns them on anywhere, ``progress=False`` off.
    :raises InvalidArgumentError: a bad option or item (before anything is downloaded).
    :raises TypeError: a keyword that is not a setting.
    :raises FileSystemError: ``download_dir`` cannot be created.
    :raises StateFileError: the ``state_file`` cannot be used.
    """
    configs = _configs(files)
    progress = options.pop("progress", None)
    resolved = resolve_settings(settings, max_workers, options)
    shown = (resolved.progress or shows_progress()) if progress is None else progress
    resolved = dataclasses.replace(resolved, progress=shown)
    started_at = time.time()  # the tracker's clock: what finished before, an earlier run settled
    with DownloadManager(download_dir, settings=resolved, tracker=tracker, session=session,
                         emitter=emitter) as manager:
        manager.add_to_queue(configs)
        manager.join()
        # Read while a state file is still open (the tracker reads through it).
        everything = manager.tracker.get_all_downloads()
    return DownloadResults.of((everything[config.url] for config in configs if config.url in everything),
                              started_at=started_at)


def shows_progress() -> bool:
    """True where progress bars can be seen: standard error is a terminal, or this runs in a
    Jupyter kernel (where tqdm draws widgets)."""
    stderr = sys.stderr
    try:
        if stderr is not None and stderr.isatty():
            return True
    except (AttributeError, ValueError):  # a replaced or closed stderr
        pass
    ipython = sys.modules.get("IPython")  # only if already imported: never import it here
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return getattr(shell, "kernel", None) is not None


def _configs(files: Iterable[FileConfig | str] | FileConfig | str) -> list[FileConfig]:
    """``files`` as FileConfigs, all checked before anything starts."""
    if isinstance(files, (str, FileConfig)):
        files = [files]
    elif not isinstance(files, Iterable):
        raise InvalidArgumentError(f"download takes FileConfigs or URLs, not {type(files).__name__}")
    return [item if isinstance(item, FileConfig) else as_config(item) for item in files]
