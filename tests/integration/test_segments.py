"""Multi-segment downloads, work stealing, fallbacks, and politeness (hosts, rate, speed, deadline)."""

from __future__ import annotations

import time
from pathlib import Path

from pydownloads import DownloadManager, DownloadStatus, FileConfig, RetryConfig
from pydownloads.infrastructure import transport
from pydownloads.infrastructure.limits import HostLimiter
from pydownloads.localserver import IgnoreRange, LocalServer, ResetAfter, Slow
from tests.integration.helpers import EventLog, file_sha256, files_under, payload, sha256
from tests.support import wait_until

RETRY = RetryConfig(max_retries=4, base_delay=0.01, max_delay=0.05)
MIB = 1 << 20


def manager(tmp_path: Path, **options: object) -> DownloadManager:
    options.setdefault("retry_config", RETRY)
    options.setdefault("min_segment_size", MIB)
    return DownloadManager(tmp_path, **options)  # type: ignore[arg-type]


def ranges_asked(server: LocalServer, path: str) -> list[tuple[int, int | None]]:
    result = []
    for record in server.requests:
        if record.path == path and record.range:
            first, _, last = record.range[len("bytes="):].partition("-")
            result.append((int(first), int(last) if last else None))
    return result


def test_a_large_file_is_fetched_in_parallel_ranges(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(16 * MIB, 1)
    url = local_server.add_file("/seg.bin", body, rate=8 * MIB)  # per connection
    with manager(tmp_path, max_segments=4) as m:
        log = EventLog(m.worker.emitter)
        m.add_to_queue([url])
        m.queue.join()
    assert file_sha256(tmp_path / "seg.bin") == sha256(body)
    local_server.wait_idle()
    assert local_server.max_concurrency == 4
    assert len(ranges_asked(local_server, "/seg.bin")) >= 3
    assert local_server.bytes_sent("/seg.bin") < len(body) * 1.05  # no range fetched twice (but cut-off tails)
    kinds = log.kinds(url)
    assert kinds.count("DownloadStarted") == 1 and kinds.count("DownloadCompleted") == 1
    info = m.tracker.get_download(url)
    assert info is not None and info.bytes_downloaded == len(body) and info.total_bytes == len(body)
    chunks = log.of("ChunkDownloaded")
    assert sum(c.bytes_downloaded for c in chunks) == len(body)  # type: ignore[attr-defined]
    assert max(c.total_downloaded for c in chunks) == len(body)  # type: ignore[attr-defined]
    assert files_under(tmp_path) == [tmp_path / "seg.bin"]


def test_fast_lanes_steal_from_a_slow_one(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(12 * MIB, 2)
    url = local_server.add_file("/steal.bin", body)
    local_server.add_faults("/steal.bin", Slow(300_000))  # the first connection crawls
    started = time.monotonic()
    with manager(tmp_path, max_segments=3) as m:
        m.add_to_queue([url])
        m.queue.join()
    elapsed = time.monotonic() - started
    assert file_sha256(tmp_path / "steal.bin") == sha256(body)
    # Without stealing the slow connection alone would need 4 MiB / 300 KB/s ≈ 14 s.
    assert elapsed < 8, elapsed
    stolen = [first for first, _ in ranges_asked(local_server, "/steal.bin") if first < 4 * MIB]
    assert stolen, "a range inside the slow first segment was taken over"


def test_a_server_ignoring_ranges_falls_back_to_one_stream(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(8 * MIB, 3)
    url = local_server.add_file("/ign.bin", body, rate=16 * MIB)
    local_server.add_faults("/ign.bin", *[IgnoreRange()] * 10)  # says Accept-Ranges, answers 200
    with manager(tmp_path, max_segments=4) as m:
        m.add_to_queue([url])
        m.queue.join()
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.COMPLETED, info
    assert file_sha256(tmp_path / "ign.bin") == sha256(body)


def test_failing_segments_fall_back_to_fewer_connections(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(8 * MIB, 4)
    url = local_server.add_file("/flaky.bin", body)
    local_server.add_faults("/flaky.bin", *[ResetAfter(200_000)] * 6)
    with manager(tmp_path, max_segments=4, retry_config=RetryConfig(max_retries=8, base_delay=0.01,
                                                                    max_delay=0.02)) as m:
        m.add_to_queue([url])
        m.queue.join()
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.COMPLETED, info
    assert file_sha256(tmp_path / "flaky.bin") == sha256(body)


def test_segments_resume_across_runs_fetching_only_missing_bytes(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(12 * MIB, 5)
    url = local_server.add_file("/res.bin", body, rate=3 * MIB)
    first = manager(tmp_path, max_segments=4)
    first.add_to_queue([url])
    assert wait_until(lambda: first.tracker.get_stats().bytes_downloaded >= 4 * MIB)
    first.shutdown(wait_for_current=False)
    import json

    saved = json.loads((tmp_path / "res.bin.part.json").read_text())
    kept = sum(end - start for start, end in saved["ranges"])
    assert kept > 0 and len(saved["ranges"]) >= 2
    local_server.add_file("/res.bin", body)
    assert local_server.wait_idle()
    local_server.reset_stats()
    with manager(tmp_path, max_segments=4) as second:
        second.add_to_queue([url])
        second.queue.join()
    assert file_sha256(tmp_path / "res.bin") == sha256(body)
    # The missing bytes, plus what was in flight on a lane cut short when a faster one split
    # its range (see docs/ARCHITECTURE.md, "Multi-segment downloads").
    assert len(body) - kept <= local_server.bytes_sent("/res.bin") <= len(body) - kept + len(body) // 4
    assert files_under(tmp_path) == [tmp_path / "res.bin"]


def _host_limiter(m: DownloadManager) -> HostLimiter:
    limiter = m.worker._context.limiter
    assert limiter is not None
    return limiter


def test_connections_per_host_are_capped_over_files_and_segments(local_server: LocalServer, tmp_path: Path) -> None:
    bodies = {f"/h{i}.bin": payload(3 * MIB, 10 + i) for i in range(4)}
    for path, body in bodies.items():
        local_server.add_file(path, body, rate=6 * MIB)
        local_server.hold(path)
    m = manager(tmp_path, max_workers=4, max_segments=4, max_connections_per_host=3)
    limiter, host = _host_limiter(m), transport.host_of(local_server.url("/"))
    peak = 0
    original = limiter.acquire

    def watched(host, cancel_event, *, wait=True, priority=0):  # type: ignore[no-untyped-def]
        nonlocal peak
        taken = original(host, cancel_event, wait=wait, priority=priority)
        peak = max(peak, limiter.in_use(host))
        return taken

    limiter.acquire = watched  # type: ignore[method-assign]
    with m:
        m.add_to_queue([local_server.url(p) for p in bodies])
        # Which three downloads reach the limiter first is up to the scheduler (equal
        # priorities); once three requests are held and the fourth download waits for a
        # slot, nothing can move until a release, so the count below is final.
        assert wait_until(lambda: len(local_server.requests) == 3 and limiter.waiting(host) == 1)
        assert len(local_server.requests) == 3
        for path in bodies:
            local_server.release(path)
        m.queue.join()
    assert peak == 3
    for path, body in bodies.items():
        assert file_sha256(tmp_path / path[1:]) == sha256(body)


def test_a_freed_host_slot_goes_to_the_highest_priority_download_waiting(
        local_server: LocalServer, tmp_path: Path) -> None:
    paths = ["/a.bin", "/b.bin", "/low.bin", "/high.bin"]
    bodies = {path: payload(MIB, 20 + i) for i, path in enumerate(paths)}
    for path, body in bodies.items():
        local_server.add_file(path, body)
        local_server.hold(path)
    m = manager(tmp_path, max_workers=4, max_segments=4, max_connections_per_host=2)
    limiter, host = _host_limiter(m), transport.host_of(local_server.url("/"))
    with m:
        m.add_to_queue([local_server.url("/a.bin"), local_server.url("/b.bin")])
        assert wait_until(lambda: len(local_server.requests) == 2)  # both slots held at the server
        # The low-priority download comes first to the limiter, the high-priority one after it.
        m.add_to_queue([FileConfig(url=local_server.url("/low.bin"), priority=0)])
        assert wait_until(lambda: limiter.waiting(host) == 1)
        m.add_to_queue([FileConfig(url=local_server.url("/high.bin"), priority=5)])
        assert wait_until(lambda: limiter.waiting(host) == 2)
        local_server.release("/a.bin")  # a.bin completes and frees its slot
        assert local_server.wait_for_requests("/high.bin", 1, timeout=10)
        # b.bin and high.bin (held) have both slots: low.bin still waits, and never asked.
        assert limiter.waiting(host) == 1 and local_server.request_count("/low.bin") == 0
        for path in paths:
            local_server.release(path)
        m.queue.join()
    for path, body in bodies.items():
        assert file_sha256(tmp_path / path[1:]) == sha256(body)


def test_rate_limit_is_shared_by_all_downloads(local_server: LocalServer, tmp_path: Path) -> None:
    for i in range(3):
        local_server.add_file(f"/rl{i}", payload(400_000, i))
    started = time.monotonic()
    with manager(tmp_path, max_workers=3, rate_limit=1_000_000) as m:
        m.add_to_queue([local_server.url(f"/rl{i}") for i in range(3)])
        m.queue.join()
    # 1.2 MB at 1 MB/s, less the 100 KB burst: it cannot take less than 1.1 s.
    assert time.monotonic() - started >= 1.05
    assert m.tracker.get_stats().completed == 3


def test_per_file_rate_limit(local_server: LocalServer, tmp_path: Path) -> None:
    fast = local_server.add_file("/fast", payload(300_000, 1))
    slow = local_server.add_file("/slow", payload(300_000, 2))
    with manager(tmp_path, max_workers=2) as m:
        log = EventLog(m.worker.emitter)
        m.add_to_queue([fast, FileConfig(url=slow, rate_limit=500_000)])
        m.queue.join()
    completed = {e.url: e.elapsed for e in log.of("DownloadCompleted")}  # type: ignore[attr-defined]
    assert completed[slow] >= 0.5 > completed[fast]


def test_a_dripping_server_fails_in_bounded_time(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/drip", payload(100_000), rate=2_000)
    started = time.monotonic()
    with manager(tmp_path, min_speed=20_000, min_speed_window=0.3,
                 retry_config=RetryConfig(max_retries=1, base_delay=0.01, max_delay=0.02)) as m:
        m.add_to_queue([url])
        m.queue.join()
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.FAILED and info.error_type == "DownloadTimeoutError"
    assert info.attempts == 2 and time.monotonic() - started < 3


def test_a_deadline_ends_the_download_without_retrying(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/late", payload(1_000_000), rate=200_000)
    started = time.monotonic()
    with manager(tmp_path, deadline=0.5) as m:
        m.add_to_queue([url])
        m.queue.join()
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.FAILED and info.error_type == "DeadlineExceededError"
    assert info.attempts == 1 and time.monotonic() - started < 2


def test_a_deadline_also_bounds_retry_waits(local_server: LocalServer, tmp_path: Path) -> None:
    from pydownloads.localserver import Status

    url = local_server.add_file("/busy", b"x")
    local_server.add_faults("/busy", *[Status(503, {"Retry-After": "2"})] * 5)
    started = time.monotonic()
    with manager(tmp_path, deadline=0.5, retry_config=RetryConfig(max_retries=4, base_delay=0.01, max_delay=5)) as m:
        m.add_to_queue([url])
        m.queue.join()
    info = m.tracker.get_download(url)
    assert info is not None and info.error_type == "DeadlineExceededError"
    assert time.monotonic() - started < 1.5


def test_our_own_rate_limit_does_not_count_as_a_slow_server(local_server: LocalServer, tmp_path: Path) -> None:
    urls = [local_server.add_file(f"/rl{i}", payload(150_000, i)) for i in range(4)]
    with manager(tmp_path, max_workers=4, rate_limit=400_000, min_speed=150_000, min_speed_window=0.3) as m:
        m.add_to_queue(urls)
        m.queue.join()
    assert m.tracker.get_stats().completed == 4
