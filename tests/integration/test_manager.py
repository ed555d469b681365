"""DownloadManager against a real local HTTP server: bytes, order, concurrency, statuses."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pydownloads import (
    DownloadManager,
    DownloadStatus,
    DownloadTracker,
    FileConfig,
    RetryConfig,
)
from pydownloads.downloads.transfer import Transfer
from pydownloads.localserver import LocalServer, ResetAfter, ShortBody, Stall, Status
from tests.integration.helpers import EventLog, file_sha256, files_under, payload, sha256

FAST_RETRY = RetryConfig(max_retries=3, base_delay=0.01, max_delay=0.05)


def manager(tmp_path: Path, **kwargs: object) -> DownloadManager:
    kwargs.setdefault("retry_config", FAST_RETRY)
    kwargs.setdefault("timeout", (2.0, 2.0))
    return DownloadManager(download_dir=tmp_path / "out", **kwargs)  # type: ignore[arg-type]


def test_many_files_arrive_exact(local_server: LocalServer, tmp_path: Path) -> None:
    sizes = [0, 1, 100, 65_535, 65_536, 1_000_000, 3_000_001] + [4096 * i for i in range(1, 24)]
    bodies = {f"/f{i}.bin": payload(size, seed=i) for i, size in enumerate(sizes)}
    for path, body in bodies.items():
        local_server.add_file(path, body)
    tracker = DownloadTracker()
    with manager(tmp_path, max_workers=4, tracker=tracker) as m:
        assert m.add_to_queue([local_server.url(p) for p in bodies]) == len(bodies)
        m.queue.join()
    for path, body in bodies.items():
        assert file_sha256(tmp_path / "out" / path[1:]) == sha256(body)
    stats = tracker.get_stats()
    assert (stats.total, stats.completed, stats.failed) == (len(bodies), len(bodies), 0)
    assert stats.bytes_downloaded == sum(sizes)
    assert len(files_under(tmp_path / "out")) == len(bodies)  # no .part left behind


def test_priority_order_with_one_worker(local_server: LocalServer, tmp_path: Path) -> None:
    priorities = [3, -1, 10, 0, 10, 5, 0]
    files = []
    for i, priority in enumerate(priorities):
        local_server.add_file(f"/p{i}", b"x")
        files.append(FileConfig(url=local_server.url(f"/p{i}"), priority=priority))
    with manager(tmp_path, max_workers=1) as m:
        m.add_to_queue(files)
        m.queue.join()
    order = [record.path for record in local_server.requests]
    expected = [f"/p{i}" for i, _ in sorted(enumerate(priorities), key=lambda item: (-item[1], item[0]))]
    assert order == expected  # higher first, FIFO among equals


def test_concurrency_reaches_max_workers(local_server: LocalServer, tmp_path: Path) -> None:
    for i in range(8):
        local_server.add_file(f"/c{i}", payload(10_000, i))
        local_server.hold(f"/c{i}")
    with manager(tmp_path, max_workers=4) as m:
        m.add_to_queue([local_server.url(f"/c{i}") for i in range(8)])
        assert all(local_server.wait_for_requests(f"/c{i}", 1, timeout=5) for i in range(4))
        time.sleep(0.1)  # give a fifth request the chance to (wrongly) start before checking
        assert m.tracker.get_stats().in_progress + m.tracker.get_stats().pending == 8
        for i in range(8):
            local_server.release(f"/c{i}")
        m.queue.join()
    local_server.wait_idle()
    assert local_server.max_concurrency == 4
    assert m.tracker.get_stats().completed == 8


def test_events_come_in_order_for_each_download(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/e.bin", payload(3_000_000))
    with manager(tmp_path, chunk_size=1 << 20) as m:
        log = EventLog(m.worker.emitter)
        m.add_to_queue([url])
        m.queue.join()
    kinds = log.kinds(url)
    assert kinds[:2] == ["DownloadQueued", "DownloadStarted"]
    assert kinds[-1] == "DownloadCompleted"
    assert set(kinds[2:-1]) == {"ChunkDownloaded"} and len(kinds[2:-1]) >= 3
    completed = log.of("DownloadCompleted")[0]
    assert completed.bytes_downloaded == 3_000_000 and completed.attempts == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "fault",
    [ResetAfter(100_000), ShortBody(100_000), Stall(5.0, after_bytes=100_000)],
    ids=["reset", "short", "stall"],
)
def test_mid_body_failures_are_retried_to_exact_bytes(local_server: LocalServer, tmp_path: Path, fault: object) -> None:
    body = payload(500_000, 7)
    url = local_server.add_file("/m.bin", body)
    local_server.add_faults("/m.bin", fault)  # type: ignore[arg-type]
    with manager(tmp_path, timeout=(2.0, 0.3)) as m:
        log = EventLog(m.worker.emitter)
        m.add_to_queue([url])
        m.queue.join()
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.COMPLETED, info
    assert info.attempts == 2 and info.bytes_downloaded == len(body)
    assert file_sha256(tmp_path / "out" / "m.bin") == sha256(body)
    assert [e.attempt for e in log.of("DownloadRetrying")] == [2]  # type: ignore[attr-defined]
    assert local_server.request_count("/m.bin") == 2


def test_transient_statuses_retry_through_urllib3_with_events(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(1000)
    url = local_server.add_file("/s.bin", body)
    local_server.add_faults("/s.bin", Status(503, {"Retry-After": "3600"}), Status(429))
    started = time.monotonic()
    with manager(tmp_path) as m:
        log = EventLog(m.worker.emitter)
        m.add_to_queue([url])
        m.queue.join()
    assert time.monotonic() - started < 5  # Retry-After: 3600 was capped at max_delay
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.COMPLETED and info.attempts == 3
    retries = log.of("DownloadRetrying")
    seen = [(e.attempt, e.reason) for e in retries]  # type: ignore[attr-defined]
    assert seen == [(2, "HTTP 503 Service Unavailable"), (3, "HTTP 429 Too Many Requests")]  # the final errors' words
    assert retries[0].delay == pytest.approx(0.05)  # type: ignore[attr-defined]
    assert file_sha256(tmp_path / "out" / "s.bin") == sha256(body)


def test_retries_run_out_with_one_budget_for_both_layers(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/down.bin", b"never")
    local_server.add_faults("/down.bin", *[Status(503)] * 20)
    with manager(tmp_path) as m:
        m.add_to_queue([url])
        m.queue.join()
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.FAILED
    assert info.error_type == "HTTPStatusError" and "503" in (info.error or "")
    assert info.attempts == FAST_RETRY.max_retries + 1
    assert local_server.request_count("/down.bin") == FAST_RETRY.max_retries + 1
    assert files_under(tmp_path / "out") == []


def test_budget_spans_mid_body_and_status_retries(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/mix.bin", payload(200_000))
    local_server.add_faults("/mix.bin", ResetAfter(10), Status(503), ResetAfter(10), Status(503), Status(503))
    with manager(tmp_path) as m:
        m.add_to_queue([url])
        m.queue.join()
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.FAILED
    assert local_server.request_count("/mix.bin") == FAST_RETRY.max_retries + 1


def test_permanent_failures_are_not_retried(local_server: LocalServer, tmp_path: Path) -> None:
    ok = local_server.add_file("/ok.bin", b"fine")
    gone = local_server.url("/missing.bin")
    forbidden = local_server.add_file("/forbidden.bin", b"secret")
    local_server.add_faults("/forbidden.bin", Status(403))
    with manager(tmp_path, max_workers=2) as m:
        log = EventLog(m.worker.emitter)
        m.add_to_queue([ok, gone, forbidden])
        m.queue.join()
    downloads = m.tracker.get_all_downloads()
    assert downloads[ok].status is DownloadStatus.COMPLETED
    for url, status in ((gone, 404), (forbidden, 403)):
        assert downloads[url].status is DownloadStatus.FAILED and str(status) in (downloads[url].error or "")
        assert downloads[url].attempts == 1
    assert local_server.request_count("/missing.bin") == 1 and local_server.request_count("/forbidden.bin") == 1
    assert [p.name for p in files_under(tmp_path / "out")] == ["ok.bin"]
    assert len(log.of("DownloadFailed")) == 2 and log.of("DownloadRetrying") == []


def test_redirects_are_followed_and_named_by_the_original_url(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(5000)
    local_server.add_file("/real/target.bin", body)
    url = local_server.add_redirect("/short", "/real/target.bin")
    with manager(tmp_path) as m:
        m.add_to_queue([FileConfig(url=url, destination_subdir="a/b")])
        m.queue.join()
    assert file_sha256(tmp_path / "out" / "a" / "b" / "short") == sha256(body)


def test_content_disposition_names_the_file(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/dl", b"pdf", content_disposition='attachment; filename="../../Q3 report.pdf"')
    url += "?id=3"
    with manager(tmp_path) as m:
        m.add_to_queue([url])
        m.queue.join()
    assert [p.relative_to(tmp_path / "out").as_posix() for p in files_under(tmp_path / "out")] == ["Q3 report.pdf"]


def test_unknown_length_body_is_saved_whole(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(300_000, 3)
    url = local_server.add_file("/nolen.bin", body, send_length=False)
    with manager(tmp_path) as m:
        m.add_to_queue([url])
        m.queue.join()
    info = m.tracker.get_download(url)
    assert info is not None and info.total_bytes is None and info.status is DownloadStatus.COMPLETED
    assert file_sha256(tmp_path / "out" / "nolen.bin") == sha256(body)


def test_same_destination_never_overwrites_silently(local_server: LocalServer, tmp_path: Path) -> None:
    first, second = payload(1000, 1), payload(1000, 2)
    local_server.add_file("/a/data.csv", first)
    local_server.add_file("/b/data.csv", second)
    with manager(tmp_path, max_workers=2) as m:
        m.add_to_queue([local_server.url("/a/data.csv"), local_server.url("/b/data.csv")])
        m.queue.join()
    infos = list(m.tracker.get_all_downloads().values())
    assert sorted(i.status.value for i in infos) == ["completed", "failed"]
    loser = next(i for i in infos if i.status is DownloadStatus.FAILED)
    winner = next(i for i in infos if i.status is DownloadStatus.COMPLETED)
    assert loser.error_type == "DestinationConflictError"
    expected = first if winner.url.endswith("/a/data.csv") else second
    assert file_sha256(tmp_path / "out" / "data.csv") == sha256(expected)


def test_tracker_stays_consistent_while_downloads_run(local_server: LocalServer, tmp_path: Path) -> None:
    count = 200
    for i in range(count):
        local_server.add_file(f"/t{i}", payload(2000 + i, i))
    tracker = DownloadTracker()
    stop = threading.Event()
    problems: list[str] = []

    def watch() -> None:
        last_bytes = 0
        while not stop.is_set():
            stats = tracker.get_stats()
            parts = stats.pending + stats.in_progress + stats.completed + stats.failed + stats.cancelled
            if parts != stats.total:
                problems.append(f"counts {stats}")
            if stats.bytes_downloaded < last_bytes:
                problems.append(f"bytes went back {last_bytes} -> {stats.bytes_downloaded}")
            last_bytes = stats.bytes_downloaded
            tracker.get_all_downloads()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with manager(tmp_path, max_workers=8, tracker=tracker) as m:
            m.add_to_queue([local_server.url(f"/t{i}") for i in range(count)])
            m.queue.join()
    finally:
        stop.set()
        watcher.join(5)
    assert problems == []
    stats = tracker.get_stats()
    assert stats.completed == count and stats.bytes_downloaded == sum(2000 + i for i in range(count))


def test_a_crashing_worker_step_fails_the_download_but_not_the_pool(
    local_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = local_server.add_file("/good", b"fine")
    bad = local_server.add_file("/bad", b"boom")
    m = manager(tmp_path, max_workers=1)
    original = Transfer._finish

    def flaky_finish(self, part, size, hasher):  # type: ignore[no-untyped-def]
        if self._url.endswith("/bad"):
            raise RuntimeError("simulated bug")
        return original(self, part, size, hasher)

    monkeypatch.setattr(Transfer, "_finish", flaky_finish)
    with m:
        m.add_to_queue([FileConfig(url=bad, priority=1), good])
        m.queue.join()
    downloads = m.tracker.get_all_downloads()
    assert downloads[bad].status is DownloadStatus.FAILED and "simulated bug" in (downloads[bad].error or "")
    assert downloads[good].status is DownloadStatus.COMPLETED


def test_progress_true_shows_bars_until_shutdown(
    local_server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = [local_server.add_file(f"/p{i}.bin", payload(200_000, i)) for i in range(3)]
    with manager(tmp_path, progress=True) as m:
        m.add_to_queue(urls)
        m.queue.join()
    err = capsys.readouterr().err
    assert "3/3 files" in err
    assert m.tracker.get_stats().completed == 3
