"""Both shutdown modes, the with-block on error, and the lifecycle after shutdown."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pydownloads import DownloadManager, DownloadStatus, FileConfig, RetryConfig
from pydownloads.localserver import LocalServer, StallHeaders
from tests.integration.helpers import EventLog, file_sha256, files_under, payload, sha256
from tests.support import wait_until

RETRY = RetryConfig(max_retries=1, base_delay=0.01, max_delay=0.05)


def slow_batch(server: LocalServer, count: int, *, size: int = 400_000, rate: int = 1_000_000) -> list[str]:
    """``count`` files that each take about size/rate seconds to serve."""
    return [server.add_file(f"/slow{i}.bin", payload(size, i), rate=rate) for i in range(count)]




def assert_only_resumable_parts(folder: Path) -> None:
    """Nothing under a final name: only part files, each with its resume state."""
    names = [p.name for p in files_under(folder)]
    parts = [n for n in names if n.endswith(".part")]
    assert parts and sorted(names) == sorted(parts + [n + ".json" for n in parts])


def test_graceful_shutdown_finishes_in_flight_and_cancels_the_rest(local_server: LocalServer, tmp_path: Path) -> None:
    urls = slow_batch(local_server, 6)
    with DownloadManager(tmp_path, max_workers=2, retry_config=RETRY) as m:
        log = EventLog(m.worker.emitter)
        m.add_to_queue([FileConfig(url=u, priority=10 - i) for i, u in enumerate(urls)])
        assert wait_until(lambda: m.tracker.get_stats().in_progress == 2)
        m.shutdown(wait_for_current=True)
        m.queue.join()  # returns at once: everything is final
    downloads = m.tracker.get_all_downloads()
    assert [downloads[u].status for u in urls] == [DownloadStatus.COMPLETED] * 2 + [DownloadStatus.CANCELLED] * 4
    for i in range(2):
        assert file_sha256(tmp_path / f"slow{i}.bin") == sha256(payload(400_000, i))
    assert len(files_under(tmp_path)) == 2
    assert len(log.of("DownloadCancelled")) == 4
    assert all(local_server.request_count(f"/slow{i}.bin") == 0 for i in range(2, 6))


def test_hard_shutdown_stops_in_flight_within_about_a_second(local_server: LocalServer, tmp_path: Path) -> None:
    urls = slow_batch(local_server, 4, size=5_000_000, rate=500_000)  # ~10 s each
    with DownloadManager(tmp_path, max_workers=2, retry_config=RETRY) as m:
        m.add_to_queue(urls)
        assert wait_until(lambda: m.tracker.get_stats().bytes_downloaded > 0)
        started = time.monotonic()
        m.shutdown(wait_for_current=False)
        elapsed = time.monotonic() - started
        m.queue.join()
    assert elapsed < 1.5
    assert {info.status for info in m.tracker.get_all_downloads().values()} == {DownloadStatus.CANCELLED}
    assert_only_resumable_parts(tmp_path)


def test_hard_shutdown_while_waiting_for_headers(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/stuck.bin", b"late")
    local_server.add_faults("/stuck.bin", StallHeaders(1.0))
    m = DownloadManager(tmp_path, max_workers=1, retry_config=RETRY, timeout=(2.0, 0.8), cancel_grace=0.3)
    m.add_to_queue([url])
    assert local_server.wait_for_requests("/stuck.bin", 1)
    started = time.monotonic()
    m.shutdown(wait_for_current=False)
    m.queue.join()
    assert time.monotonic() - started < 1.0
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.CANCELLED
    # The stuck thread ends at its read timeout; it must not resurrect the download.
    assert wait_until(lambda: not any(t.name.startswith("pydownloads") for t in threading.enumerate()))
    assert m.tracker.get_download(url).status is DownloadStatus.CANCELLED  # type: ignore[union-attr]
    assert m.tracker.get_stats().cancelled == 1
    assert files_under(tmp_path) == []


def test_leaving_the_block_by_an_exception_cancels_at_once(local_server: LocalServer, tmp_path: Path) -> None:
    urls = slow_batch(local_server, 3, size=5_000_000, rate=500_000)
    started = time.monotonic()
    with pytest.raises(KeyError), DownloadManager(tmp_path, max_workers=1, retry_config=RETRY) as m:
        m.add_to_queue(urls)
        assert wait_until(lambda: m.tracker.get_stats().in_progress == 1)
        raise KeyError("user code failed")
    assert time.monotonic() - started < 3
    assert m.tracker.get_stats().cancelled == 3
    assert_only_resumable_parts(tmp_path)


def test_leaving_the_block_normally_downloads_everything(local_server: LocalServer, tmp_path: Path) -> None:
    urls = slow_batch(local_server, 3, size=100_000, rate=2_000_000)
    with DownloadManager(tmp_path, max_workers=2, retry_config=RETRY) as m:
        m.add_to_queue(urls)  # no join: leaving the block waits
    assert m.tracker.get_stats().completed == 3


def test_the_manager_refuses_work_after_shutdown(local_server: LocalServer, tmp_path: Path) -> None:
    m = DownloadManager(tmp_path, max_workers=1)
    m.shutdown()
    m.shutdown(wait_for_current=False)  # idempotent
    with pytest.raises(RuntimeError, match="shut down"):
        m.add_to_queue([local_server.url("/x")])


def test_a_manager_never_closed_does_not_hang_the_program(local_server: LocalServer, tmp_path: Path) -> None:
    import subprocess
    import sys

    url = local_server.add_file("/x", b"data")
    code = (
        "import sys\nfrom pydownloads import DownloadManager\n"
        "m = DownloadManager(sys.argv[2])\nm.add_to_queue([sys.argv[1]])\nm.queue.join()\n"
    )
    result = subprocess.run([sys.executable, "-c", code, url, str(tmp_path)], timeout=20,
                            cwd=Path(__file__).resolve().parents[2], capture_output=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x").read_bytes() == b"data"


def test_join_with_nothing_queued_returns(tmp_path: Path) -> None:
    with DownloadManager(tmp_path) as m:
        m.queue.join()
