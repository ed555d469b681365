"""Segment lanes are added only while they add speed: a connection that is already fast
runs alone; a slow one gets every extra lane at once.

The speed that counts as fast is ``TransferSettings.fast_lane``; tests that need a slow
local server to count as fast hand a worker their own settings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pydownloads import ChecksumMismatchError, DownloadManager, DownloadWorker, FileConfig, RetryConfig, RetryHandler
from pydownloads.domain.checksum import Checksum
from pydownloads.downloads import transfer
from pydownloads.downloads.job import DownloadJob, DownloadRequest
from pydownloads.downloads.settings import FAST_LANE, TransferSettings
from pydownloads.localserver import LocalServer
from tests.adversarial.rawserver import Conn, RawServer, Request, head
from tests.integration.helpers import file_sha256, payload, sha256

MIB = 1 << 20
#: What a connection throttled to a few MiB/s on loopback has to beat to count as fast.
SLOW_FAST_LANE = 1_000_000


def _download(server: LocalServer, tmp_path: Path, path: str, body: bytes, rate: int) -> None:
    url = server.add_file(path, body, rate=rate)
    with DownloadManager(tmp_path, max_segments=4, min_segment_size=MIB,
                         retry_config=RetryConfig(max_retries=0)) as manager:
        manager.add_to_queue([url])
        manager.queue.join()
    assert file_sha256(tmp_path / path.lstrip("/")) == sha256(body)


def _run(tmp_path: Path, configs: list[FileConfig], *, fast_lane: float) -> DownloadWorker:
    """Download ``configs`` one after another with a worker whose fast lane is ``fast_lane``."""
    settings = TransferSettings(max_segments=4, min_segment_size=MIB, fast_lane=fast_lane)
    with requests.Session() as session:
        worker = DownloadWorker(session, RetryHandler(RetryConfig(max_retries=0)), settings=settings)
        for config in configs:
            assert worker.tracker.register(config.url)
            worker.run(DownloadJob(DownloadRequest.from_config(config, tmp_path)))
    return worker


def test_a_slow_connection_gets_all_its_lanes_promptly(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(8 * MIB, 21)
    _download(local_server, tmp_path, "/slow.bin", body, rate=4 * MIB)  # 2 s on one connection
    gets = [r for r in local_server.requests if r.path == "/slow.bin"]
    assert len(gets) == 4 and sum(1 for r in gets if r.range) == 3
    first = gets[0].started_at
    assert max(r.started_at for r in gets) - first < 0.5  # not after the first range is done


def test_a_fast_connection_runs_alone(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(8 * MIB, 22)
    url = local_server.add_file("/fast.bin", body, rate=16 * MIB)
    _run(tmp_path, [FileConfig(url=url)], fast_lane=SLOW_FAST_LANE)  # the throttled server counts as fast
    assert file_sha256(tmp_path / "fast.bin") == sha256(body)
    gets = [r for r in local_server.requests if r.path == "/fast.bin"]
    assert len(gets) == 1 and not gets[0].range  # one connection, one body: no range asked
    assert local_server.bytes_sent("/fast.bin") == len(body)


class _Slowing:
    """Serves one file with ranges; the first whole body comes at ``fast`` bytes/s for its
    first ``fast_bytes``, then at ``slow`` bytes/s; ranges come at full speed.  Notes when
    each request came and its Range header."""

    def __init__(self, body: bytes, *, fast_bytes: int, fast: int, slow: int) -> None:
        self.body, self.fast_bytes, self.fast, self.slow = body, fast_bytes, fast, slow
        self.gets: list[tuple[float, str | None]] = []
        self._lock = threading.Lock()

    def __call__(self, conn: Conn, request: Request) -> None:
        wanted, total = request.header("Range"), len(self.body)
        with self._lock:
            self.gets.append((time.monotonic(), wanted))
        headers = [("ETag", '"v1"'), ("Accept-Ranges", "bytes")]
        if wanted is None or request.header("If-Range") != '"v1"':
            conn.send(head(200, [*headers, ("Content-Length", str(total))]))
            self._pace(conn)
            return
        first, _, last = wanted.removeprefix("bytes=").partition("-")
        start, end = int(first), int(last) + 1
        conn.send(head(206, [*headers, ("Content-Range", f"bytes {start}-{end - 1}/{total}"),
                             ("Content-Length", str(end - start))]) + self.body[start:end])

    def _pace(self, conn: Conn) -> None:
        began, sent, piece = time.monotonic(), 0, 32 << 10
        while sent < len(self.body):
            slow_part = max(0, sent - self.fast_bytes)
            due = began + (sent - slow_part) / self.fast + slow_part / self.slow
            if not conn.wait(max(0.0, due - time.monotonic())) or not conn.send(self.body[sent:sent + piece]):
                return  # the client cut this body short (its tail went to other lanes)
            sent += piece


@pytest.fixture
def slowing() -> Iterator[tuple[RawServer, _Slowing]]:
    # 6 MiB at 16 MiB/s (0.4 s), then 2 MiB/s: fast on the first checks, slow from ~1 s on.
    handler = _Slowing(payload(12 * MIB, 23), fast_bytes=6 * MIB, fast=16 * MIB, slow=2 * MIB)
    with RawServer() as server:
        server.route("/drop.bin", handler)
        yield server, handler


def test_lanes_join_when_a_fast_connection_slows_down(slowing: tuple[RawServer, _Slowing], tmp_path: Path) -> None:
    server, handler = slowing
    _run(tmp_path, [FileConfig(url=server.url("/drop.bin"))], fast_lane=4 * MIB)
    assert file_sha256(tmp_path / "drop.bin") == sha256(handler.body)
    (first, whole), *later = handler.gets
    assert whole is None and later and all(wanted for _, wanted in later)
    assert min(at for at, _ in later) - first >= 0.4  # added once it slowed, not at once


@pytest.mark.parametrize("fast", [True, False])
def test_the_checksum_is_computed_as_the_bytes_arrive_while_one_lane_runs(
        local_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    reread: list[Path] = []
    real_hash_file = transfer.hash_file

    def hash_file(path: Path, checksum: Checksum) -> str:
        reread.append(path)
        return real_hash_file(path, checksum)

    monkeypatch.setattr(transfer, "hash_file", hash_file)
    body = payload(8 * MIB, 24)
    good = local_server.add_file("/sum.bin", body, rate=16 * MIB)
    bad = local_server.add_file("/bad.bin", body, rate=16 * MIB)
    worker = _run(tmp_path, [FileConfig(url=good, checksum=f"sha256:{sha256(body)}"),
                             FileConfig(url=bad, checksum=f"sha256:{sha256(body[:-1])}")],
                  fast_lane=SLOW_FAST_LANE if fast else FAST_LANE)
    assert file_sha256(tmp_path / "sum.bin") == sha256(body)
    failed = worker.tracker.get_download(bad)
    assert failed is not None and failed.error_type == ChecksumMismatchError.__name__, failed
    assert not (tmp_path / "bad.bin").exists()
    # One lane all along: hashed on the way, never read back; several lanes: read back.
    assert len(reread) == (0 if fast else 2)
