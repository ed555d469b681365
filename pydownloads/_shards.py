"""A job cut into shards, each with a state file of its own: their names, and reading them.

A job's state lives in ``download_dir/.pydownloads-shards/<job>/``, one state file per
shard, named ``<number>-<digest>.db``, beside the shard's list of files (``.jsonl``, written
by the client and read by the shard's task, so that no URL travels in the task graph).  The
name is the shard's place in the input and a digest of what it holds (its URLs and where
each goes, not their other options, which a rerun may change as a local rerun does).  The
same input cut the same way gives the same names, so a rerun opens the state files the
first run wrote and continues from them.  ``<job>`` is the caller's name for the job, or by
default the digest of the first shard.

Needs no Dask: the command's ``status`` reads a job's files here too.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydownloads.domain.errors import InvalidArgumentError, StateFileError
from pydownloads.domain.models import DownloadInfo, DownloadStats, DownloadStatus, FileConfig
from pydownloads.infrastructure.journal_format import (
    JournalStatus,
    config_from_json,
    config_to_json,
    destination_key,
)
from pydownloads.infrastructure.journal_reader import JournalSummary, find_row, iter_rows, read_summary
from pydownloads.results import StoredDownloads, settled

__all__ = ["SHARD_FOLDER", "ShardDigest", "ShardedDownloads", "check_job", "job_folders", "job_status",
           "read_shard_input", "shard_file", "shard_input", "state_file_busy", "summary_stats", "wait_until_free",
           "write_shard_input"]

SHARD_FOLDER = ".pydownloads-shards"
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_SHARD_NAME = re.compile(r"(\d+)-[0-9a-f]+\.db")
_PLAIN = destination_key(FileConfig(url="http://placeholder/"))
#: Stored statuses read as each settled status (what is not final did not finish).
_STORED = {
    DownloadStatus.COMPLETED: ("completed",), DownloadStatus.FAILED: ("failed",),
    DownloadStatus.CANCELLED: ("cancelled", "pending", "queued", "in_progress"),
    DownloadStatus.PENDING: (), DownloadStatus.IN_PROGRESS: (),
}


def check_job(job: object) -> str:
    """``job`` if it can name a job's folder: letters, digits, ``.``, ``_``, ``-``.

    :raises InvalidArgumentError: anything else (a path, an empty or hidden name, over 100).
    """
    if not isinstance(job, str) or _JOB_NAME.fullmatch(job) is None:
        raise InvalidArgumentError(f"job must be a name of letters, digits, '.', '_' and '-', not {job!r}")
    return job


class ShardDigest:
    """The digest of one shard's contents, fed item by item as the input is read."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def add(self, item: FileConfig | str) -> None:
        url, where = (item, _PLAIN) if isinstance(item, str) else (item.url, destination_key(item))
        self._hash.update(f"{url}\0{where}\n".encode("utf-8", "surrogatepass"))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()[:16]


def shard_file(folder: Path, job: str, number: int, digest: str) -> Path:
    """The state file of shard ``number`` (from 0) of ``job`` in the download folder ``folder``."""
    return folder / SHARD_FOLDER / job / f"{number:06d}-{digest}.db"


def shard_input(state: Path) -> Path:
    """The list of files of the shard whose state file is ``state``."""
    return state.with_suffix(".jsonl")


def write_shard_input(path: Path, items: Iterable[FileConfig | str]) -> None:
    """Write a shard's list of files at ``path``: a line per item, a URL as a JSON string, a
    FileConfig as its JSON object; replaced at once (a task reading it sees one version)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(item) if isinstance(item, str) else config_to_json(item) for item in items]
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write("\n".join(lines) + "\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_shard_input(path: Path) -> list[FileConfig | str]:
    """The items :func:`write_shard_input` wrote at ``path``."""
    with open(path, encoding="utf-8") as stream:
        return [json.loads(line) if line.startswith('"') else config_from_json(line) for line in stream]


def summary_stats(summaries: Iterable[JournalSummary]) -> DownloadStats:
    """The stats of the shards whose summaries are given; what is not final counts as cancelled."""
    counts: dict[str, int] = {}
    size = 0
    for summary in summaries:
        size += summary.bytes
        for status, count in summary.counts.items():
            counts[status] = counts.get(status, 0) + count
    done = {status: counts.get(status.value, 0) for status in (DownloadStatus.COMPLETED, DownloadStatus.FAILED)}
    total = sum(counts.values())
    return DownloadStats(total=total, completed=done[DownloadStatus.COMPLETED], failed=done[DownloadStatus.FAILED],
                         cancelled=total - sum(done.values()), bytes_downloaded=size)


@dataclass(frozen=True)
class ShardedDownloads(StoredDownloads):
    """The downloads of a job, read from its shards' state files when asked.

    ``files`` are the state files in the input's order; ``summary`` their stats, known when
    the job ended.  Iterating reads a thousand rows at a time; ``self[url]`` looks for the
    URL in each shard in turn (iterate rather than look many up).  A URL given in two shards
    is listed twice.
    """

    files: tuple[Path, ...]
    summary: DownloadStats

    def stats(self) -> DownloadStats:
        return self.summary

    def with_status(self, *statuses: DownloadStatus) -> Iterator[DownloadInfo]:
        stored = tuple(name for status in statuses for name in _STORED[status])
        if not stored:
            return
        for path in self.files:
            yield from (settled(info) for info in iter_rows(path, stored))

    def __getitem__(self, url: str) -> DownloadInfo:
        for path in self.files:
            found = find_row(path, url)
            if found is not None:
                return settled(found)
        raise KeyError(url)

    def __iter__(self) -> Iterator[str]:
        return (info.url for info in self.values())

    def values(self) -> Iterator[DownloadInfo]:  # type: ignore[override]  # lazy, in order
        for path in self.files:
            yield from (settled(info) for info in iter_rows(path))

    def items(self) -> Iterator[tuple[str, DownloadInfo]]:  # type: ignore[override]  # lazy, in order
        return ((info.url, info) for info in self.values())

    def __len__(self) -> int:
        return self.summary.total


def job_folders(download_dir: Path) -> list[Path]:
    """The folders of the Dask jobs run into ``download_dir``, by name."""
    root = download_dir / SHARD_FOLDER
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def job_status(folder: Path) -> JournalStatus:
    """A job's state summed over its shards: per shard number the newest state file (an
    edited input leaves the older one beside it).

    :raises StateFileError: a shard's state file is unusable, or the folder has none.
    """
    newest: dict[int, Path] = {}
    for path in folder.glob("*.db"):
        match = _SHARD_NAME.fullmatch(path.name)
        if match is not None:
            number = int(match.group(1))
            if number not in newest or path.stat().st_mtime > newest[number].stat().st_mtime:
                newest[number] = path
    if not newest:
        raise StateFileError(f"no shard state files in {folder}")
    files = [newest[number] for number in sorted(newest)]
    counts: dict[str, int] = {}
    for path in files:  # as they are: a job still running has downloads pending and in progress
        for status, count in read_summary(path).counts.items():
            counts[status] = counts.get(status, 0) + count
    failures = [info for path in files for info in iter_rows(path, ("failed",))]
    return JournalStatus(folder, counts, failures)


def state_file_busy(path: Path) -> bool:
    """True while a run holds the state file at ``path`` (its journal's lock)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # drops the lock if taken
    return False


def wait_until_free(path: Path, *, timeout: float, cancelled: Callable[[], bool],
                    interval: float = 0.2, clock: Callable[[], float] = time.monotonic) -> None:
    """Wait while another run holds the state file at ``path``: up to ``timeout`` seconds,
    looking every ``interval`` seconds, and no longer once ``cancelled()`` says so.

    :raises StateFileError: still held after ``timeout`` seconds, or the wait was cancelled.
    """
    deadline = clock() + timeout
    pause = threading.Event()  # never set: a bounded pause between looks
    while state_file_busy(path):
        if cancelled():
            raise StateFileError(f"stopped waiting for {path}: the task was cancelled")
        left = deadline - clock()
        if left <= 0:
            raise StateFileError(f"{path} is still in use by another task after {timeout:g} s")
        pause.wait(min(interval, left))
