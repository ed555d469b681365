"""Queueing through the state file: downloads journaled in batches, read back by the workers."""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from pydownloads.domain.errors import InvalidArgumentError
from pydownloads.domain.models import FileConfig, validate_url
from pydownloads.downloads.job import DownloadJob, DownloadRequest
from pydownloads.downloads.revisit import add_to_journal
from pydownloads.events.emitter import EventEmitter
from pydownloads.events.types import DownloadQueued
from pydownloads.infrastructure.journal import Journal
from pydownloads.tracking.tracker import DownloadTracker

T = TypeVar("T")

#: Downloads journaled per transaction by add_to_queue with a state file.
JOURNAL_BATCH = 5000


def add_journaled(
    files: Iterable[FileConfig | str], journal: Journal, *, tracker: DownloadTracker, emitter: EventEmitter,
    retry_failed: bool, check_open: Callable[[], None], start_workers: Callable[[], None],
) -> int:
    """Journal ``files`` in batches (any iterable, a generator over millions of lines
    included); returns how many were queued.

    :param check_open: raises RuntimeError once the manager is shut down (before each batch).
    :param start_workers: starts the worker threads unless the manager is shutting down
        (after each batch; the workers read the downloads back in priority order).
    :raises InvalidArgumentError: an item of the batch being read is not a FileConfig or URL
        (the batches before it stay queued).

    What an earlier run left in the journal waits until every batch is added (see
    ``Journal.release_carried``): one added again in a later batch runs with its new options.
    """
    queued = 0
    try:
        for batch in _batches(files, JOURNAL_BATCH):
            queued += _add_batch(batch, journal, tracker=tracker, emitter=emitter, retry_failed=retry_failed,
                                 check_open=check_open)
            start_workers()
    finally:
        journal.release_carried()  # all added: what an earlier run left and this one did not add goes on
    return queued


def _add_batch(
    batch: list[FileConfig | str], journal: Journal, *, tracker: DownloadTracker, emitter: EventEmitter,
    retry_failed: bool, check_open: Callable[[], None],
) -> int:
    """Journal one batch (see :func:`add_journaled`); returns how many were queued."""
    configs = [_checked(item) for item in batch]
    check_open()
    results = add_to_journal(journal, configs, retry_failed=retry_failed)
    queued = 0
    moves: Counter[tuple[str | None, str]] = Counter((before, now) for _, before, now in results)
    moves.pop(("pending", "pending"), None)  # journaled already and waiting
    for (before, now), count in moves.items():
        if before != now:  # not: completed and intact, or failed and not retried
            tracker.count_queued(before, now, count)
            queued += count
    if emitter.is_listening(DownloadQueued):
        for config, (_, before, now) in zip(configs, results, strict=True):
            if before != now:
                url, priority = (config, 0) if isinstance(config, str) else (config.url, config.priority)
                emitter.emit(DownloadQueued(url=url, priority=priority))
    return queued


def _checked(item: object) -> FileConfig | str:
    # URLs stay strings: a FileConfig each would double the cost.
    if isinstance(item, FileConfig):
        DownloadRequest.check(item)
        return item
    if isinstance(item, str):
        return validate_url(item)
    return as_config(item)


def as_items(files: object) -> Iterable[FileConfig | str]:
    """What ``add_to_queue`` was given, as items: one FileConfig or URL becomes a list of one.

    :raises InvalidArgumentError: ``files`` is neither an item nor an iterable.
    """
    if isinstance(files, (str, FileConfig)):
        return [files]
    if not isinstance(files, Iterable):
        raise InvalidArgumentError(f"add_to_queue takes FileConfigs or URLs, not {type(files).__name__}")
    return files


def new_jobs(files: Iterable[FileConfig | str], root: Path) -> list[DownloadJob]:
    """Queueing without a state file: a job for each item, in input order.

    :raises InvalidArgumentError: an item is not a FileConfig or URL, or leaves ``root``.
    """
    configs = [item if isinstance(item, FileConfig) else as_config(item) for item in files]
    base = os.path.realpath(root)  # once for the batch (each attempt checks its own path)
    return [DownloadJob(DownloadRequest.from_config(config, root, base=base), config.priority) for config in configs]


def as_config(item: object) -> FileConfig:
    """A URL string as a FileConfig with default options.

    :raises InvalidArgumentError: ``item`` is not a string.
    """
    if isinstance(item, str):
        return FileConfig(url=item)
    raise InvalidArgumentError(f"add_to_queue takes FileConfig objects or URL strings, not {type(item).__name__}")


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
