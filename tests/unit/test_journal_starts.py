"""The journal's per-file work made cheap: starts held until the next commit, a refill
not piled up, the claims of a batch checked with one query."""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from pydownloads.domain.models import DownloadInfo, DownloadStatus
from pydownloads.downloads.feeder import JournalQueue
from pydownloads.downloads.job import PathClaims
from pydownloads.infrastructure.commits import LatestWrites
from pydownloads.infrastructure.journal import Journal, JournalRow
from pydownloads.tracking.tracker import DownloadTracker


def _committed(state: Path) -> dict[str, tuple[str, str | None, int]]:
    """What another connection reads (only what is committed): url -> (status, path, attempts)."""
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
        return {url: (status, path, attempts)
                for url, status, path, attempts in db.execute("SELECT url, status, path, attempts FROM downloads")}


def _queued(tmp_path: Path, count: int = 1) -> tuple[Journal, list[JournalRow]]:
    journal = Journal(tmp_path / "state.db")
    journal.insert([f"http://127.0.0.1:9/{n}" for n in range(count)])
    rows = journal.next_pending(count)
    journal.flush()
    return journal, rows


def _start(journal: Journal, row: JournalRow, tmp_path: Path, attempt: int = 1) -> None:
    journal.started(row.id, path=tmp_path / f"f{row.id}", total=3, attempt=attempt, started_at=1.0)


def test_a_start_is_written_with_the_next_commit(tmp_path: Path) -> None:
    journal, (row,) = _queued(tmp_path)
    _start(journal, row, tmp_path)
    _start(journal, row, tmp_path, attempt=2)  # the latest of a row is what is written
    assert _committed(tmp_path / "state.db")[row.config.url][0] == "queued"
    journal.flush()
    assert _committed(tmp_path / "state.db")[row.config.url] == ("in_progress", str(tmp_path / f"f{row.id}"), 2)
    journal.close()


def test_a_reader_of_the_journal_sees_a_held_start(tmp_path: Path) -> None:
    journal, (row,) = _queued(tmp_path)
    _start(journal, row, tmp_path)
    info = journal.lookup(row.config.url)
    assert info is not None and info.status is DownloadStatus.IN_PROGRESS
    journal.close()


def test_a_start_held_past_the_commit_interval_is_committed_at_once(tmp_path: Path) -> None:
    journal, (row,) = _queued(tmp_path)
    journal._last_commit = time.monotonic() - 10  # no commit for a while
    _start(journal, row, tmp_path)
    assert _committed(tmp_path / "state.db")[row.config.url][0] == "in_progress"
    journal.close()


@pytest.mark.parametrize("status", [DownloadStatus.COMPLETED, DownloadStatus.FAILED, DownloadStatus.CANCELLED])
def test_a_final_status_supersedes_a_held_start(tmp_path: Path, status: DownloadStatus) -> None:
    journal, (row,) = _queued(tmp_path)
    _start(journal, row, tmp_path)
    journal.finished(row.id, DownloadInfo(url=row.config.url, status=status, attempts=1, started_at=1.0,
                                          finished_at=2.0, path=tmp_path / "final"))
    journal.flush()
    journal.close()  # the start, dropped, is never written over the final status
    assert _committed(tmp_path / "state.db")[row.config.url] == (status.value, str(tmp_path / "final"), 1)


def test_a_start_still_held_at_close_is_written(tmp_path: Path) -> None:
    journal, rows = _queued(tmp_path, 2)
    _start(journal, rows[0], tmp_path)
    journal.finished(rows[1].id, DownloadInfo(url=rows[1].config.url, status=DownloadStatus.COMPLETED))
    journal.close()
    committed = _committed(tmp_path / "state.db")
    assert (committed[rows[0].config.url][0], committed[rows[1].config.url][0]) == ("in_progress", "completed")


def test_latest_writes_keep_the_latest_per_key_and_drop_the_superseded() -> None:
    writes: LatestWrites[int, str] = LatestWrites()
    for key, item in [(1, "a"), (2, "b"), (1, "c"), (3, "d")]:
        writes.put(key, item)
    assert writes.take(superseded=[3]) == ["c", "b"]
    assert writes.take() == []


class _CountingJournal:
    """next_pending counted (a journal of nothing pending)."""

    def __init__(self) -> None:
        self.calls = 0

    def next_pending(self, limit: int) -> list[JournalRow]:
        self.calls += 1
        return []


def test_a_worker_does_not_wait_for_another_threads_refill(tmp_path: Path) -> None:
    journal = _CountingJournal()
    feed = JournalQueue(journal, DownloadTracker(), tmp_path, window=64,  # type: ignore[arg-type]
                        stopping=threading.Event())
    outcome: list[str] = []

    def take() -> None:
        try:
            feed.get(timeout=0.01)
        except queue.Empty:
            outcome.append("empty")

    with feed._feed_lock:  # another thread is refilling
        worker = threading.Thread(target=take, daemon=True)
        worker.start()
        worker.join(10)
        assert not worker.is_alive() and outcome == ["empty"]
        assert journal.calls == 0
    with pytest.raises(queue.Empty):
        feed.get(timeout=0.01)
    assert journal.calls == 1  # alone, it refills


def test_claims_of_a_batch_ask_the_state_file_once_and_meet_completed_downloads_and_each_other(
        tmp_path: Path) -> None:
    asked: list[list[str]] = []
    completed = {str(tmp_path / "done.bin"): ["http://h/done"]}

    def completed_owners(paths: Sequence[str]) -> dict[str, list[str]]:
        asked.append(list(paths))
        return {path: completed[path] for path in paths if path in completed}

    claims = PathClaims()
    claims.bind(completed_owners)
    held = tmp_path / "held.bin"
    assert claims.try_claim(held, "http://h/held") is None
    asked.clear()
    owners = claims.try_claim_all([
        (tmp_path / "done.bin", "http://h/other"),  # a download of this run completed to it
        (tmp_path / "done.bin", "http://h/done"),  # the same URL again: its own file
        (tmp_path / "new.bin", "http://h/a"),
        (tmp_path / "new.bin", "http://h/b"),  # the one before in the batch owns it now
        (Path(str(held) + ".part"), "http://h/c"),  # held's part file
    ])
    assert owners == ["http://h/done", None, None, "http://h/a", "http://h/held"]
    assert len(asked) == 1  # one question for the batch
    assert claims.try_claim_all([(held, "http://h/held")]) == [None]
    assert len(asked) == 1  # a name a claim holds: nothing to ask
