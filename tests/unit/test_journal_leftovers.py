"""A closed journal leaves only its state file: no SQLite -wal/-shm files beside it."""

from __future__ import annotations

from pathlib import Path

from pydownloads.infrastructure.journal import Journal, read_status


def _beside(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_reading_after_close_leaves_no_wal_files(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    journal = Journal(state)
    journal.insert(["http://127.0.0.1:1/a.bin", "http://127.0.0.1:1/b.bin"])
    journal.close()
    assert _beside(state) == ["state.db"]
    assert journal.counts() == {"pending": 2}  # a read-only connection after the run
    assert read_status(state).total == 2
    assert _beside(state) == ["state.db"]


def test_a_reopened_journal_writes_again(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    first = Journal(state)
    first.insert(["http://127.0.0.1:1/a.bin"])
    first.close()
    second = Journal(state)
    try:
        second.insert(["http://127.0.0.1:1/b.bin"])
        assert second.counts() == {"pending": 2}
    finally:
        second.close()
    assert _beside(state) == ["state.db"]
