"""The state file: skip what is done, resume what is not, never duplicate, never reset silently."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pydownloads import DownloadManager, DownloadStatus, FileConfig, RetryConfig, StateFileError
from pydownloads.localserver import LocalServer
from tests.integration.helpers import file_sha256, payload, sha256
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
RETRY = RetryConfig(max_retries=1, base_delay=0.01, max_delay=0.02)


def run(out: Path, state: Path, files: list[FileConfig | str] | None = None, **options: object) -> DownloadManager:
    options.setdefault("retry_config", RETRY)
    with DownloadManager(out, state_file=state, **options) as m:  # type: ignore[arg-type]
        if files is not None:
            m.add_to_queue(files)
        m.queue.join()
    return m


def test_a_rerun_skips_intact_files_and_fetches_missing_ones(local_server: LocalServer, tmp_path: Path) -> None:
    bodies = {f"/f{i}.bin": payload(2000 + i, i) for i in range(30)}
    urls = [local_server.add_file(path, body) for path, body in bodies.items()]
    state = tmp_path / "state.db"
    first = run(tmp_path / "out", state, urls)
    assert first.tracker.get_stats().completed == 30
    assert local_server.request_count("/f0.bin") == 1

    (tmp_path / "out" / "f3.bin").unlink()
    (tmp_path / "out" / "f4.bin").write_bytes(b"truncated")
    local_server.reset_stats()
    second = run(tmp_path / "out", state, urls)

    assert sorted(r.path for r in local_server.requests) == ["/f3.bin", "/f4.bin"]
    stats = second.tracker.get_stats()
    assert (stats.total, stats.completed) == (30, 30)
    for path, body in bodies.items():
        assert file_sha256(tmp_path / "out" / path[1:]) == sha256(body)


def test_a_checksum_decides_whether_a_completed_file_is_intact(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(5000)
    url = local_server.add_file("/c.bin", body)
    config = FileConfig(url=url, checksum=f"sha256:{sha256(body)}")
    state = tmp_path / "state.db"
    run(tmp_path / "out", state, [config])
    damaged = bytearray(body)
    damaged[100] ^= 0xFF
    (tmp_path / "out" / "c.bin").write_bytes(bytes(damaged))  # same size, other bytes
    local_server.reset_stats()
    run(tmp_path / "out", state, [config])
    assert local_server.request_count("/c.bin") == 1
    assert file_sha256(tmp_path / "out" / "c.bin") == sha256(body)


def test_the_same_download_is_journaled_once(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/d.bin", b"once")
    other_place = FileConfig(url=url, destination_subdir="copy")
    m = run(tmp_path / "out", tmp_path / "state.db", [url, url, FileConfig(url=url)])
    assert m.tracker.get_stats().total == 1
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT COUNT(*) FROM downloads").fetchone()[0] == 1
    m = run(tmp_path / "out", tmp_path / "state.db", [other_place])  # another destination: another row
    assert m.tracker.get_stats().total == 2
    assert (tmp_path / "out" / "copy" / "d.bin").read_bytes() == b"once"


def test_failed_downloads_are_retried_only_when_asked(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.url("/later.bin")  # 404 at first
    state = tmp_path / "state.db"
    m = run(tmp_path / "out", state, [url])
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.FAILED and "404" in (info.error or "")
    local_server.add_file("/later.bin", b"now here")
    local_server.reset_stats()
    run(tmp_path / "out", state, [url])
    assert local_server.request_count("/later.bin") == 0
    m = run(tmp_path / "out", state, [url], retry_failed=True)
    assert local_server.request_count("/later.bin") == 1
    assert m.tracker.get_stats().completed == 1 and (tmp_path / "out" / "later.bin").read_bytes() == b"now here"


def test_pending_work_of_an_earlier_run_goes_on_without_being_queued_again(
    local_server: LocalServer, tmp_path: Path
) -> None:
    urls = [local_server.add_file(f"/p{i}.bin", payload(400_000, i), rate=2_000_000) for i in range(6)]
    state = tmp_path / "state.db"
    first = DownloadManager(tmp_path / "out", max_workers=1, state_file=state, retry_config=RETRY)
    first.add_to_queue(urls)
    assert wait_until(lambda: first.tracker.get_stats().completed >= 1)
    first.shutdown(wait_for_current=False)
    stats = first.tracker.get_stats()
    assert stats.pending + stats.cancelled >= 4  # cancelled ones are picked up again too
    second = run(tmp_path / "out", state, retry_config=RETRY)  # nothing added: the journal has it
    assert second.tracker.get_stats().completed == 6
    for i in range(6):
        assert file_sha256(tmp_path / "out" / f"p{i}.bin") == sha256(payload(400_000, i))


def test_a_generator_of_many_urls_is_journaled_in_priority_order(local_server: LocalServer, tmp_path: Path) -> None:
    for i in range(300):
        local_server.add_file(f"/g{i}", b"x")
    files = (FileConfig(url=local_server.url(f"/g{i}"), priority=i % 3) for i in range(300))
    m = run(tmp_path / "out", tmp_path / "state.db", files, max_workers=1)  # type: ignore[arg-type]
    assert m.tracker.get_stats().completed == 300
    priorities = [int(r.path[2:]) % 3 for r in local_server.requests]
    assert priorities == sorted(priorities, reverse=True)


def test_unusable_state_files_are_refused_not_reset(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateFileError, match="not a usable state file"):
        DownloadManager(tmp_path / "out", state_file=garbage)
    assert garbage.read_bytes() == b"this is not sqlite" * 100

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE other (x)")
    with pytest.raises(StateFileError, match="other tables"):
        DownloadManager(tmp_path / "out", state_file=foreign)

    newer = tmp_path / "newer.db"
    DownloadManager(tmp_path / "out", state_file=newer).shutdown()
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(StateFileError, match="newer pydownloads"):
        DownloadManager(tmp_path / "out", state_file=newer)


def test_two_managers_cannot_write_one_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    first = DownloadManager(tmp_path / "out", state_file=state)
    try:
        with pytest.raises(StateFileError, match="in use"):
            DownloadManager(tmp_path / "out", state_file=state)
        other_process = subprocess.run(
            [sys.executable, "-c", "import sys\nfrom pydownloads import DownloadManager\n"
             "DownloadManager(sys.argv[1], state_file=sys.argv[2])", str(tmp_path / "out"), str(state)],
            cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert other_process.returncode != 0 and "in use by another pydownloads process" in other_process.stderr
    finally:
        first.shutdown()
    DownloadManager(tmp_path / "out", state_file=state).shutdown()  # free again


CHILD = """
import sys
from pydownloads import DownloadManager
urls = sys.argv[3:]
with DownloadManager(sys.argv[1], max_workers=4, state_file=sys.argv[2], max_segments=1) as m:
    m.add_to_queue(urls)
    m.queue.join()
"""


def completed_in_journal(state: Path) -> set[str]:
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
            return {row[0] for row in db.execute("SELECT url FROM downloads WHERE status='completed'")}
    except sqlite3.Error:
        return set()


def test_sigkill_mid_run_then_rerun_loses_nothing(local_server: LocalServer, tmp_path: Path) -> None:
    bodies = {f"/k{i}.bin": payload(60_000 if i % 10 else 600_000, i) for i in range(200)}
    urls = [local_server.add_file(path, body, rate=1_500_000) for path, body in bodies.items()]
    state, out = tmp_path / "state.db", tmp_path / "out"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(state), *urls], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert wait_until(lambda: len(completed_in_journal(state)) >= 60, timeout=30)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(10)
    done_before = completed_in_journal(state)
    assert 60 <= len(done_before) < 200
    partial = [p for p in out.glob("*.part.json") if json.loads(p.read_text())["ranges"]]
    assert local_server.wait_idle()
    for path, body in bodies.items():
        local_server.add_file(path, body)  # full speed now
    local_server.reset_stats()

    m = run(out, state, urls, max_workers=4, max_segments=1)

    assert m.tracker.get_stats().completed == 200
    for path, body in bodies.items():
        assert file_sha256(out / path[1:]) == sha256(body), path
    refetched = {r.path for r in local_server.requests}
    assert not refetched & {url[len(local_server.base_url):] for url in done_before}
    resumed = [r for r in local_server.requests if r.range]
    if partial:  # those the killed run had saved progress for went on from there
        assert resumed
    assert sorted(p.name for p in out.iterdir()) == sorted(path[1:] for path in bodies)


def test_read_status_reports_counts_and_failures(local_server: LocalServer, tmp_path: Path) -> None:
    from pydownloads.journal import read_status

    ok = local_server.add_file("/ok.bin", b"fine")
    state = tmp_path / "state.db"
    run(tmp_path / "out", state, [ok, local_server.url("/gone.bin")])
    status = read_status(state)
    assert status.counts == {"completed": 1, "failed": 1} and status.total == 2
    [failure] = status.failures
    assert failure.url.endswith("/gone.bin") and "404" in (failure.error or "")
    with pytest.raises(StateFileError):
        read_status(tmp_path / "missing.db")
