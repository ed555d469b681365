"""Keys seen so far, kept on disk: the duplicate check of an input of millions of lines.

A :class:`DiskSet` is a private temporary SQLite database (SQLite's temporary folder, removed
when closed) holding a 16-byte BLAKE2 digest of each key and the value first given with it,
so that memory stays flat however many keys: a page cache of a few MiB, nothing per key.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence

#: Pages of the database's cache, in KiB (SQLite's default: 2 MiB).
_CACHE_KIB = 4096


class DiskSet:
    """A set of string keys, each with the value it was first added with.

    Two keys are the same when their 128-bit BLAKE2b digests are (a chance of about
    ``n**2 / 2**129`` that two different keys of ``n`` meet: none in practice).
    One thread; close it (or use ``with``) to remove the file.
    """

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)  # "": a temporary file of its own
        self._db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE seen (key BLOB PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")

    def add_all(self, pairs: Sequence[tuple[str, str]]) -> list[str | None]:
        """Add each ``(key, value)``; for each, None if its key is new, else the value the key
        was first added with (within ``pairs`` too: the first of them)."""
        rows = [(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest(), value)
                for key, value in pairs]
        db = self._db
        db.execute("BEGIN")
        before = db.total_changes
        db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?)", rows)
        all_new = db.total_changes - before == len(rows)
        db.execute("COMMIT")
        if all_new:  # the usual case
            return [None] * len(rows)
        found: list[str | None] = []
        for digest, value in rows:
            first = db.execute("SELECT value FROM seen WHERE key=?", (digest,)).fetchone()[0]
            found.append(None if first == value else str(first))
        return found

    def close(self) -> None:
        """Remove the database (idempotent)."""
        self._db.close()

    def __enter__(self) -> DiskSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
