"""The crash-safe journal: every queued download and its state, in one SQLite file.

One process writes a journal at a time (an advisory ``flock`` on the file, taken at open).
WAL mode with ``synchronous=NORMAL``: a commit reaches the operating system before the call
returns, so it survives the process being killed (not a power cut, which would need a sync
per commit).  Writes that recovery depends on (a download's final status) are committed at
once; the others (a download started, queued) ride along with the next commit or are
committed at least every ``COMMIT_INTERVAL`` seconds.

Thread-safe: one connection behind one lock; SQLite releases the GIL while it works.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydownloads.domain.errors import StateFileError
from pydownloads.domain.models import DownloadInfo, DownloadStatus, FileConfig

_quote = json.encoder.encode_basestring_ascii

SCHEMA_VERSION = 2  # 2: the "unchanged" column
COMMIT_INTERVAL = 0.5
#: Statuses a new run picks up again (``queued`` means "handed to a worker thread").
RESUMABLE = ("pending", "queued", "in_progress", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS downloads (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    destination TEXT NOT NULL,
    config TEXT NOT NULL,
    priority INTEGER NOT NULL,
    status TEXT NOT NULL,
    bytes INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    path TEXT,
    error TEXT,
    error_type TEXT,
    started_at REAL,
    finished_at REAL,
    unchanged INTEGER NOT NULL DEFAULT 0,
    UNIQUE (url, destination)
);
CREATE INDEX IF NOT EXISTS by_status_priority ON downloads (status, priority DESC, id);
"""
_COLUMNS = (
    "id, url, config, priority, status, bytes, total, attempts, path, error, error_type, started_at, finished_at, "
    "unchanged"
)


@dataclass(frozen=True)
class JournalRow:
    """One download as the journal holds it."""

    id: int
    config: FileConfig
    info: DownloadInfo


def destination_key(config: FileConfig) -> str:
    """What makes two queued items the same download: their folder and chosen name."""
    return f"{config.destination_subdir or ''}\0{config.filename or ''}"


def config_to_json(config: FileConfig) -> str:
    """The FileConfig as compact JSON, only fields off their default (queueing millions)."""
    parts = ['"url":' + _quote(config.url)]
    if config.priority:
        parts.append(f'"priority":{config.priority}')
    for name in ("filename", "destination_subdir", "checksum"):
        value = getattr(config, name)
        if value is not None:
            parts.append(f'"{name}":' + _quote(value))
    if config.headers:
        parts.append('"headers":' + json.dumps(dict(config.headers)))
    for name in ("expected_size", "segments", "rate_limit"):
        value = getattr(config, name)
        if value is not None:
            parts.append(f'"{name}":{json.dumps(value)}')
    if config.if_changed:
        parts.append('"if_changed":true')
    if config.mirrors:
        parts.append('"mirrors":' + json.dumps(list(config.mirrors)))
    return "{" + ",".join(parts) + "}"


_PLAIN_KEY = destination_key(FileConfig(url="http://placeholder/"))


def _row(item: FileConfig | str) -> tuple[str, str, str, int]:
    """The journal row of a FileConfig, or of a URL string (already validated) with defaults:
    the common case of a huge list of plain URLs, which needs no FileConfig."""
    if isinstance(item, str):
        return item, _PLAIN_KEY, '{"url":' + _quote(item) + "}", 0
    return item.url, destination_key(item), config_to_json(item), item.priority


def config_from_json(text: str) -> FileConfig:
    return FileConfig(**json.loads(text))


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
        db.execute("PRAGMA cache_size=-32768")  # 32 MiB of pages: queueing millions stays fast
        version = _read_version(db)
        if version is None:
            db.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif version == 1:  # add what version 2 has, keeping every row
            db.execute("ALTER TABLE downloads ADD COLUMN unchanged INTEGER NOT NULL DEFAULT 0")
            db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
        elif version > SCHEMA_VERSION:
            raise StateFileError(
                f"{self.path} was written by a newer pydownloads (schema {version}, this one reads "
                f"{SCHEMA_VERSION}); upgrade pydownloads or use another state file")
        db.execute("PRAGMA quick_check")
        db.execute("BEGIN")

    # -- writing ---------------------------------------------------------------------------

    def add(self, configs: Iterable[FileConfig | str], *, retry_failed: bool) -> list[tuple[int, str | None, str]]:
        """Record ``configs`` (a plain string: a checked URL with default options);
        returns ``(id or 0, status before or None if new, status now)`` for each.

        An item already journaled for the same destination is not duplicated: a failed one
        becomes pending again when ``retry_failed``; a completed one whose file is gone or
        wrong (size, checksum) becomes pending; the others keep their status.
        """
        configs = list(configs)
        rows = [_row(c) for c in configs]
        with self._lock:
            self._check_open()
            newest = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM downloads").fetchone()[0]
            changes = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO downloads (url, destination, config, priority, status) "
                "VALUES (?, ?, ?, ?, 'pending')", rows)
            if self._db.total_changes - changes == len(rows):  # all new: the usual case
                results: list[tuple[int, str | None, str]] = [(0, None, "pending")] * len(rows)
            else:
                seen: set[int] = set()
                results = [self._lookup_added(row, config, newest, retry_failed, seen) for row, config in zip(
                    rows, configs, strict=True)]
            self._dirty = True
            self._maybe_commit(force=False)
        return results

    def _lookup_added(self, row: tuple[Any, ...], config: FileConfig | str, newest: int,
                      retry_failed: bool, seen: set[int]) -> tuple[int, str | None, str]:
        found = self._db.execute(
            "SELECT id, status, path, bytes FROM downloads WHERE url = ? AND destination = ?",
            (row[0], row[1])).fetchone()
        if found[0] > newest:  # added by this batch: new the first time, a repeat after
            first = found[0] not in seen
            seen.add(found[0])
            return found[0], None if first else "pending", "pending"
        return self._revisit(found, config if isinstance(config, FileConfig) else FileConfig(url=config),
                             retry_failed)

    def _revisit(self, row: tuple[Any, ...], config: FileConfig, retry_failed: bool) -> tuple[int, str | None, str]:
        row_id, status, path, size = row
        status = "pending" if status == "queued" else status
        # A completed download goes again if its file is gone or wrong, or if the caller wants
        # the server asked whether it changed (if_changed: a 304 then costs no body).
        again = (status == "failed" and retry_failed) or (
            status == "completed" and (config.if_changed or not _file_intact(path, size, config)))
        if again:
            self._db.execute(
                "UPDATE downloads SET status='pending', config=?, priority=?, error=NULL, error_type=NULL "
                "WHERE id=?", (config_to_json(config), config.priority, row_id))
            return row_id, status, "pending"
        return row_id, status, status

    def requeue_unfinished(self, *, retry_failed: bool) -> None:
        """At the start of a run: what an earlier run left unfinished is pending again."""
        statuses = RESUMABLE + (("failed",) if retry_failed else ())
        marks = ",".join("?" * len(statuses))
        with self._lock:
            self._db.execute(f"UPDATE downloads SET status='pending' WHERE status IN ({marks})", statuses)
            self._commit()

    def next_pending(self, limit: int) -> list[JournalRow]:
        """Up to ``limit`` pending downloads, highest priority first, marked as queued."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM downloads WHERE status='pending' "
                "ORDER BY priority DESC, id LIMIT ?", (limit,)).fetchall()
            self._db.executemany("UPDATE downloads SET status='queued' WHERE id=?", [(r[0],) for r in rows])
            self._dirty = True
            self._maybe_commit(force=False)
        return [JournalRow(row[0], config_from_json(row[2]), _info(row)) for row in rows]

    def started(self, row_id: int, *, path: Path, total: int | None, attempt: int, started_at: float) -> None:
        """A download began (not urgent: committed with the next batch)."""
        with self._lock:
            if self._lock_fd < 0:
                return  # closed: a thread stuck past a hard shutdown is reporting late
            self._db.execute(
                "UPDATE downloads SET status='in_progress', path=?, total=?, attempts=?, "
                "started_at=COALESCE(started_at, ?) WHERE id=?", (str(path), total, attempt, started_at, row_id))
            self._dirty = True
            self._maybe_commit(force=False)

    def finished(self, row_id: int, info: DownloadInfo) -> None:
        """A download reached a final status: committed before this returns."""
        with self._lock:
            if self._lock_fd < 0:
                return
            self._db.execute(
                "UPDATE downloads SET status=?, bytes=?, total=?, attempts=?, path=?, error=?, error_type=?, "
                "started_at=?, finished_at=?, unchanged=? WHERE id=?",
                (info.status.value, info.bytes_downloaded, info.total_bytes, info.attempts,
                 str(info.path) if info.path else None, info.error, info.error_type, info.started_at,
                 info.finished_at, int(info.unchanged), row_id))
            self._dirty = True
            # A cancelled download is picked up again anyway: it need not wait for a commit.
            self._maybe_commit(force=info.status is not DownloadStatus.CANCELLED)

    def _maybe_commit(self, *, force: bool) -> None:
        if self._dirty and (force or time.monotonic() - self._last_commit >= COMMIT_INTERVAL):
            self._commit()

    def _commit(self) -> None:
        self._db.execute("COMMIT")
        self._db.execute("BEGIN")
        self._dirty = False
        self._last_commit = time.monotonic()

    def _check_open(self) -> None:
        if self._lock_fd < 0:
            raise StateFileError(f"the journal {self.path} is closed")

    def flush(self) -> None:
        """Commit whatever is pending."""
        with self._lock:
            self._commit()

    # -- reading ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, or after close a read-only one: the journal outlives its run."""
        with self._lock:
            if self._lock_fd >= 0:
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
                f"SELECT {_COLUMNS} FROM downloads WHERE url=? ORDER BY id DESC LIMIT 1", (url,)).fetchone()
        return None if row is None else _info(row)

    def rows(self, status: str | None = None) -> Iterator[DownloadInfo]:
        """Every journaled download (or those with ``status``), in queue order."""
        query = f"SELECT {_COLUMNS} FROM downloads"
        args: tuple[str, ...] = ()
        if status is not None:
            query += " WHERE status=?"
            args = (status,)
        with self._reading() as db:
            rows = db.execute(query + " ORDER BY id", args).fetchall()
        return (_info(row) for row in rows)

    def close(self) -> None:
        """Commit and close (idempotent)."""
        with self._lock:
            if self._lock_fd < 0:
                return
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("COMMIT")
            # Back to a rollback journal: the WAL is folded in and removed, and a read-only
            # reader later (read_status, the tracker after the run) leaves no -wal/-shm files
            # beside the state file.  A reader still attached keeps WAL mode: harmless.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA journal_mode=DELETE")
            self._db.close()
            self._release_lock()


def _read_version(db: sqlite3.Connection) -> int | None:
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return None
    if "meta" not in tables or "downloads" not in tables:
        raise sqlite3.DatabaseError("it holds other tables than a pydownloads journal")
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None or not str(row[0]).isdigit():
        raise sqlite3.DatabaseError("it has no schema version")
    return int(row[0])


def _info(row: tuple[Any, ...]) -> DownloadInfo:
    _, url, _, _, status, size, total, attempts, path, error, error_type, started, finished, unchanged = row
    status = "pending" if status == "queued" else status
    return DownloadInfo(
        url=url, status=DownloadStatus(status), bytes_downloaded=size, total_bytes=total,
        path=Path(path) if path else None, error=error, error_type=error_type, attempts=attempts,
        started_at=started, finished_at=finished, unchanged=bool(unchanged),
    )


def _file_intact(path: str | None, size: int, config: FileConfig) -> bool:
    """True when a completed download's file is still there with its size (and checksum)."""
    if not path:
        return False
    try:
        if os.stat(path).st_size != size:
            return False
    except OSError:
        return False
    checksum = config.parsed_checksum
    if checksum is None:
        return True
    hasher = checksum.new_hasher()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            hasher.update(block)
    return hasher.hexdigest() == checksum.hexdigest


@dataclass(frozen=True)
class JournalStatus:
    """What a state file says: downloads by status, and each failure with its error."""

    path: Path
    counts: dict[str, int]
    failures: list[DownloadInfo]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def read_status(path: Path) -> JournalStatus:
    """Read a state file without writing it (safe while a run is using it).

    :raises StateFileError: missing, corrupt, not a journal, or of a newer schema.
    """
    path = Path(path)
    if not path.is_file():
        raise StateFileError(f"no state file at {path}")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise StateFileError(f"{path} is not a usable state file: {error}", cause=error) from error
    try:
        version = _read_version(db)
        if version is None:
            raise StateFileError(f"{path} is empty: not a state file yet")
        if version > SCHEMA_VERSION:
            raise StateFileError(f"{path} was written by a newer pydownloads (schema {version})")
        counts: dict[str, int] = {}
        for status, count in db.execute("SELECT status, COUNT(*) FROM downloads GROUP BY status"):
            key = "pending" if status == "queued" else status
            counts[key] = counts.get(key, 0) + int(count)
        failures = [_info(row) for row in db.execute(
            f"SELECT {_COLUMNS} FROM downloads WHERE status='failed' ORDER BY id")]
        return JournalStatus(path, counts, failures)
    except sqlite3.DatabaseError as error:
        raise StateFileError(f"{path} is not a usable state file: {error}", cause=error) from error
    finally:
        db.close()
