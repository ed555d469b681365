"""The group commit: concurrent final statuses share commits, and none is reported before
its commit has returned (GroupCommit alone, then the journal and the tracker over it)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pydownloads.domain.models import DownloadInfo, DownloadStatus
from pydownloads.infrastructure.commits import GroupCommit
from pydownloads.infrastructure.journal import Journal
from pydownloads.tracking.tracker import DownloadTracker
from tests.support import wait_until


class _GatedWrite:
    """A ``write`` that records each batch and holds the first until ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[int]] = []
        self.returned = 0

    def __call__(self, items: list[int]) -> None:
        self.batches.append(list(items))
        self.entered.set()
        assert self.gate.wait(10)
        self.returned += 1


def _submit_all(group: GroupCommit[int], items: range) -> tuple[list[threading.Thread], list[int]]:
    done: list[int] = []

    def submit(item: int) -> None:
        group.submit(item)
        done.append(item)

    threads = [threading.Thread(target=submit, args=(i,)) for i in items]
    for thread in threads:
        thread.start()
    return threads, done


def test_writes_made_while_a_commit_runs_share_the_next_one() -> None:
    write = _GatedWrite()
    group: GroupCommit[int] = GroupCommit(write)
    first, first_done = _submit_all(group, range(1))
    assert write.entered.wait(10)  # item 0's caller commits its batch, and waits
    others, others_done = _submit_all(group, range(1, 9))
    assert wait_until(lambda: group.pending == 8)
    assert first_done == [] and others_done == []  # nobody returns before its commit has
    write.gate.set()
    for thread in first + others:
        thread.join(10)
    group.close()
    assert write.batches == [[0], sorted(write.batches[1])] and sorted(write.batches[1]) == list(range(1, 9))
    assert group.commits == 2  # 9 writes, 2 commits
    assert sorted(first_done + others_done) == list(range(9))


def test_a_failed_commit_fails_every_write_of_its_batch_and_the_next_one_goes_on() -> None:
    gate, entered = threading.Event(), threading.Event()
    calls: list[list[int]] = []

    def write(items: list[int]) -> None:
        calls.append(list(items))
        if len(calls) == 1:
            entered.set()
            assert gate.wait(10)
        elif len(calls) == 2:
            raise OSError("disk full")

    group: GroupCommit[int] = GroupCommit(write)
    errors: list[BaseException] = []

    def submit(item: int) -> None:
        try:
            group.submit(item)
        except OSError as error:
            errors.append(error)

    threads = [threading.Thread(target=submit, args=(0,))]
    threads[0].start()
    assert entered.wait(10)
    threads += [threading.Thread(target=submit, args=(i,)) for i in (1, 2, 3)]
    for thread in threads[1:]:
        thread.start()
    assert wait_until(lambda: group.pending == 3)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 3  # the three of the failed batch, not the first
    group.submit(4)  # the committer still works
    group.close()
    assert calls[-1] == [4]


def test_a_lone_write_is_committed_at_once_in_its_callers_thread() -> None:
    batches: list[tuple[list[str], threading.Thread]] = []
    group: GroupCommit[str] = GroupCommit(lambda items: batches.append((list(items), threading.current_thread())))
    group.submit("a")
    assert batches == [(["a"], threading.current_thread())]  # no hand-over to another thread
    group.close()
    group.submit("b")
    assert [items for items, _ in batches] == [["a"], ["b"]]
    group.close()  # idempotent
    assert group.commits == 2


def test_flush_waits_for_the_commit_under_way() -> None:
    write = _GatedWrite()
    group: GroupCommit[int] = GroupCommit(write)
    threads, _ = _submit_all(group, range(1))
    assert write.entered.wait(10)
    flushed = threading.Event()
    flusher = threading.Thread(target=lambda: (group.flush(), flushed.set()))
    flusher.start()
    assert not flushed.wait(0.05)  # the commit has not returned: neither has flush
    write.gate.set()
    assert flushed.wait(10)
    assert write.returned == 1
    for thread in [*threads, flusher]:
        thread.join(10)
    group.close()


# -- the journal ----------------------------------------------------------------------------


class _CountingDb:
    """The journal's connection, counting COMMITs; the first waits for ``gate``."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.commits = 0
        self.gate = threading.Event()
        self.entered = threading.Event()

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT":
            self.commits += 1
            if self.commits == 1:
                self.entered.set()
                assert self.gate.wait(10)
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return getattr(self._db, name)  # type: ignore[no-any-return]


def _completed(url: str, path: Path) -> DownloadInfo:
    return DownloadInfo(url=url, status=DownloadStatus.COMPLETED, bytes_downloaded=3, total_bytes=3,
                        path=path, attempts=1, started_at=1.0, finished_at=2.0)


def _committed_statuses(state: Path) -> dict[str, str]:
    """What another connection reads: only what is committed."""
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT url, status FROM downloads").fetchall())


def test_concurrent_final_statuses_share_commits_and_none_returns_before_its_commit(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    journal = Journal(state)
    urls = [f"http://127.0.0.1:9/{i}" for i in range(9)]
    journal.insert(urls)
    rows = journal.next_pending(9)
    journal.flush()
    counting = _CountingDb(journal._db)
    journal._db = counting  # type: ignore[assignment]
    returned: list[str] = []

    def finish(row_id: int, url: str) -> None:
        journal.finished(row_id, _completed(url, tmp_path / "f"))
        assert _committed_statuses(state)[url] == "completed"  # committed when finished returns
        returned.append(url)

    threads = [threading.Thread(target=finish, args=(rows[0].id, rows[0].config.url))]
    threads[0].start()
    assert counting.entered.wait(10)  # the first final status is being committed
    threads += [threading.Thread(target=finish, args=(row.id, row.config.url)) for row in rows[1:]]
    for thread in threads[1:]:
        thread.start()
    assert wait_until(lambda: journal._group.pending == 8)
    assert returned == []
    counting.gate.set()
    for thread in threads:
        thread.join(10)
    assert sorted(returned) == sorted(urls)
    assert counting.commits == 2  # 9 final statuses, 2 commits
    journal.close()
    assert set(_committed_statuses(state).values()) == {"completed"}


def test_a_cancelled_download_does_not_wait_for_a_commit(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state.db")
    journal.insert(["http://127.0.0.1:9/a"])
    row = journal.next_pending(1)[0]
    journal.flush()
    journal.finished(row.id, DownloadInfo(url=row.config.url, status=DownloadStatus.CANCELLED))
    assert journal._group.commits == 0
    assert _committed_statuses(tmp_path / "state.db")[row.config.url] == "queued"  # committed later
    journal.close()
    assert _committed_statuses(tmp_path / "state.db")[row.config.url] == "cancelled"


# -- the tracker -----------------------------------------------------------------------------


class _GatedStore:
    """A tracker store whose ``finished`` waits for ``gate`` (a commit that takes its time)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.finished_infos: list[DownloadInfo] = []

    def started(self, row_id: int, *, path: Path, total: int | None, attempt: int, started_at: float) -> None:
        pass

    def finished(self, row_id: int, info: DownloadInfo) -> None:
        self.entered.set()
        assert self.gate.wait(10)
        self.finished_infos.append(info)

    def lookup(self, url: str) -> DownloadInfo | None:
        return next((i for i in self.finished_infos if i.url == url), None)

    def rows(self, status: str | None = None) -> Any:
        return iter(self.finished_infos)

    def counts(self) -> dict[str, int]:
        return {"pending": 1}

    def total_bytes(self) -> int:
        return 0


@pytest.mark.parametrize("status", [DownloadStatus.COMPLETED, DownloadStatus.FAILED])
def test_the_tracker_shows_no_final_status_before_the_store_has_it(tmp_path: Path, status: DownloadStatus) -> None:
    store = _GatedStore()
    tracker = DownloadTracker(clock=lambda: 5.0)
    tracker.bind_store(store)
    assert tracker.adopt("http://h/a", 1, DownloadInfo(url="http://h/a", status=DownloadStatus.PENDING))
    tracker.mark_started("http://h/a", path=tmp_path / "a", total_bytes=3, attempt=1)
    tracker.add_bytes("http://h/a", 3)
    results: list[DownloadInfo] = []
    error = None if status is DownloadStatus.COMPLETED else OSError("gone")
    thread = threading.Thread(target=lambda: results.append(
        tracker.mark_finished("http://h/a", status, path=tmp_path / "a", error=error)))
    thread.start()
    assert store.entered.wait(10)
    info = tracker.get_download("http://h/a")
    assert info is not None and info.status is DownloadStatus.IN_PROGRESS and info.finished_at is None
    stats = tracker.get_stats()
    assert stats.in_progress == 1 and stats.completed == stats.failed == 0
    store.gate.set()
    thread.join(10)
    assert results and results[0].status is status and store.finished_infos == results
    stats = tracker.get_stats()
    assert stats.in_progress == 0 and (stats.completed, stats.failed) == (
        (1, 0) if status is DownloadStatus.COMPLETED else (0, 1))
    assert stats.bytes_downloaded == 3
    assert results[0].finished_at == results[0].started_at == 5.0
    assert (results[0].error_type is None) == (error is None)
