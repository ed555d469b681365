"""Mirrors: the same file from several places, never a corrupted file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pydownloads import DownloadManager, DownloadStatus, FileConfig, RetryConfig
from pydownloads.localserver import LocalServer, ResetAfter
from tests.integration.helpers import file_sha256, payload, sha256

RETRY = RetryConfig(max_retries=4, base_delay=0.01, max_delay=0.02)


def fetch(out: Path, config: FileConfig) -> DownloadManager:
    with DownloadManager(out, retry_config=RETRY, max_segments=1) as m:
        m.add_to_queue([config])
        m.queue.join()
    return m


def test_a_mirror_failing_mid_file_is_resumed_on_the_next(
    local_server: LocalServer, other_server: LocalServer, tmp_path: Path
) -> None:
    body = payload(1_000_000, 1)
    primary = local_server.add_file("/iso/image.bin", body, etag='"primary"')
    mirror = other_server.add_file("/pub/image.bin", body, etag='"mirror-has-its-own"')
    local_server.add_faults("/iso/image.bin", ResetAfter(400_000), *[ResetAfter(0)] * 5)

    m = fetch(tmp_path, FileConfig(url=primary, mirrors=[mirror]))

    assert file_sha256(tmp_path / "image.bin") == sha256(body)
    [resumed] = other_server.requests
    offset = int(resumed.range[len("bytes="):].split("-")[0])  # type: ignore[index]
    assert 0 < offset <= 400_000 and "If-Range" not in resumed.headers  # size decides across mirrors
    assert other_server.bytes_sent("/pub/image.bin") == len(body) - offset
    info = m.tracker.get_download(primary)
    assert info is not None and info.status is DownloadStatus.COMPLETED


def test_a_dead_mirror_is_skipped(local_server: LocalServer, other_server: LocalServer, tmp_path: Path) -> None:
    body = payload(50_000, 2)
    gone = local_server.url("/gone.bin")  # 404: not asked again
    good = other_server.add_file("/good.bin", body)
    m = fetch(tmp_path, FileConfig(url=gone, mirrors=[good], filename="file.bin"))
    assert (tmp_path / "file.bin").read_bytes() == body
    assert local_server.request_count("/gone.bin") == 1
    assert m.tracker.get_stats().completed == 1


def test_a_mirror_with_other_bytes_is_caught_by_the_checksum(
    local_server: LocalServer, other_server: LocalServer, tmp_path: Path
) -> None:
    body, other = payload(600_000, 3), payload(600_000, 4)  # same size, different content
    primary = local_server.add_file("/f.bin", body)
    liar = other_server.add_file("/f.bin", other)
    local_server.add_faults("/f.bin", ResetAfter(300_000), *[ResetAfter(0)] * 10)
    m = fetch(tmp_path, FileConfig(url=primary, mirrors=[liar], checksum=f"sha256:{sha256(body)}"))
    info = m.tracker.get_download(primary)
    # The primary never finishes and the mirror's bytes never match: a clean failure.
    assert info is not None and info.status is DownloadStatus.FAILED
    assert not (tmp_path / "f.bin").exists()
    assert other_server.request_count("/f.bin") >= 1  # the mirror was tried, and caught


def test_a_mirror_of_another_size_never_splices(
    local_server: LocalServer, other_server: LocalServer, tmp_path: Path
) -> None:
    body, longer = payload(500_000, 5), payload(700_000, 6)
    primary = local_server.add_file("/g.bin", body)
    other = other_server.add_file("/g.bin", longer)
    local_server.add_faults("/g.bin", ResetAfter(200_000), *[ResetAfter(0)] * 10)
    m = fetch(tmp_path, FileConfig(url=primary, mirrors=[other]))
    info = m.tracker.get_download(primary)
    assert info is not None and info.status is DownloadStatus.COMPLETED
    assert file_sha256(tmp_path / "g.bin") == sha256(longer)  # restarted from zero on the mirror


@pytest.mark.parametrize("trouble", ["refused", "busy"])
def test_a_mirror_takes_over_when_the_first_url_never_answers(
    local_server: LocalServer, other_server: LocalServer, tmp_path: Path, trouble: str
) -> None:
    from pydownloads.localserver import Status

    body = payload(30_000, 7)
    if trouble == "refused":
        first = "http://127.0.0.1:9/nothing-listens-here.bin"
    else:
        first = local_server.add_file("/busy.bin", body)
        local_server.add_faults("/busy.bin", *[Status(503)] * 20)
    mirror = other_server.add_file("/ok.bin", body)
    m = fetch(tmp_path, FileConfig(url=first, mirrors=[mirror], filename="file.bin"))
    info = m.tracker.get_download(first)
    assert info is not None and info.status is DownloadStatus.COMPLETED, info
    assert (tmp_path / "file.bin").read_bytes() == body
    assert other_server.request_count("/ok.bin") == 1


def test_with_a_checksum_ranges_come_from_several_mirrors_and_the_slow_one_serves_less(
    local_server: LocalServer, other_server: LocalServer, tmp_path: Path
) -> None:
    body = payload(16 << 20, 8)
    slow = local_server.add_file("/s.bin", body, rate=1_000_000)  # per connection
    fast = other_server.add_file("/s.bin", body)
    config = FileConfig(url=slow, mirrors=[fast], checksum=f"sha256:{sha256(body)}", segments=4)
    with DownloadManager(tmp_path, retry_config=RETRY, min_segment_size=1 << 20) as m:
        m.add_to_queue([config])
        m.queue.join()
    assert file_sha256(tmp_path / "s.bin") == sha256(body)
    assert other_server.request_count("/s.bin") >= 1 and local_server.request_count("/s.bin") >= 1
    local_server.wait_idle()
    assert other_server.bytes_sent("/s.bin") > len(body) // 2  # the fast mirror took the slow one's ranges


def test_without_a_checksum_mirrors_are_not_mixed_in_one_file(
    local_server: LocalServer, other_server: LocalServer, tmp_path: Path
) -> None:
    body = payload(8 << 20, 9)
    primary = local_server.add_file("/p.bin", body)
    mirror = other_server.add_file("/p.bin", payload(8 << 20, 10))  # same size, other bytes
    with DownloadManager(tmp_path, retry_config=RETRY, min_segment_size=1 << 20) as m:
        m.add_to_queue([FileConfig(url=primary, mirrors=[mirror], segments=4)])
        m.queue.join()
    assert file_sha256(tmp_path / "p.bin") == sha256(body)
    assert other_server.request_count("/p.bin") == 0
