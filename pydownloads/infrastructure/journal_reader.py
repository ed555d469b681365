"""Reading a state file row by row without writing it or taking its lock.

The :class:`~pydownloads.infrastructure.journal.Journal` of a run holds the file's lock and
reads through its own connection; these functions are for another process (or the same one
after the run): the client of a Dask job reading its shards' state files, the command's
``status``.  Each opens a read-only connection of its own, safe while a run writes the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydownloads.domain.errors import StateFileError
from pydownloads.domain.models import DownloadInfo
from pydownloads.infrastructure.journal_format import COLUMNS, info_from_row

__all__ = ["JournalSummary", "find_row", "iter_rows", "read_summary"]

#: Rows fetched from SQLite at a time while iterating: memory stays flat over millions.
_FETCH = 1000


@dataclass(frozen=True)
class JournalSummary:
    """Downloads by status (``queued`` counted as pending) and the bytes of all of them."""

    counts: dict[str, int]
    bytes: int


def _open(path: Path) -> sqlite3.Connection:
    if not Path(path).is_file():
        raise StateFileError(f"no state file at {path}")
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    except sqlite3.Error as error:
        raise StateFileError(f"{path} is not a usable state file: {error}", cause=error) from error


def read_summary(path: Path) -> JournalSummary:
    """The counts and bytes of the state file at ``path``.

    :raises StateFileError: missing, corrupt or not a journal.
    """
    db = _open(path)
    try:
        counts: dict[str, int] = {}
        for status, count in db.execute("SELECT status, COUNT(*) FROM downloads GROUP BY status"):
            key = "pending" if status == "queued" else status
            counts[key] = counts.get(key, 0) + int(count)
        size = int(db.execute("SELECT COALESCE(SUM(bytes), 0) FROM downloads").fetchone()[0])
        return JournalSummary(counts, size)
    except sqlite3.DatabaseError as error:
        raise StateFileError(f"{path} is not a usable state file: {error}", cause=error) from error
    finally:
        db.close()


def iter_rows(path: Path, statuses: Sequence[str] = ()) -> Iterator[DownloadInfo]:
    """Every download of the state file at ``path`` (or those whose stored status is one of
    ``statuses``), in queue order, read a thousand rows at a time.

    :raises StateFileError: missing, corrupt or not a journal (when iteration starts).
    """
    query = f"SELECT {COLUMNS} FROM downloads"
    if statuses:
        query += f" WHERE status IN ({','.join('?' * len(statuses))})"
    db = _open(path)
    try:
        try:
            cursor = db.execute(query + " ORDER BY id", tuple(statuses))
        except sqlite3.DatabaseError as error:
            raise StateFileError(f"{path} is not a usable state file: {error}", cause=error) from error
        while rows := cursor.fetchmany(_FETCH):
            yield from (info_from_row(row) for row in rows)
    finally:
        db.close()


def find_row(path: Path, url: str) -> DownloadInfo | None:
    """The most recent download of ``url`` in the state file at ``path``, or None.

    :raises StateFileError: missing, corrupt or not a journal.
    """
    db = _open(path)
    try:
        row = db.execute(f"SELECT {COLUMNS} FROM downloads WHERE url=? ORDER BY id DESC LIMIT 1",
                         (url,)).fetchone()
    except sqlite3.DatabaseError as error:
        raise StateFileError(f"{path} is not a usable state file: {error}", cause=error) from error
    finally:
        db.close()
    return None if row is None else info_from_row(row)
