"""What a state file holds: its schema, the rows of downloads, and a read-only look at it.

The :class:`~pydownloads.infrastructure.journal.Journal` writes this format; :func:`read_status`
reads it without writing, while a run is using the file or after.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydownloads.domain.errors import StateFileError
from pydownloads.domain.models import DownloadInfo, DownloadStatus, FileConfig

_quote = json.encoder.encode_basestring_ascii

#: 2: the "unchanged" column; 3: "run" and "seq" (which run added a download last, and where in
#: its input: the report reads a run's downloads back in input order) and an index on "path".
SCHEMA_VERSION = 3

SCHEMA = """
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
    run INTEGER,
    seq INTEGER,
    UNIQUE (url, destination)
);
CREATE INDEX IF NOT EXISTS by_status_priority ON downloads (status, priority DESC, id);
"""
#: The indexes of version 3 (made by a new journal, and by the migration of an older one).
INDEXES_3 = (
    "CREATE INDEX IF NOT EXISTS by_run ON downloads (run, seq)",
    "CREATE INDEX IF NOT EXISTS by_path ON downloads (path)",
)
#: What each older version lacks of the next one (``MIGRATIONS[n]``: from n to n + 1); every row is kept.
MIGRATIONS = {
    1: ("ALTER TABLE downloads ADD COLUMN unchanged INTEGER NOT NULL DEFAULT 0",),
    2: ("ALTER TABLE downloads ADD COLUMN run INTEGER", "ALTER TABLE downloads ADD COLUMN seq INTEGER",
        *INDEXES_3),
}
COLUMNS = (
    "id, url, config, priority, status, bytes, total, attempts, path, error, error_type, started_at, finished_at, "
    "unchanged"
)


@dataclass(frozen=True)
class JournalRow:
    """One download as the journal holds it."""

    id: int
    config: FileConfig
    info: DownloadInfo


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A download the journal held already when asked to insert it again.

    ``status`` reads ``queued`` as ``pending``; ``path`` and ``size`` are what its last
    attempt recorded; ``options`` is its stored configuration as the journal wrote it.
    """

    id: int
    status: str
    path: str | None
    size: int
    options: str = ""


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
    if config.continue_partial:
        parts.append('"continue_partial":true')
    if config.mirrors:
        parts.append('"mirrors":' + json.dumps(list(config.mirrors)))
    return "{" + ",".join(parts) + "}"


_PLAIN_KEY = destination_key(FileConfig(url="http://placeholder/"))


def row_values(item: FileConfig | str) -> tuple[str, str, str, int]:
    """The journal row of a FileConfig, or of a URL string (already validated) with defaults:
    the common case of a huge list of plain URLs, which needs no FileConfig."""
    if isinstance(item, str):
        return item, _PLAIN_KEY, '{"url":' + _quote(item) + "}", 0
    return item.url, destination_key(item), config_to_json(item), item.priority


#: A download began: the row's status, path, size and attempts (its first start kept).
STARTED = ("UPDATE downloads SET status='in_progress', path=?, total=?, attempts=?, "
           "started_at=COALESCE(started_at, ?) WHERE id=?")
#: A final status, with what the attempt that reached it recorded (see :func:`finished_values`).
FINISHED = ("UPDATE downloads SET status=?, bytes=?, total=?, attempts=?, path=?, error=?, error_type=?, "
            "started_at=?, finished_at=?, unchanged=? WHERE id=?")


def finished_values(row_id: int, info: DownloadInfo) -> tuple[object, ...]:
    """The parameters of :data:`FINISHED` for row ``row_id`` reaching ``info``."""
    return (info.status.value, info.bytes_downloaded, info.total_bytes, info.attempts,
            str(info.path) if info.path else None, info.error, info.error_type, info.started_at,
            info.finished_at, int(info.unchanged), row_id)


def stored_row(db: sqlite3.Connection, row: tuple[str, str, str, int], newest: int, seen: set[int]) -> StoredRow | None:
    """What ``Journal.insert`` returns for ``row`` (see there): None for a new one, else the
    row held already; ``newest``: the last id before the batch, ``seen``: its ids met so far."""
    found = db.execute(
        "SELECT id, status, path, bytes, config FROM downloads WHERE url = ? AND destination = ?",
        (row[0], row[1])).fetchone()
    row_id, status, path, size, options = found
    if row_id > newest:  # added by this batch: new the first time, a repeat after
        first = row_id not in seen
        seen.add(row_id)
        return None if first else StoredRow(row_id, "pending", path, size, options)
    return StoredRow(row_id, "pending" if status == "queued" else status, path, size, options)


def config_from_json(text: str) -> FileConfig:
    """The FileConfig that :func:`config_to_json` wrote."""
    return FileConfig(**json.loads(text))


def read_version(db: sqlite3.Connection) -> int | None:
    """The schema version of an open journal; None for an empty file.

    :raises sqlite3.DatabaseError: the file holds something else than a journal.
    """
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return None
    if "meta" not in tables or "downloads" not in tables:
        raise sqlite3.DatabaseError("it holds other tables than a pydownloads journal")
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None or not str(row[0]).isdigit():
        raise sqlite3.DatabaseError("it has no schema version")
    return int(row[0])


def prepare_schema(db: sqlite3.Connection, path: Path) -> int:
    """Make the journal open on ``db`` (in autocommit mode) this version's: a new one gets
    the schema, an older one is migrated in one transaction, every row kept.  Returns the
    number of the run opening it (one more than the last one's, recorded).

    :raises StateFileError: the file was written by a newer pydownloads.
    :raises sqlite3.DatabaseError: the file holds something else than a journal, or is corrupt.
    """
    version = read_version(db)
    if version is None:
        db.executescript("BEGIN;" + SCHEMA + "".join(f"{index};" for index in INDEXES_3) + "COMMIT;")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    elif version > SCHEMA_VERSION:
        raise StateFileError(
            f"{path} was written by a newer pydownloads (schema {version}, this one reads "
            f"{SCHEMA_VERSION}); upgrade pydownloads or use another state file")
    elif version < SCHEMA_VERSION:
        db.execute("BEGIN")
        try:
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    db.execute(statement)
            db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    db.execute("PRAGMA quick_check")
    last = db.execute("SELECT value FROM meta WHERE key='run'").fetchone()
    run = int(last[0]) + 1 if last is not None and str(last[0]).isdigit() else 1
    db.execute("INSERT OR REPLACE INTO meta VALUES ('run', ?)", (str(run),))
    return run


def info_from_row(row: tuple[Any, ...]) -> DownloadInfo:
    """The DownloadInfo of a row read with ``COLUMNS`` (``queued`` read as pending)."""
    _, url, _, _, status, size, total, attempts, path, error, error_type, started, finished, unchanged = row
    status = "pending" if status == "queued" else status
    return DownloadInfo(
        url=url, status=DownloadStatus(status), bytes_downloaded=size, total_bytes=total,
        path=Path(path) if path else None, error=error, error_type=error_type, attempts=attempts,
        started_at=started, finished_at=finished, unchanged=bool(unchanged),
    )



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
        version = read_version(db)
        if version is None:
            raise StateFileError(f"{path} is empty: not a state file yet")
        if version > SCHEMA_VERSION:
            raise StateFileError(f"{path} was written by a newer pydownloads (schema {version})")
        counts: dict[str, int] = {}
        for status, count in db.execute("SELECT status, COUNT(*) FROM downloads GROUP BY status"):
            key = "pending" if status == "queued" else status
            counts[key] = counts.get(key, 0) + int(count)
        failures = [info_from_row(row) for row in db.execute(
            f"SELECT {COLUMNS} FROM downloads WHERE status='failed' ORDER BY id")]
        return JournalStatus(path, counts, failures)
    except sqlite3.DatabaseError as error:
        raise StateFileError(f"{path} is not a usable state file: {error}", cause=error) from error
    finally:
        db.close()
