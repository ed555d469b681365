"""DownloadResults: the one results type of ``pydownloads.download``, the command and Dask."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import pytest

import pydownloads
from pydownloads import DownloadError, DownloadInfo, DownloadResults, DownloadsFailedError, DownloadStatus
from pydownloads.api import shows_progress
from pydownloads.cli._report import Outcome

SECRET = "s3cr3t"


def info(url: str, status: DownloadStatus, **fields: object) -> DownloadInfo:
    return DownloadInfo(url=url, status=status, **fields)  # type: ignore[arg-type]


def mixed() -> DownloadResults:
    return DownloadResults.of([
        info("https://h/a", DownloadStatus.COMPLETED, bytes_downloaded=10, path=Path("a")),
        info(f"https://bob:{SECRET}@h/b", DownloadStatus.FAILED, bytes_downloaded=3,
             error=f"HTTP 404 Not Found from https://bob:{SECRET}@h/b", error_type="HTTPStatusError"),
        info("https://h/c", DownloadStatus.CANCELLED, error="cancelled by shutdown",
             error_type="DownloadCancelledError"),
        info("https://h/d", DownloadStatus.IN_PROGRESS, bytes_downloaded=1),
    ])


def test_results_keep_the_order_given_and_sort_by_status() -> None:
    results = mixed()
    assert list(results.downloads) == ["https://h/a", f"https://bob:{SECRET}@h/b", "https://h/c", "https://h/d"]
    assert [i.url for i in results.completed] == ["https://h/a"]
    assert [i.url for i in results.failed] == [f"https://bob:{SECRET}@h/b"]
    # Not final when the batch was over: it did not finish.
    assert results.downloads["https://h/d"].status is DownloadStatus.CANCELLED
    stats = results.stats
    assert (stats.total, stats.completed, stats.failed, stats.cancelled, stats.pending, stats.in_progress) == (
        4, 1, 1, 2, 0, 0)
    assert stats.bytes_downloaded == 14
    copy = results.get_all_downloads()
    copy.clear()
    assert len(results.downloads) == 4


def test_raise_for_failures_lists_every_download_that_did_not_complete_without_credentials() -> None:
    with pytest.raises(DownloadsFailedError) as caught:
        mixed().raise_for_failures()
    error = caught.value
    assert isinstance(error, DownloadError)
    assert [f.url for f in error.failures] == ["https://***@h/b", "https://h/c", "https://h/d"]
    text = str(error)
    assert "3 download(s)" in text and "https://***@h/b" in text and "HTTPStatusError" in text
    assert "https://h/c" in text and "https://h/d" in text and "https://h/a" not in text
    assert SECRET not in text and SECRET not in repr(error.failures)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is DownloadsFailedError and str(copy) == text and copy.failures == error.failures


def test_raise_for_failures_returns_when_everything_completed() -> None:
    DownloadResults.of([info("https://h/a", DownloadStatus.COMPLETED)]).raise_for_failures()
    DownloadResults().raise_for_failures()


def test_results_pickle() -> None:
    results = mixed()
    assert pickle.loads(pickle.dumps(results)) == results


def test_one_results_type_for_the_call_the_command_and_dask() -> None:
    pytest.importorskip("distributed")
    from pydownloads.distributed import DistributedResults

    assert DistributedResults is DownloadResults is pydownloads.DownloadResults
    outcome = Outcome(downloads=[info("https://h/a", DownloadStatus.COMPLETED)], elapsed=1.0)
    assert outcome.results == DownloadResults.of(outcome.downloads)


@pytest.mark.parametrize(("terminal", "kernel", "expected"), [
    (True, False, True), (False, True, True), (False, False, False)])
def test_progress_is_shown_where_a_terminal_or_a_notebook_shows_it(
        monkeypatch: pytest.MonkeyPatch, terminal: bool, kernel: bool, expected: bool) -> None:
    class Stream:
        def isatty(self) -> bool:
            return terminal

    shell = types.SimpleNamespace(kernel=object()) if kernel else types.SimpleNamespace()
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setattr(sys, "stderr", Stream())
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert shows_progress() is expected


def test_no_ipython_and_no_stderr_shows_no_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", None)
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert shows_progress() is False


class CountingStore(pydownloads.results.StoredDownloads):
    """Records kept elsewhere: counts how often they were all read."""

    def __init__(self, infos: list[DownloadInfo]) -> None:
        self.infos, self.full_reads = infos, 0

    def stats(self) -> pydownloads.DownloadStats:
        return pydownloads.DownloadStats(total=len(self.infos), completed=1, failed=1)

    def with_status(self, *statuses: DownloadStatus):  # type: ignore[no-untyped-def]
        return (i for i in self.infos if i.status in statuses)

    def __getitem__(self, url: str) -> DownloadInfo:
        return next(i for i in self.infos if i.url == url)

    def __iter__(self):  # type: ignore[no-untyped-def]
        self.full_reads += 1
        return (i.url for i in self.infos)

    def __len__(self) -> int:
        return len(self.infos)


def test_stored_records_give_counts_and_failures_without_reading_them_all() -> None:
    store = CountingStore([info("https://h/a", DownloadStatus.COMPLETED),
                           info("https://h/b", DownloadStatus.FAILED, error="HTTP 404")])
    results = DownloadResults(store)
    assert results.stats.total == 2 and [i.url for i in results.failed] == ["https://h/b"]
    assert [i.url for i in results.completed] == ["https://h/a"]
    with pytest.raises(DownloadsFailedError):
        results.raise_for_failures()
    assert store.full_reads == 0
