"""The manager's policy for downloads a state file holds already (downloads/revisit.py)."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pydownloads.domain.models import DownloadInfo, DownloadStatus, FileConfig
from pydownloads.downloads import revisit
from pydownloads.downloads.revisit import add_to_journal
from pydownloads.infrastructure.journal import Journal
from pydownloads.infrastructure.journal_format import config_from_json

URL = "http://127.0.0.1:1/a.bin"


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    opened = Journal(tmp_path / "state.db")
    yield opened
    opened.close()


def finish(journal: Journal, row_id: int, status: DownloadStatus, path: Path | None, size: int) -> None:
    journal.finished(row_id, DownloadInfo(url=URL, status=status, bytes_downloaded=size, path=path,
                                          error="boom" if status is DownloadStatus.FAILED else None))


def journaled(journal: Journal, status: DownloadStatus, path: Path | None = None, size: int = 0) -> int:
    """The id of a row for URL, finished with ``status``."""
    add_to_journal(journal, [URL], retry_failed=False)
    (row,) = journal.next_pending(1)
    finish(journal, row.id, status, path, size)
    return row.id


def test_new_downloads_and_repeats_within_a_batch(journal: Journal) -> None:
    assert add_to_journal(journal, [URL, "http://127.0.0.1:1/b.bin"], retry_failed=False) == [
        (0, None, "pending"), (0, None, "pending")]
    other = "http://127.0.0.1:1/c.bin"
    results = add_to_journal(journal, [other, other, URL], retry_failed=False)
    assert [r[1:] for r in results] == [(None, "pending"), ("pending", "pending"), ("pending", "pending")]
    assert journal.counts() == {"pending": 3}


@pytest.mark.parametrize(("retry_failed", "now"), [(False, "failed"), (True, "pending")])
def test_a_failed_download_goes_again_only_with_retry_failed(journal: Journal, retry_failed: bool,
                                                             now: str) -> None:
    row_id = journaled(journal, DownloadStatus.FAILED)
    assert add_to_journal(journal, [URL], retry_failed=retry_failed) == [(row_id, "failed", now)]
    assert journal.counts() == {now: 1}
    if now == "pending":
        assert journal.lookup(URL) == DownloadInfo(url=URL, status=DownloadStatus.PENDING)  # error forgotten


def test_a_completed_download_goes_again_when_its_file_is_gone_or_wrong(journal: Journal, tmp_path: Path) -> None:
    body = b"x" * 100
    target = tmp_path / "a.bin"
    target.write_bytes(body)
    row_id = journaled(journal, DownloadStatus.COMPLETED, target, len(body))
    assert add_to_journal(journal, [URL], retry_failed=False) == [(row_id, "completed", "completed")]
    good = FileConfig(url=URL, checksum="sha256:" + hashlib.sha256(body).hexdigest())
    assert add_to_journal(journal, [good], retry_failed=False) == [(row_id, "completed", "completed")]
    bad = FileConfig(url=URL, checksum="sha256:" + hashlib.sha256(b"other").hexdigest())
    assert add_to_journal(journal, [bad], retry_failed=False) == [(row_id, "completed", "pending")]
    finish(journal, row_id, DownloadStatus.COMPLETED, target, len(body) + 1)  # the size is off
    assert add_to_journal(journal, [URL], retry_failed=False) == [(row_id, "completed", "pending")]
    finish(journal, row_id, DownloadStatus.COMPLETED, target, len(body))
    target.unlink()
    assert add_to_journal(journal, [URL], retry_failed=False) == [(row_id, "completed", "pending")]


def test_if_changed_sends_a_completed_download_again_without_reading_it(journal: Journal, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    row_id = journaled(journal, DownloadStatus.COMPLETED, tmp_path / "a.bin", 1)
    monkeypatch.setattr(revisit, "file_intact", lambda *args: pytest.fail("the file was read"))
    assert add_to_journal(journal, [FileConfig(url=URL, if_changed=True)], retry_failed=False) == [
        (row_id, "completed", "pending")]


def test_files_are_checked_while_the_journal_is_free(journal: Journal, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashing a big file must not stop the workers' journal writes: no lock is held."""
    journaled(journal, DownloadStatus.COMPLETED, tmp_path / "gone.bin", 1)
    answered = threading.Event()

    def read() -> None:
        journal.counts()
        answered.set()

    def check_while_another_thread_reads(path: str | None, size: int, config: FileConfig) -> bool:
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(5)
        return False

    monkeypatch.setattr(revisit, "file_intact", check_while_another_thread_reads)
    add_to_journal(journal, [URL], retry_failed=False)
    assert answered.is_set()


def test_a_row_made_pending_meanwhile_is_not_counted_twice(journal: Journal) -> None:
    row_id = journaled(journal, DownloadStatus.FAILED)
    assert journal.requeue(row_id, FileConfig(url=URL), status="failed")  # another caller was first
    assert not journal.requeue(row_id, FileConfig(url=URL), status="failed")
    journal.finished(row_id, DownloadInfo(url=URL, status=DownloadStatus.FAILED))
    (stored,) = journal.insert([URL])
    assert stored is not None and stored.status == "failed"
    journal.requeue(row_id, FileConfig(url=URL), status="failed")
    assert revisit._revisit(journal, stored, URL, retry_failed=True) == (row_id, "pending", "pending")


def stored_options(journal: Journal, row_id: int) -> tuple[FileConfig, int]:
    journal.flush()
    with sqlite3.connect(journal.path) as db:
        text, priority = db.execute("SELECT config, priority FROM downloads WHERE id=?", (row_id,)).fetchone()
    return config_from_json(text), priority


NEWER = FileConfig(url=URL, priority=7, headers={"Authorization": "Bearer NEW"}, checksum="sha256:" + "a" * 64,
                   expected_size=5, segments=2, rate_limit=100.0, if_changed=True,
                   mirrors=("http://127.0.0.1:2/a.bin",))


@pytest.mark.parametrize("status", [None, DownloadStatus.IN_PROGRESS, DownloadStatus.CANCELLED,
                                    DownloadStatus.FAILED])
def test_whatever_is_not_completed_takes_the_newest_options(journal: Journal, status: DownloadStatus | None) -> None:
    add_to_journal(journal, [FileConfig(url=URL, headers={"Authorization": "Bearer OLD"})], retry_failed=False)
    (row,) = journal.next_pending(1)  # queued: a run killed now leaves it so (None)
    if status is DownloadStatus.IN_PROGRESS:
        journal.started(row.id, path=Path("a.bin"), total=5, attempt=1, started_at=0.0)
    elif status is not None:
        finish(journal, row.id, status, None, 0)
    journal.close()
    rerun = Journal(journal.path)
    try:
        rerun.requeue_unfinished(retry_failed=False)
        before = rerun.lookup(URL)
        add_to_journal(rerun, [NEWER], retry_failed=False)
        assert stored_options(rerun, row.id) == (NEWER, 7)
        assert rerun.lookup(URL) == before  # its status and progress stay: only the options change
    finally:
        rerun.close()


@pytest.mark.parametrize("live", ["queued", "in_progress"])
def test_a_download_this_run_is_running_keeps_the_options_it_runs_with(journal: Journal, live: str) -> None:
    add_to_journal(journal, [URL], retry_failed=False)
    (row,) = journal.next_pending(1)
    if live == "in_progress":
        journal.started(row.id, path=Path("a.bin"), total=5, attempt=1, started_at=0.0)
    add_to_journal(journal, [NEWER], retry_failed=False)
    assert stored_options(journal, row.id) == (FileConfig(url=URL), 0)


def test_a_completed_download_keeps_its_options(journal: Journal, tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"12345")
    row_id = journaled(journal, DownloadStatus.COMPLETED, target, 5)
    add_to_journal(journal, [FileConfig(url=URL, priority=3)], retry_failed=False)
    assert stored_options(journal, row_id) == (FileConfig(url=URL), 0)


def test_an_earlier_runs_downloads_wait_for_this_runs_options(journal: Journal, tmp_path: Path) -> None:
    add_to_journal(journal, [URL], retry_failed=False)
    journal.close()
    rerun = Journal(journal.path)
    try:
        rerun.requeue_unfinished(retry_failed=False)
        assert rerun.next_pending(5) == []  # held: the run has not said its options yet
        add_to_journal(rerun, [NEWER], retry_failed=False)
        (row,) = rerun.next_pending(5)
        assert row.config == NEWER
    finally:
        rerun.close()


def test_waiting_for_the_run_lets_an_earlier_runs_downloads_go_on(journal: Journal) -> None:
    add_to_journal(journal, [URL], retry_failed=False)
    journal.close()
    rerun = Journal(journal.path)
    try:
        rerun.requeue_unfinished(retry_failed=False)
        rerun.release_carried()  # what JournalQueue.join does: nothing more is coming
        assert [row.config.url for row in rerun.next_pending(5)] == [URL]
    finally:
        rerun.close()


def test_a_download_added_again_in_a_later_batch_still_takes_its_new_options(journal: Journal) -> None:
    """Batches of one run: what an earlier run left waits for the whole input, not only the
    first batch, so that one added again in a later batch never runs with its old options."""
    add_to_journal(journal, [URL], retry_failed=False)
    journal.close()
    rerun = Journal(journal.path)
    try:
        rerun.requeue_unfinished(retry_failed=False)
        add_to_journal(rerun, ["http://127.0.0.1:1/first-batch.bin"], retry_failed=False)
        assert [row.config.url for row in rerun.next_pending(5)] == ["http://127.0.0.1:1/first-batch.bin"]
        add_to_journal(rerun, [NEWER], retry_failed=False)  # a later batch
        (row,) = rerun.next_pending(5)
        assert row.config == NEWER
    finally:
        rerun.close()


def test_what_the_input_does_not_add_again_goes_on_once_all_is_added(journal: Journal) -> None:
    from pydownloads.downloads.journaled import add_journaled
    from pydownloads.events.emitter import EventEmitter
    from pydownloads.tracking.tracker import DownloadTracker

    add_to_journal(journal, [URL], retry_failed=False)
    journal.close()
    rerun = Journal(journal.path)
    try:
        rerun.requeue_unfinished(retry_failed=False)
        tracker = DownloadTracker()
        tracker.bind_store(rerun)
        add_journaled(["http://127.0.0.1:1/b.bin"], rerun, tracker=tracker, emitter=EventEmitter(),
                      retry_failed=False, check_open=lambda: None, start_workers=lambda: None)
        assert sorted(row.config.url for row in rerun.next_pending(5)) == [URL, "http://127.0.0.1:1/b.bin"]
    finally:
        rerun.close()
