"""Fewer threads transfer at once while the process is bound by its interpreter: every file
still exact, a hard shutdown still ends every download, and the command can turn it off."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pydownloads import DownloadManager, DownloadSettings, DownloadStatus, FileConfig
from pydownloads.cli import _run, main
from pydownloads.downloads import manager as manager_module
from pydownloads.downloads.slots import WorkerSlots
from pydownloads.localserver import LocalServer
from tests.integration.helpers import file_sha256, payload, sha256
from tests.support import wait_until


def _always_busy(monkeypatch: pytest.MonkeyPatch, *, count_bytes: bool) -> None:
    """Managers made from here on see a process using a whole core all the time (its CPU
    clock runs with the wall clock), in windows of 10 ms.  Without ``count_bytes`` no byte
    seems to arrive, so no cut can cost any: the limit goes down to one thread and stays."""

    def slots(most: int, received: Any, *, adaptive: bool) -> WorkerSlots:
        return WorkerSlots(most, received if count_bytes else (lambda: 0), adaptive=adaptive, window=0.01,
                           cpu=time.monotonic)

    monkeypatch.setattr(manager_module, "WorkerSlots", slots)


def _status(manager: DownloadManager, url: str) -> DownloadStatus:
    info = manager.tracker.get_download(url)
    assert info is not None
    return info.status


def test_a_busy_process_transfers_fewer_at_once_and_every_file_is_exact(
    local_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _always_busy(monkeypatch, count_bytes=True)
    bodies = {f"/f{i}.bin": payload(1 + (i * 7919) % 60_000, i) for i in range(300)}
    urls = [local_server.add_file(path, body) for path, body in bodies.items()]
    with DownloadManager(tmp_path, max_workers=16) as manager:
        manager.add_to_queue(urls)
        manager.queue.join()
        limits = [limit for _, limit in manager._slots.history]
    assert limits and min(limits) < 16  # it did cut
    for path, body in bodies.items():
        assert file_sha256(tmp_path / path.lstrip("/")) == sha256(body)
    assert manager.tracker.get_stats().completed == 300


def test_a_hard_shutdown_ends_every_download_while_threads_are_parked(
    local_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _always_busy(monkeypatch, count_bytes=False)
    quick = [local_server.add_file(f"/q{i}.bin", payload(2_000, i)) for i in range(200)]
    held = local_server.add_file("/held.bin", payload(50_000, 1))
    local_server.hold("/held.bin")
    late = [local_server.add_file(f"/late{i}.bin", payload(2_000, i)) for i in range(5)]
    manager = DownloadManager(tmp_path, max_workers=8, cancel_grace=0.5)
    try:
        manager.add_to_queue(quick)
        assert wait_until(lambda: manager._slots.limit == 1, timeout=30)
        manager.queue.join()
        manager.add_to_queue([FileConfig(url=held, priority=9), *late])
        assert local_server.wait_for_requests("/held.bin", 1, timeout=10)
        # One thread at once: the one on the held file.  A second admitted by mistake would
        # ask for a late file within this bounded wait.
        assert not wait_until(lambda: any(local_server.request_count(f"/late{i}.bin") for i in range(5)), timeout=0.3)
        started = time.monotonic()
        manager.shutdown(wait_for_current=False)
        assert time.monotonic() - started < 10
    finally:
        local_server.release("/held.bin")
        manager.shutdown(wait_for_current=False)
    assert _status(manager, held) is DownloadStatus.CANCELLED
    assert {_status(manager, u) for u in late} == {DownloadStatus.CANCELLED}
    # A hard shutdown does not join; the parked threads still leave, with the one aborted.
    assert wait_until(lambda: not any(thread.is_alive() for thread in manager._threads), timeout=10)


def test_fixed_workers_never_cut(local_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _always_busy(monkeypatch, count_bytes=False)
    urls = [local_server.add_file(f"/f{i}.bin", payload(4_000, i)) for i in range(100)]
    with DownloadManager(tmp_path, max_workers=8, adaptive_workers=False) as manager:
        manager.add_to_queue(urls)
        manager.queue.join()
        assert manager._slots.limit == 8 and not manager._slots.history
    assert manager.tracker.get_stats().completed == 100


def test_the_command_passes_fixed_jobs_on(local_server: LocalServer, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    url = local_server.add_file("/one.bin", payload(1_000, 1))
    given: list[DownloadSettings] = []

    class Watched(DownloadManager):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            given.append(self.settings)

    monkeypatch.setattr(_run, "DownloadManager", Watched)
    assert main([url, "-d", str(tmp_path / "a"), "-q"]) == 0
    assert main([url, "-d", str(tmp_path / "b"), "-q", "--fixed-jobs"]) == 0
    assert [settings.adaptive_workers for settings in given] == [True, False]


def test_adaptive_workers_must_be_a_bool() -> None:
    with pytest.raises(Exception, match="adaptive_workers must be True or False"):
        DownloadSettings(adaptive_workers=1)  # type: ignore[arg-type]
