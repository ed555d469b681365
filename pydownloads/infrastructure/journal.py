"""The crash-safe journal: every queued download and its state, in one SQLite file.

One process writes a journal at a time (an advisory ``flock`` on the file, taken at open).
WAL mode with ``synchronous=NORMAL``: a commit reaches the operating system before the call
returns, so it survives the process being killed (not a power cut, which would need a sync
per commit).  Writes that recovery depends on (a download's final status) are committed
before :meth:`Journal.finished` returns, those of concurrent callers in one commit (a group
commit: :mod:`pydownloads.infrastructure.commits`); the others (a download started, queued)
ride along with the next commit or are committed at least every ``COMMIT_INTERVAL`` seconds.

Thread-safe: one connection behind one lock; SQLite releases the GIL while it works.  The
group commit's thread (a daemon) runs from the first final status to :meth:`Journal.close`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import cast

from pydownloads.domain.errors import StateFileError
from pydownloads.domain.models import DownloadInfo, DownloadStatus, FileConfig
from pydownloads.infrastructure.commits import GroupCommit, LatestWrites
from pydownloads.infrastructure.journal_format import (
    COLUMNS,
    FINISHED,
    STARTED,
    JournalRow,
    JournalStatus,
    StoredRow,
    config_from_json,
    config_to_json,
    finished_values,
    info_from_row,
    prepare_schema,
    read_status,
    row_values,
    stored_row,
)

__all__ = ["COMMIT_INTERVAL", "RESUMABLE", "Journal", "JournalRow", "JournalStatus", "StoredRow", "read_status"]

COMMIT_INTERVAL = 0.5
#: The page cache of the journal's connection, in KiB: a fixed budget, whatever the number of
#: downloads (the rest of the file is read through the system's cache).  32 MiB queued 300,000
#: URLs in the same CPU time and held 28 MiB more (docs/BENCHMARKS.md, "Journal memory").
CACHE_KIB = 8192
#: Rows read per query by the readers that stream (the lock is never held between two pages).
PAGE = 500
#: Statuses a new run picks up again (``queued`` means "handed to a worker thread").
RESUMABLE = ("pending", "queued", "in_progress", "cancelled")


class Journal:
    """The SQLite journal of one download run (and its reruns).

    :raises StateFileError: the file is not a journal, is corrupt, was written by a newer
        pydownloads, or another process has it open.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._dirty = False
        self._last_commit = time.monotonic()
        #: Starts not written yet, by row id (see :meth:`started`).
        self._starts: LatestWrites[int, tuple[object, ...]] = LatestWrites()
        self._group: GroupCommit[tuple[object, ...]] = GroupCommit(self._write_finished)
        #: Downloads an earlier run left wait until this run has added its own (with their
        #: options, which win) or is waited for: see :meth:`release_carried`.
        self._held = False
        #: When this run opened the journal (the tracker's clock): what finished since, it settled.
        self.opened_at = time.time()
        #: This run's number (one more than the last run's), and the position of the next download
        #: it adds: the rows it adds or adds again are stamped with both (see :meth:`run_rows`).
        self.run = 0
        self._seq = 0
        self._lock_fd = self._take_lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._prepare()
        except sqlite3.DatabaseError as error:
            self._release_lock()
            raise StateFileError(f"{self.path} is not a usable state file: {error}", cause=error) from error
        except BaseException:
            self._release_lock()
            raise

    # -- opening ---------------------------------------------------------------------------

    def _take_lock(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise StateFileError(f"cannot open state file {self.path}: {error.strerror or error}",
                                 cause=error) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateFileError(f"{self.path} is in use by another pydownloads process") from None
        return fd

    def _release_lock(self) -> None:
        if self._lock_fd >= 0:
            fd, self._lock_fd = self._lock_fd, -1
            os.close(fd)  # closing the descriptor drops the flock

    def _prepare(self) -> None:
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=2000")
        db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")  # see CACHE_KIB
        self.run = prepare_schema(db, self.path)
        db.execute("BEGIN")

    # -- writing ---------------------------------------------------------------------------

    def insert(self, configs: Iterable[FileConfig | str]) -> list[StoredRow | None]:
        """Record the ``configs`` not journaled yet (a plain string: a checked URL with
        default options), as pending; returns, for each, None if it is new, else the row
        held already for the same URL and destination (a repeat within ``configs``: the
        pending row its first occurrence made).  What to do with those is the caller's.

        Every row given takes the next position of this run's input; a new one is this run's
        at once, one held already once :meth:`adopt` says so (see :meth:`run_rows`).
        """
        rows = [row_values(c) for c in configs]
        with self._lock:
            self._check_open()
            newest = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM downloads").fetchone()[0]
            first, self._seq = self._seq, self._seq + len(rows)
            self._db.executemany(
                "INSERT INTO downloads (url, destination, config, priority, status, run, seq) "
                "VALUES (?, ?, ?, ?, 'pending', ?, ?) "
                "ON CONFLICT (url, destination) DO UPDATE SET seq=excluded.seq",
                [(*row, self.run, first + number) for number, row in enumerate(rows)])
            added = self._db.execute("SELECT COUNT(*) FROM downloads WHERE id > ?", (newest,)).fetchone()[0]
            if added == len(rows):  # all new: the usual case
                results: list[StoredRow | None] = [None] * len(rows)
            else:
                seen: set[int] = set()  # this batch's: at most one batch of ids
                results = [stored_row(self._db, row, newest, seen) for row in rows]
            self._dirty = True
            self._maybe_commit(force=False)
        return results

    def update_options(self, changes: Iterable[tuple[int, FileConfig | str]]) -> None:
        """Give each row ``(id, config)`` the options (priority included) of ``config``,
        unless it is completed, or held by this run's workers (queued or in progress: what
        runs keeps the options it started with, and the row says so); its status, progress
        and error stay as they are.  What a killed run left in progress is pending again
        since :meth:`requeue_unfinished`, so it takes them.
        """
        values = []
        for row_id, item in changes:
            _, _, options, priority = row_values(item)
            values.append((options, priority, row_id))
        if not values:
            return
        with self._lock:
            self._check_open()
            self._db.executemany(
                "UPDATE downloads SET config=?, priority=? "
                "WHERE id=? AND status NOT IN ('completed', 'queued', 'in_progress')", values)
            self._dirty = True
            self._maybe_commit(force=False)

    def adopt(self, row_ids: Iterable[int]) -> None:
        """Make the rows ``row_ids`` (held already, added again) this run's: call it once their
        new options are written, since while an earlier run's downloads are held, this run's
        are handed out (see :meth:`next_pending`)."""
        with self._lock:
            self._check_open()
            self._db.executemany("UPDATE downloads SET run=? WHERE id=?", [(self.run, row_id) for row_id in row_ids])
            self._dirty = True
            self._maybe_commit(force=False)

    def requeue(self, row_id: int, config: FileConfig, *, status: str) -> bool:
        """Make row ``row_id`` pending again with ``config``, its error forgotten, if its
        status is still ``status``; False if it has changed meanwhile (nothing written)."""
        with self._lock:
            self._check_open()
            cursor = self._db.execute(
                "UPDATE downloads SET status='pending', config=?, priority=?, error=NULL, error_type=NULL "
                "WHERE id=? AND status=?", (config_to_json(config), config.priority, row_id, status))
            self._dirty = True
            self._maybe_commit(force=False)
        return cursor.rowcount == 1

    def requeue_unfinished(self, *, retry_failed: bool) -> None:
        """At the start of a run: what an earlier run left unfinished is pending again."""
        statuses = RESUMABLE + (("failed",) if retry_failed else ())
        marks = ",".join("?" * len(statuses))
        with self._lock:
            cursor = self._db.execute(f"UPDATE downloads SET status='pending' WHERE status IN ({marks})", statuses)
            self._held = cursor.rowcount > 0
            self._commit()

    def release_carried(self) -> None:
        """Let :meth:`next_pending` hand out what an earlier run left and this run did not add
        again (held since :meth:`requeue_unfinished`, until this run has added all it adds:
        a download added again, in any batch, runs with the options it is added with now)."""
        with self._lock:
            self._held = False

    def next_pending(self, limit: int) -> list[JournalRow]:
        """Up to ``limit`` pending downloads, highest priority first, marked as queued (while
        an earlier run's downloads are held, only those this run added: see :meth:`release_carried`)."""
        held = " AND run=?" if self._held else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM downloads WHERE status='pending'{held} "
                "ORDER BY priority DESC, id LIMIT ?", (self.run, limit) if held else (limit,)).fetchall()
            for page in (rows[n:n + PAGE] for n in range(0, len(rows), PAGE)):  # a statement a page, not a row
                self._db.execute(f"UPDATE downloads SET status='queued' WHERE id IN ({','.join('?' * len(page))})",
                                 [row[0] for row in page])
            self._dirty = True
            self._maybe_commit(force=False)
        return [JournalRow(row[0], config_from_json(row[2]), info_from_row(row)) for row in rows]

    def started(self, row_id: int, *, path: Path, total: int | None, attempt: int, started_at: float) -> None:
        """A download began (not urgent: written with the next commit).  Held in memory until
        then, the latest per row, and dropped if the row's final status comes first (it
        writes every column this one does): a small file's start costs no statement."""
        if self._lock_fd < 0:
            return  # closed: a thread stuck past a hard shutdown is reporting late
        self._starts.put(row_id, (str(path), total, attempt, started_at, row_id))
        if time.monotonic() - self._last_commit >= COMMIT_INTERVAL:  # no commit for a while: one now
            with self._lock:
                if self._lock_fd >= 0:
                    self._commit()

    def _write_starts(self, superseded: Iterable[int] = ()) -> None:
        """Write the starts held in memory, but those of rows ``superseded`` (under the lock)."""
        starts = self._starts.take(superseded)
        if starts:
            self._db.executemany(STARTED, starts)
            self._dirty = True

    def finished(self, row_id: int, info: DownloadInfo) -> None:
        """A download reached a final status: committed before this returns.

        The final statuses of concurrent callers share a commit (a group commit: one thread
        writes and commits all those pending, see
        :class:`~pydownloads.infrastructure.commits.GroupCommit`), so a process killed at
        any moment loses no final status a caller has returned from.
        """
        values = finished_values(row_id, info)
        if info.status is not DownloadStatus.CANCELLED:
            self._group.submit(values)
            return
        # A cancelled download is picked up again anyway: it need not wait for a commit.
        with self._lock:
            if self._lock_fd < 0:
                return
            self._write_starts((row_id,))
            self._db.execute(FINISHED, values)
            self._dirty = True
            self._maybe_commit(force=False)

    def _write_finished(self, batch: list[tuple[object, ...]]) -> None:
        """Write and commit a batch of final statuses (the group commit's ``write``)."""
        with self._lock:
            if self._lock_fd < 0:
                return  # closed: a thread stuck past a hard shutdown is reporting late
            self._write_starts(cast(int, values[-1]) for values in batch)  # final statuses supersede them
            self._db.executemany(FINISHED, batch)
            self._dirty = True
            self._commit()

    def _maybe_commit(self, *, force: bool) -> None:
        if self._dirty and (force or time.monotonic() - self._last_commit >= COMMIT_INTERVAL):
            self._commit()

    def _commit(self) -> None:
        self._write_starts()
        self._db.execute("COMMIT")
        self._db.execute("BEGIN")
        self._dirty = False
        self._last_commit = time.monotonic()

    def _check_open(self) -> None:
        if self._lock_fd < 0:
            raise StateFileError(f"the journal {self.path} is closed")

    def flush(self) -> None:
        """Commit whatever is pending."""
        self._group.flush()
        with self._lock:
            self._commit()

    # -- reading ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, or after close a read-only one: the journal outlives its run."""
        with self._lock:
            if self._lock_fd >= 0:
                self._write_starts()  # what it reads shows every download started so far
                yield self._db
                return
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            yield db
        finally:
            db.close()

    def counts(self) -> dict[str, int]:
        """Downloads by status (``queued`` counted as pending)."""
        with self._reading() as db:
            rows = db.execute("SELECT status, COUNT(*) FROM downloads GROUP BY status").fetchall()
        counts: dict[str, int] = {}
        for status, count in rows:
            key = "pending" if status == "queued" else status
            counts[key] = counts.get(key, 0) + int(count)
        return counts

    def total_bytes(self) -> int:
        """Bytes recorded over all downloads."""
        with self._reading() as db:
            return int(db.execute("SELECT COALESCE(SUM(bytes), 0) FROM downloads").fetchone()[0])

    def lookup(self, url: str) -> DownloadInfo | None:
        """The journaled state of ``url`` (its most recent row), or None."""
        with self._reading() as db:
            row = db.execute(
                f"SELECT {COLUMNS} FROM downloads WHERE url=? ORDER BY id DESC LIMIT 1", (url,)).fetchone()
        return None if row is None else info_from_row(row)

    def rows(self, status: str | None = None) -> Iterator[DownloadInfo]:
        """Every journaled download (or those with ``status``), in queue order, read a page
        at a time (the journal may be written meanwhile)."""
        where, args = ("status=?", (status,)) if status is not None else ("1", ())
        return (info_from_row(row) for row in self._pages(where, args))

    def run_rows(self) -> Iterator[DownloadInfo]:
        """The downloads this run added (or added again), in the order it added them, read a
        page at a time: O(1) memory however many."""
        return (info_from_row(row[:-1]) for row in self._pages("run=?", (self.run,), key="seq"))

    def carried_rows(self, since: float) -> Iterator[DownloadInfo]:
        """The downloads this run did not add that reached a final status at ``since`` or
        later (what an earlier run left, finished by this one), in queue order."""
        return (info_from_row(row) for row in self._pages(
            "(run IS NULL OR run != ?) AND +status IN ('completed', 'failed', 'cancelled') AND finished_at >= ?",
            (self.run, since)))

    def _pages(self, where: str, args: tuple[object, ...], *, key: str = "id") -> Iterator[tuple[object, ...]]:
        """The rows ``WHERE where`` in ``key`` order (``COLUMNS``, then ``key`` unless it is
        ``id``), a page per query."""
        extra = "" if key == "id" else f", {key}"
        query = f"SELECT {COLUMNS}{extra} FROM downloads WHERE {where} AND {key} > ? ORDER BY {key} LIMIT {PAGE}"
        last: object = -1
        while True:
            with self._reading() as db:
                page = db.execute(query, (*args, last)).fetchall()
            yield from page
            if len(page) < PAGE:
                return
            last = page[-1][0 if key == "id" else -1]

    def completed_owners(self, paths: Sequence[str]) -> dict[str, list[str]]:
        """Path -> URLs of the downloads this run completed to one of ``paths`` (``PathClaims``)."""
        owners: dict[str, list[str]] = {}
        with self._lock:
            if self._lock_fd < 0:
                return owners
            for page in (paths[n:n + PAGE] for n in range(0, len(paths), PAGE)):
                marks = ",".join("?" * len(page))
                for path, url in self._db.execute(
                        f"SELECT path, url FROM downloads INDEXED BY by_path WHERE path IN ({marks}) "
                        "AND status='completed' AND finished_at >= ?", (*page, self.opened_at)):
                    owners.setdefault(path, []).append(url)
        return owners

    def close(self) -> None:
        """Commit and close (idempotent)."""
        self._group.close()  # the final statuses submitted so far: written before the file closes
        with self._lock:
            if self._lock_fd < 0:
                return
            with contextlib.suppress(sqlite3.Error):
                self._write_starts()
                self._db.execute("COMMIT")
            # Back to a rollback journal: the WAL is folded in and removed, and a read-only
            # reader later (read_status, the tracker after the run) leaves no -wal/-shm files
            # beside the state file.  A reader still attached keeps WAL mode: harmless.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA journal_mode=DELETE")
            self._db.close()
            self._release_lock()
