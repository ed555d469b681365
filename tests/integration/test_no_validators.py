"""A server that sends neither ETag nor Last-Modified but serves ranges: with a checksum, which
proves the result at the end, downloads resume and split; without one, one pass from zero."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from pydownloads import DownloadManager, DownloadStatus, FileConfig, RetryConfig
from pydownloads.localserver import LocalServer, ResetAfter
from tests.integration.helpers import file_sha256, files_under, payload, sha256
from tests.support import saved_ranges, wait_until

ROOT = Path(__file__).resolve().parents[2]
RETRY = RetryConfig(max_retries=3, base_delay=0.01, max_delay=0.02)
CHILD = """
import sys
from pydownloads import DownloadManager, FileConfig
with DownloadManager(sys.argv[2], max_segments=1) as m:
    m.add_to_queue([FileConfig(url=sys.argv[1], checksum=sys.argv[3])])
    m.queue.join()
"""



def run(out: Path, files: list[FileConfig], **options: object) -> DownloadManager:
    options.setdefault("retry_config", RETRY)
    with DownloadManager(out, **options) as m:  # type: ignore[arg-type]
        m.add_to_queue(files)
        m.queue.join()
    return m


def test_killed_then_rerun_resumes_with_a_checksum(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(8 << 20)
    url = local_server.add_file("/n.bin", body, etag=None, last_modified=None, rate=1 << 20)
    checksum = f"sha256:{sha256(body)}"
    sidecar = tmp_path / "n.bin.part.json"
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, str(tmp_path), checksum], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert wait_until(lambda: sum(b - a for a, b in saved_ranges(sidecar)) >= 2 << 20, timeout=15)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(10)
    kept = sum(b - a for a, b in saved_ranges(sidecar))
    assert kept >= 2 << 20, "the killed run saved its progress"
    local_server.add_file("/n.bin", body, etag=None, last_modified=None)  # full speed now
    assert local_server.wait_idle()
    local_server.reset_stats()

    run(tmp_path, [FileConfig(url=url, checksum=checksum)], max_segments=1)

    assert file_sha256(tmp_path / "n.bin") == sha256(body)
    assert files_under(tmp_path) == [tmp_path / "n.bin"]
    [request] = local_server.requests
    assert request.range == f"bytes={kept}-" and "If-Range" not in request.headers
    assert local_server.bytes_sent("/n.bin") == len(body) - kept  # only the missing bytes


def test_segments_open_several_connections_with_a_checksum(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(8 << 20, 1)
    url = local_server.add_file("/s.bin", body, etag=None, last_modified=None, rate=4 << 20)
    run(tmp_path, [FileConfig(url=url, checksum=f"sha256:{sha256(body)}")], max_segments=8,
        min_segment_size=1 << 20)
    assert file_sha256(tmp_path / "s.bin") == sha256(body)
    ranged = [r for r in local_server.requests if r.range is not None]
    assert len(ranged) >= 2 and len({r.client_port for r in local_server.requests}) >= 2
    assert all("If-Range" not in r.headers for r in local_server.requests)
    assert local_server.max_concurrency >= 2


def test_a_broken_body_resumes_with_a_checksum(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(1_000_000, 2)
    url = local_server.add_file("/b.bin", body, etag=None, last_modified=None)
    local_server.add_faults("/b.bin", ResetAfter(300_000))
    run(tmp_path, [FileConfig(url=url, checksum=f"sha256:{sha256(body)}")], max_segments=1)
    first, second = local_server.requests
    assert first.range is None and second.range is not None and second.range.startswith("bytes=")
    assert 0 < int(second.range[len("bytes="):].split("-")[0]) <= 300_000
    assert file_sha256(tmp_path / "b.bin") == sha256(body)


def test_without_a_checksum_nothing_resumes(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(1_000_000, 3)
    url = local_server.add_file("/p.bin", body, etag=None, last_modified=None)
    local_server.add_faults("/p.bin", ResetAfter(300_000))
    run(tmp_path, [FileConfig(url=url)], max_segments=8, min_segment_size=1 << 17)
    assert [r.range for r in local_server.requests] == [None, None]  # one pass, then from zero
    assert file_sha256(tmp_path / "p.bin") == sha256(body)


def test_a_wrong_checksum_starts_over_once_then_fails(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(1_000_000, 4)
    url = local_server.add_file("/w.bin", body, etag=None, last_modified=None)
    local_server.add_faults("/w.bin", ResetAfter(300_000))
    m = run(tmp_path, [FileConfig(url=url, checksum=f"sha256:{'0' * 64}")], max_segments=1)
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.FAILED
    assert info.error_type == "ChecksumMismatchError"
    ranges = [r.range for r in local_server.requests]
    assert ranges[0] is None and ranges[1] is not None  # the broken body resumed
    assert ranges[2:] == [None]  # the mismatch: once more from zero, then no more
    assert files_under(tmp_path) == []


def leave_part(out: Path, name: str, url: str, data: bytes, total: int) -> None:
    """What a killed run on a server without validators leaves: a part file and its state."""
    (out / f"{name}.part").write_bytes(data)
    (out / f"{name}.part.json").write_text(json.dumps({
        "format": 1, "url": url, "total": total, "etag": None, "last_modified": None,
        "ranges": [[0, len(data)]], "source": None}))


def test_a_kept_part_without_validators_or_checksum_starts_over(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(1_000_000, 5)
    url = local_server.add_file("/o.bin", body, etag=None, last_modified=None)
    leave_part(tmp_path, "o.bin", url, b"\0" * 400_000, len(body))
    run(tmp_path, [FileConfig(url=url)], max_segments=1)
    assert [r.range for r in local_server.requests] == [None]
    assert file_sha256(tmp_path / "o.bin") == sha256(body)
    assert files_under(tmp_path) == [tmp_path / "o.bin"]


def test_a_kept_part_of_other_bytes_fails_the_checksum_then_comes_whole(
    local_server: LocalServer, tmp_path: Path
) -> None:
    body = payload(1_000_000, 6)
    url = local_server.add_file("/x.bin", body, etag=None, last_modified=None)
    leave_part(tmp_path, "x.bin", url, b"\0" * 400_000, len(body))
    m = run(tmp_path, [FileConfig(url=url, checksum=f"sha256:{sha256(body)}")], max_segments=1)
    assert [r.range for r in local_server.requests] == ["bytes=400000-", None]  # resumed, then from zero
    assert file_sha256(tmp_path / "x.bin") == sha256(body)
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.COMPLETED
