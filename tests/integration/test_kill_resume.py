"""A process killed with SIGKILL mid-download: the rerun completes the file exactly, fetching
only the bytes the killed run had not safely written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pydownloads import DownloadManager, RetryConfig
from pydownloads.localserver import LocalServer
from tests.integration.helpers import file_sha256, files_under, payload, sha256
from tests.support import saved_ranges, wait_until

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import sys
from pydownloads import DownloadManager
with DownloadManager(sys.argv[2], max_segments=int(sys.argv[3]), min_segment_size=1 << 20) as m:
    m.add_to_queue([sys.argv[1]])
    m.queue.join()
"""



@pytest.mark.parametrize("segments", [1, 4])
def test_sigkill_then_rerun_fetches_only_missing_bytes(
    local_server: LocalServer, tmp_path: Path, segments: int
) -> None:
    body = payload(16 << 20, segments)
    url = local_server.add_file("/k.bin", body, rate=1 << 20)  # per connection: 4 s or more in all
    sidecar = tmp_path / "k.bin.part.json"
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, str(tmp_path), str(segments)], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert wait_until(lambda: sum(b - a for a, b in saved_ranges(sidecar)) >= 2 << 20, timeout=15)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(10)
    kept = sum(b - a for a, b in saved_ranges(sidecar))
    assert kept >= 2 << 20, "the killed run saved its progress"
    assert not (tmp_path / "k.bin").exists()
    local_server.add_file("/k.bin", body)  # same bytes and validators, full speed
    assert local_server.wait_idle()
    local_server.reset_stats()

    with DownloadManager(tmp_path, max_segments=segments, min_segment_size=1 << 20,
                         retry_config=RetryConfig(max_retries=2, base_delay=0.01, max_delay=0.02)) as m:
        m.add_to_queue([url])
        m.queue.join()

    assert file_sha256(tmp_path / "k.bin") == sha256(body)
    assert files_under(tmp_path) == [tmp_path / "k.bin"]
    assert all(r.range is not None for r in local_server.requests)  # nothing refetched from zero
    refetched = local_server.bytes_sent("/k.bin")
    assert refetched >= len(body) - kept
    if segments == 1:
        assert refetched == len(body) - kept  # exactly the missing bytes
    else:
        # A lane whose range is split by a faster one stops at the split point, but the bytes
        # already in flight on its connection (socket buffers: megabytes on loopback) are lost.
        assert refetched <= len(body) - kept + len(body) // 4
