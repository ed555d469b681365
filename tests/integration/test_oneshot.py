"""``pydownloads.download``, its async twin, ``DownloadManager.join`` and the default number of
connections per host, against the local server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import pydownloads
import pydownloads.aio
from pydownloads import (
    DownloadManager,
    DownloadResults,
    DownloadSettings,
    DownloadsFailedError,
    DownloadStatus,
    FileConfig,
    InvalidArgumentError,
    RetryConfig,
)
from pydownloads.localserver import LocalServer
from tests.integration.helpers import file_sha256, payload, sha256, wait_until

RETRY = RetryConfig(max_retries=1, base_delay=0.01, max_delay=0.02)
MIB = 1 << 20


def test_one_call_downloads_everything_and_returns_the_results_in_input_order(
        local_server: LocalServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    bodies = {f"/f{i}.bin": payload(50_000 + i, i) for i in range(5)}
    urls = [local_server.add_file(path, body) for path, body in bodies.items()]
    missing = local_server.url("/missing.bin")
    files: list[FileConfig | str] = [*urls[:2], missing, FileConfig(url=urls[2], filename="third.bin"), *urls[3:]]
    results = pydownloads.download(files, tmp_path / "out", max_workers=3, retry_config=RETRY)
    assert isinstance(results, DownloadResults)
    assert list(results.downloads) == [*urls[:2], missing, *urls[2:]]
    assert [i.url for i in results.completed] == urls and [i.url for i in results.failed] == [missing]
    assert results.stats.completed == 5 and results.stats.failed == 1
    assert results.get_all_downloads()[missing].error_type == "HTTPStatusError"
    for path, body in bodies.items():
        name = "third.bin" if path == "/f2.bin" else path[1:]
        assert file_sha256(tmp_path / "out" / name) == sha256(body)
    with pytest.raises(DownloadsFailedError) as caught:
        results.raise_for_failures()
    assert [i.url for i in caught.value.failures] == [missing] and missing in str(caught.value)
    # Standard error is not a terminal under pytest, nor is this a notebook: no bars.
    assert capfd.readouterr().err == ""


def test_one_call_takes_settings_and_one_url(local_server: LocalServer, tmp_path: Path,
                                             capfd: pytest.CaptureFixture[str]) -> None:
    url = local_server.add_file("/one.bin", payload(70_000, 9))
    settings = DownloadSettings.from_options(2, retry_config=RETRY)
    results = pydownloads.download(url, tmp_path, settings=settings, progress=True)
    assert [i.status for i in results.downloads.values()] == [DownloadStatus.COMPLETED]
    results.raise_for_failures()
    assert "1/1 files" in capfd.readouterr().err  # the bars asked for
    with pytest.raises(InvalidArgumentError):
        pydownloads.download(url, tmp_path, settings=settings, max_workers=2)
    with pytest.raises(InvalidArgumentError):
        pydownloads.download([url, 3], tmp_path)  # type: ignore[list-item]
    with pytest.raises(TypeError):
        pydownloads.download(url, tmp_path, no_such_option=1)  # type: ignore[call-arg]
    assert local_server.request_count("/one.bin") == 1  # the refused calls sent nothing


def test_the_async_twin_returns_the_same_results(local_server: LocalServer, tmp_path: Path) -> None:
    urls = [local_server.add_file(f"/a{i}.bin", payload(20_000, i)) for i in range(3)]

    async def main() -> DownloadResults:
        return await pydownloads.aio.download(urls, tmp_path, max_workers=2)

    results = asyncio.run(main())
    assert [i.url for i in results.completed] == urls
    assert all((tmp_path / f"a{i}.bin").exists() for i in range(3))


def test_one_call_with_a_state_file_reads_the_results_before_it_closes(local_server: LocalServer,
                                                                       tmp_path: Path) -> None:
    urls = [local_server.add_file(f"/s{i}.bin", payload(10_000, i)) for i in range(3)]
    first = pydownloads.download(urls, tmp_path, state_file=tmp_path / "state.db")
    again = pydownloads.download(urls, tmp_path, state_file=tmp_path / "state.db")
    assert first.stats.completed == again.stats.completed == 3
    assert local_server.request_count("/s0.bin") == 1  # the second call skipped it


@pytest.mark.parametrize("state", [False, True])
def test_join_returns_false_on_timeout_and_true_when_everything_finished(
        local_server: LocalServer, tmp_path: Path, state: bool) -> None:
    url = local_server.add_file("/held.bin", payload(10_000, 1))
    local_server.hold("/held.bin")
    options = {"state_file": tmp_path / "state.db"} if state else {}
    with DownloadManager(tmp_path, **options) as manager:  # type: ignore[arg-type]
        assert manager.join(timeout=0) is True  # nothing queued
        manager.add_to_queue([url])
        assert local_server.wait_for_requests("/held.bin", 1, timeout=10)
        assert manager.join(timeout=0.05) is False
        local_server.release("/held.bin")
        assert manager.join(timeout=30) is True
        assert manager.tracker.get_stats().completed == 1
        assert manager.join() is True
        with pytest.raises(InvalidArgumentError):
            manager.join(timeout=-1)


# -- connections per host -------------------------------------------------------------------


def test_the_default_per_host_limit_follows_the_workers_asked_for(local_server: LocalServer, tmp_path: Path) -> None:
    paths = [f"/w{i}.bin" for i in range(12)]
    for path in paths:
        local_server.add_file(path, payload(1000, 1))
        local_server.hold(path)
    with DownloadManager(tmp_path, max_workers=12, retry_config=RETRY) as manager:
        manager.add_to_queue([local_server.url(p) for p in paths])
        # All twelve at once, each held by the server: the old default cap (8) let in only 8.
        assert all(local_server.wait_for_requests(p, 1, timeout=10) for p in paths)
        assert local_server.max_concurrency == 12
        for path in paths:
            local_server.release(path)
    assert manager.tracker.get_stats().completed == 12


def test_an_explicit_per_host_limit_still_wins(local_server: LocalServer, tmp_path: Path) -> None:
    paths = [f"/c{i}.bin" for i in range(6)]
    for path in paths:
        local_server.add_file(path, payload(1000, 1))
        local_server.hold(path)
    with DownloadManager(tmp_path, max_workers=6, max_connections_per_host=2, retry_config=RETRY) as manager:
        manager.add_to_queue([local_server.url(p) for p in paths])
        # Which two get the host's slots first is up to the threads, not the queue order.
        assert wait_until(lambda: len(local_server.requests) >= 2, timeout=10)
        assert manager.join(timeout=0.3) is False  # room for a third to (wrongly) start
        assert local_server.max_concurrency == 2 and len(local_server.requests) == 2
        for path in paths:
            local_server.release(path)
    assert local_server.max_concurrency == 2 and manager.tracker.get_stats().completed == 6


@pytest.mark.parametrize("where", ["manager", "file"])
def test_the_default_per_host_limit_follows_the_segments_asked_for(
        local_server: LocalServer, tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture) -> None:
    body = payload(8 * MIB, 3)
    url = local_server.add_file("/big.bin", body, rate=2 * MIB)  # per connection: worth splitting
    options: dict[str, object] = {"max_segments": 12} if where == "manager" else {}
    item = url if where == "manager" else FileConfig(url=url, segments=12)
    results = pydownloads.download([item], tmp_path, max_workers=1, min_segment_size=256 << 10,
                                   retry_config=RETRY, **options)  # type: ignore[arg-type]
    results.raise_for_failures()
    assert file_sha256(tmp_path / "big.bin") == sha256(body)
    # More than the old default cap of 8, never more than the 12 asked for.
    assert 8 < local_server.max_concurrency <= 12
    # The session's pool holds every connection opened: none is dropped (and warned about).
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
