"""Segment lanes are added only while they add speed: a connection that is already fast
runs alone; a slow one gets every extra lane at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pydownloads import ChecksumMismatchError, DownloadManager, FileConfig, RetryConfig
from pydownloads.domain.checksum import Checksum
from pydownloads.downloads import segments, transfer
from pydownloads.localserver import LocalServer
from tests.integration.helpers import file_sha256, payload, sha256

MIB = 1 << 20


def _download(server: LocalServer, tmp_path: Path, path: str, body: bytes, rate: int) -> None:
    url = server.add_file(path, body, rate=rate)
    with DownloadManager(tmp_path, max_segments=4, min_segment_size=MIB,
                         retry_config=RetryConfig(max_retries=0)) as manager:
        manager.add_to_queue([url])
        manager.queue.join()
    assert file_sha256(tmp_path / path.lstrip("/")) == sha256(body)


def test_a_slow_connection_gets_all_its_lanes_promptly(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(8 * MIB, 21)
    _download(local_server, tmp_path, "/slow.bin", body, rate=4 * MIB)  # 2 s on one connection
    gets = [r for r in local_server.requests if r.path == "/slow.bin"]
    assert len(gets) == 4 and sum(1 for r in gets if r.range) == 3
    first = gets[0].started_at
    assert max(r.started_at for r in gets) - first < 0.5  # not after the first range is done


def test_a_fast_connection_runs_alone(local_server: LocalServer, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segments, "FAST_LANE", 1_000_000)  # the throttled server counts as fast
    body = payload(8 * MIB, 22)
    _download(local_server, tmp_path, "/fast.bin", body, rate=16 * MIB)
    gets = [r for r in local_server.requests if r.path == "/fast.bin"]
    assert len(gets) == 1 and not gets[0].range  # one connection, one body: no range asked
    assert local_server.bytes_sent("/fast.bin") == len(body)


def test_lanes_join_when_a_fast_connection_slows_down(local_server: LocalServer, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segments, "FAST_LANE", 1_000_000)  # fast at first...
    monkeypatch.setattr(segments, "LANE_RECHECK", 0.1)
    slower = threading.Timer(0.4, setattr, args=(segments, "FAST_LANE", 10**12))  # ...then too slow
    slower.start()
    body = payload(8 * MIB, 23)
    try:
        _download(local_server, tmp_path, "/drop.bin", body, rate=4 * MIB)
    finally:
        slower.cancel()
    gets = [r for r in local_server.requests if r.path == "/drop.bin"]
    assert len(gets) > 1 and all(r.range for r in gets[1:])
    assert min(r.started_at for r in gets[1:]) - gets[0].started_at >= 0.4  # added later, not at once


@pytest.mark.parametrize("fast", [True, False])
def test_the_checksum_is_computed_as_the_bytes_arrive_while_one_lane_runs(
        local_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    if fast:
        monkeypatch.setattr(segments, "FAST_LANE", 1_000_000)
    reread: list[Path] = []
    real_hash_file = transfer.hash_file

    def hash_file(path: Path, checksum: Checksum) -> str:
        reread.append(path)
        return real_hash_file(path, checksum)

    monkeypatch.setattr(transfer, "hash_file", hash_file)
    body = payload(8 * MIB, 24)
    good = local_server.add_file("/sum.bin", body, rate=16 * MIB)
    bad = local_server.add_file("/bad.bin", body, rate=16 * MIB)
    with DownloadManager(tmp_path, max_segments=4, min_segment_size=MIB,
                         retry_config=RetryConfig(max_retries=0)) as manager:
        manager.add_to_queue([FileConfig(url=good, checksum=f"sha256:{sha256(body)}"),
                              FileConfig(url=bad, checksum=f"sha256:{sha256(body[:-1])}")])
        manager.queue.join()
    assert file_sha256(tmp_path / "sum.bin") == sha256(body)
    failed = manager.tracker.get_download(bad)
    assert failed is not None and failed.error_type == ChecksumMismatchError.__name__, failed
    assert not (tmp_path / "bad.bin").exists()
    # One lane all along: hashed on the way, never read back; several lanes: read back.
    assert len(reread) == (0 if fast else 2)
