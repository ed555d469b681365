"""Resume within a run and across runs: never splice two versions, fetch only what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pydownloads import DownloadManager, DownloadStatus, FileConfig, RetryConfig
from pydownloads.localserver import IgnoreRange, LocalServer, ResetAfter, WrongRange
from tests.integration.helpers import EventLog, file_sha256, files_under, payload, sha256
from tests.support import wait_until

RETRY = RetryConfig(max_retries=4, base_delay=0.01, max_delay=0.05)
SIZE = 1_000_000


def run(tmp_path: Path, files: list[FileConfig | str], **options: object) -> DownloadManager:
    options.setdefault("retry_config", RETRY)
    options.setdefault("max_segments", 1)
    with DownloadManager(tmp_path, **options) as m:  # type: ignore[arg-type]
        m.add_to_queue(files)
        m.queue.join()
    return m


def range_start(value: str | None) -> int:
    assert value is not None and value.startswith("bytes=")
    return int(value[len("bytes="):].split("-")[0])


def test_a_broken_body_resumes_with_range_and_if_range(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(SIZE)
    url = local_server.add_file("/r.bin", body)
    local_server.add_faults("/r.bin", ResetAfter(300_000))
    m = run(tmp_path, [url])
    first, second = local_server.requests
    assert first.range is None
    offset = range_start(second.range)
    assert 0 < offset <= 300_000
    assert second.headers["If-Range"] == f'"{sha256(body)}"'
    assert file_sha256(tmp_path / "r.bin") == sha256(body)
    assert local_server.bytes_sent("/r.bin") - SIZE <= 300_000 - offset  # only the lost tail twice
    info = m.tracker.get_download(url)
    assert info is not None and info.attempts == 2 and info.bytes_downloaded == SIZE
    assert files_under(tmp_path) == [tmp_path / "r.bin"]  # no part file, no sidecar


def test_a_server_cutting_every_response_still_yields_the_file(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(SIZE, 2)
    url = local_server.add_file("/cut.bin", body)
    local_server.add_faults("/cut.bin", *[ResetAfter(150_000)] * 30)
    run(tmp_path, [url], retry_config=RetryConfig(max_retries=20, base_delay=0.0, max_delay=0.01))
    assert file_sha256(tmp_path / "cut.bin") == sha256(body)
    assert local_server.request_count("/cut.bin") >= 7
    offsets = [range_start(r.range) for r in local_server.requests[1:]]
    assert offsets == sorted(offsets)  # each attempt goes on from where the last stopped


def test_a_changed_file_restarts_instead_of_splicing(local_server: LocalServer, tmp_path: Path) -> None:
    old, new = payload(SIZE, 3), payload(SIZE, 4)
    url = local_server.add_file("/v.bin", old, etag='"v1"')
    local_server.add_faults("/v.bin", ResetAfter(400_000))
    with DownloadManager(tmp_path, retry_config=RETRY, max_segments=1) as m:
        log = EventLog(m.worker.emitter)

        def change_file(event: object) -> None:  # the file changes while we wait to retry
            local_server.replace_file("/v.bin", new, etag='"v2"')

        m.worker.emitter.on("worker.retrying", change_file)
        m.add_to_queue([url])
        m.queue.join()
    assert file_sha256(tmp_path / "v.bin") == sha256(new)
    reasons = [e.reason for e in log.of("DownloadRetrying")]  # type: ignore[attr-defined]
    assert any("restarting from zero" in r for r in reasons), reasons
    # The resumed request got the whole new file (If-Range failed) and used it: no third request.
    assert [(r.status, r.headers.get("If-Range")) for r in local_server.requests] == [(200, None), (200, '"v1"')]


def test_a_server_ignoring_range_restarts_with_its_full_answer(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(SIZE, 5)
    url = local_server.add_file("/b.bin", body)
    local_server.add_faults("/b.bin", ResetAfter(250_000), IgnoreRange())
    m = run(tmp_path, [url])
    assert file_sha256(tmp_path / "b.bin") == sha256(body)
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.COMPLETED and info.attempts == 2
    assert [r.status for r in local_server.requests] == [200, 200]


def test_a_wrong_content_range_restarts_cleanly(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(SIZE, 5)
    url = local_server.add_file("/b.bin", body)
    local_server.add_faults("/b.bin", ResetAfter(250_000), WrongRange(1000))
    m = run(tmp_path, [url])
    assert file_sha256(tmp_path / "b.bin") == sha256(body)
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.COMPLETED and info.attempts == 3
    assert local_server.requests[-1].range is None  # the restart is a plain GET from zero


def test_a_416_restarts_cleanly(local_server: LocalServer, tmp_path: Path) -> None:
    body, shorter = payload(SIZE, 6), payload(100_000, 7)
    url = local_server.add_file("/s.bin", body, etag=None)  # validated by Last-Modified only
    local_server.add_faults("/s.bin", ResetAfter(300_000))
    with DownloadManager(tmp_path, retry_config=RETRY, max_segments=1) as m:
        m.worker.emitter.on("worker.retrying", lambda e: local_server.replace_file("/s.bin", shorter, etag=None))
        m.add_to_queue([url])
        m.queue.join()
    assert [r.status for r in local_server.requests] == [200, 416, 200]
    assert file_sha256(tmp_path / "s.bin") == sha256(shorter)


def test_a_cancelled_download_resumes_in_the_next_run(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(4_000_000, 8)
    url = local_server.add_file("/big.bin", body, rate=2_000_000)
    first = DownloadManager(tmp_path, max_segments=1, retry_config=RETRY)
    first.add_to_queue([url])
    assert wait_until(lambda: first.tracker.get_stats().bytes_downloaded >= 1_000_000)
    first.shutdown(wait_for_current=False)
    assert sorted(p.name for p in files_under(tmp_path)) == ["big.bin.part", "big.bin.part.json"]
    sent_before = local_server.bytes_sent("/big.bin")
    local_server.add_file("/big.bin", body)  # same bytes and validators, no throttle
    assert local_server.wait_idle()  # the aborted response has stopped sending
    local_server.reset_stats()

    second = run(tmp_path, [url])

    [request] = local_server.requests
    offset = range_start(request.range)
    assert 0 < offset <= sent_before
    assert local_server.bytes_sent("/big.bin") == len(body) - offset  # only the missing bytes
    assert file_sha256(tmp_path / "big.bin") == sha256(body)
    assert files_under(tmp_path) == [tmp_path / "big.bin"]
    info = second.tracker.get_download(url)
    assert info is not None and info.bytes_downloaded == len(body)


def test_a_part_file_of_another_version_is_not_resumed(local_server: LocalServer, tmp_path: Path) -> None:
    old, new = payload(2_000_000, 9), payload(2_000_000, 10)
    url = local_server.add_file("/o.bin", old, etag='"old"', rate=2_000_000)
    first = DownloadManager(tmp_path, max_segments=1, retry_config=RETRY)
    first.add_to_queue([url])
    assert wait_until(lambda: first.tracker.get_stats().bytes_downloaded >= 300_000)
    first.shutdown(wait_for_current=False)
    local_server.add_file("/o.bin", new, etag='"new"')
    assert local_server.wait_idle()
    local_server.reset_stats()
    run(tmp_path, [url])
    assert file_sha256(tmp_path / "o.bin") == sha256(new)
    assert local_server.bytes_sent("/o.bin") == len(new)


def test_checksum_mismatch_is_retried_once_then_fails_cleanly(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(300_000, 11)
    good = local_server.add_file("/good.bin", body)
    bad = local_server.add_file("/bad.bin", body)
    m = run(tmp_path, [
        FileConfig(url=good, checksum=f"sha256:{sha256(body)}"),
        FileConfig(url=bad, checksum="md5:" + "0" * 32),
    ])
    downloads = m.tracker.get_all_downloads()
    assert downloads[good].status is DownloadStatus.COMPLETED
    failed = downloads[bad]
    assert failed.status is DownloadStatus.FAILED and failed.error_type == "ChecksumMismatchError"
    assert failed.attempts == 2 and local_server.request_count("/bad.bin") == 2
    assert [p.name for p in files_under(tmp_path)] == ["good.bin"]


@pytest.mark.parametrize("segments", [1, 4])
def test_checksum_is_checked_for_every_algorithm(local_server: LocalServer, tmp_path: Path, segments: int) -> None:
    import hashlib

    body = payload(3_000_000, 12)
    configs = []
    for algorithm in ("md5", "sha1", "sha256", "sha512", "blake2b"):
        url = local_server.add_file(f"/{algorithm}.bin", body)
        configs.append(FileConfig(url=url, checksum=f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}",
                                  segments=segments))
    m = run(tmp_path, configs, min_segment_size=256_000, max_segments=4)  # type: ignore[arg-type]
    assert m.tracker.get_stats().completed == 5


def test_expected_size_mismatch_fails_before_the_body(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/size.bin", payload(1000))
    m = run(tmp_path, [FileConfig(url=url, expected_size=999)])
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.FAILED and info.error_type == "SizeMismatchError"
    assert files_under(tmp_path) == []
