"""A Dask job's shards without Dask: names, results read from state files, an earlier lock."""

from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path

import pytest

from pydownloads import DownloadInfo, DownloadResults, DownloadsFailedError, DownloadStatus, FileConfig
from pydownloads._shards import (
    ShardDigest,
    ShardedDownloads,
    check_job,
    job_folders,
    job_status,
    shard_file,
    state_file_busy,
    summary_stats,
    wait_until_free,
)
from pydownloads.domain.errors import InvalidArgumentError, StateFileError
from pydownloads.infrastructure.journal import Journal
from pydownloads.infrastructure.journal_reader import read_summary


def digest(*items: FileConfig | str) -> str:
    shard = ShardDigest()
    for item in items:
        shard.add(item)
    return shard.hexdigest()


def test_a_shard_is_named_by_its_urls_and_destinations_not_its_other_options() -> None:
    url = "https://h/a"
    assert digest(url) == digest(FileConfig(url=url)) == digest(FileConfig(url=url, checksum="sha256:" + "0" * 64))
    assert digest(url) != digest(FileConfig(url=url, filename="b"))
    assert digest(url, "https://h/b") != digest("https://h/b", url) != digest(url)
    assert shard_file(Path("/d"), "job", 3, "ab") == Path("/d/.pydownloads-shards/job/000003-ab.db")


@pytest.mark.parametrize("bad", ["", ".hidden", "a/b", "..", "x" * 101, 3, None])
def test_a_job_name_is_one_plain_folder_name(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        check_job(bad)
    assert check_job("nightly-2026.12_02") == "nightly-2026.12_02"


def write_shard(path: Path, rows: list[tuple[str, DownloadStatus, int]]) -> None:
    journal = Journal(path)
    try:
        journal.insert([url for url, _, _ in rows])
        for row, (url, status, size) in zip(journal.next_pending(len(rows)), rows, strict=True):
            if status is not DownloadStatus.PENDING:
                journal.finished(row.id, DownloadInfo(url=url, status=status, bytes_downloaded=size,
                                                      error="HTTP 404" if status is DownloadStatus.FAILED else None))
    finally:
        journal.close()


@pytest.fixture
def two_shards(tmp_path: Path) -> tuple[Path, ...]:
    first, second = shard_file(tmp_path, "job", 0, "aa"), shard_file(tmp_path, "job", 1, "bb")
    write_shard(first, [("https://h/1", DownloadStatus.COMPLETED, 10), ("https://h/2", DownloadStatus.FAILED, 0)])
    write_shard(second, [("https://h/3", DownloadStatus.COMPLETED, 5), ("https://h/4", DownloadStatus.PENDING, 0),
                         ("https://h/5", DownloadStatus.FAILED, 0)])
    return first, second


def test_results_read_from_the_shards_give_counts_failures_and_records_in_order(two_shards: tuple[Path, ...]) -> None:
    stored = ShardedDownloads(two_shards, summary_stats(read_summary(p) for p in two_shards))
    results = DownloadResults(stored)
    stats = results.stats
    assert (stats.total, stats.completed, stats.failed, stats.cancelled, stats.bytes_downloaded) == (5, 2, 2, 1, 15)
    assert [i.url for i in results.failed] == ["https://h/2", "https://h/5"]
    assert [i.url for i in results.completed] == ["https://h/1", "https://h/3"]
    assert list(results.downloads) == [f"https://h/{n}" for n in range(1, 6)]
    assert len(results.downloads) == 5
    # Not final when the job ended: it did not finish.
    assert results.downloads["https://h/4"].status is DownloadStatus.CANCELLED
    assert "https://h/9" not in results.downloads
    assert results.get_all_downloads()["https://h/3"].bytes_downloaded == 5
    with pytest.raises(DownloadsFailedError) as caught:
        results.raise_for_failures()
    assert [f.url for f in caught.value.failures] == ["https://h/2", "https://h/4", "https://h/5"]
    copy = pickle.loads(pickle.dumps(results))
    assert copy == results and len(pickle.dumps(results)) < 1000  # the paths, not the records


def test_iterating_the_records_is_lazy(two_shards: tuple[Path, ...]) -> None:
    stored = ShardedDownloads(two_shards, summary_stats(read_summary(p) for p in two_shards))
    records = iter(stored.values())
    assert next(records).url == "https://h/1"
    two_shards[1].unlink()  # not read yet: its records were never in memory
    assert next(records).url == "https://h/2"
    with pytest.raises(StateFileError):
        next(records)


def test_the_status_of_a_job_sums_the_newest_file_of_each_shard(two_shards: tuple[Path, ...]) -> None:
    folder = two_shards[0].parent
    older = folder / "000001-0ld.db"
    write_shard(older, [(f"https://h/old{i}", DownloadStatus.FAILED, 0) for i in range(4)])
    os.utime(older, (1, 1))
    status = job_status(folder)
    assert status.counts == {"completed": 2, "failed": 2, "pending": 1} and status.total == 5
    assert [i.url for i in status.failures] == ["https://h/2", "https://h/5"]
    assert job_folders(folder.parent.parent) == [folder]
    assert job_folders(folder) == []
    with pytest.raises(StateFileError):
        job_status(folder.parent)


def test_a_state_file_held_by_an_earlier_task_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    assert not state_file_busy(path)
    journal = Journal(path)
    assert state_file_busy(path)
    released = threading.Event()

    def release() -> None:
        released.wait(10)
        journal.close()

    closer = threading.Thread(target=release)
    closer.start()
    looks: list[int] = []

    def cancelled() -> bool:
        looks.append(1)
        if len(looks) == 3:
            released.set()
        return False

    wait_until_free(path, timeout=10, cancelled=cancelled, interval=0.01)
    closer.join(10)
    assert len(looks) >= 3 and not state_file_busy(path)


def test_the_wait_is_bounded_and_cancellable(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    journal = Journal(path)
    try:
        now = [0.0]

        def clock() -> float:
            now[0] += 1.0
            return now[0]

        with pytest.raises(StateFileError, match="still in use"):
            wait_until_free(path, timeout=5, cancelled=lambda: False, interval=0.001, clock=clock)
        with pytest.raises(StateFileError, match="cancelled"):
            wait_until_free(path, timeout=60, cancelled=lambda: True)
    finally:
        journal.close()


def test_a_shards_list_of_files_goes_by_the_folder_as_given(tmp_path: Path) -> None:
    from pydownloads._shards import read_shard_input, shard_input, write_shard_input

    items: list[FileConfig | str] = [
        "https://h/a?x=\"1\"", FileConfig(url="https://h/b", filename="b.bin", priority=3, headers={"X": "y"},
                                           checksum="sha256:" + "0" * 64, mirrors=("https://m/b",)),
        "https://h/ü"]
    path = shard_input(shard_file(tmp_path, "job", 0, "ab"))
    assert path.name == "000000-ab.jsonl"
    write_shard_input(path, items)
    write_shard_input(path, items)  # replaced, no temporary file left
    assert read_shard_input(path) == items
    assert [p.name for p in path.parent.iterdir()] == [path.name]
