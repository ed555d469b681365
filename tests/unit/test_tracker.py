"""Unit tests for DownloadTracker: registration, transitions, byte counts, snapshots, threads."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pydownloads.domain.errors import HTTPStatusError
from pydownloads.domain.models import DownloadInfo, DownloadStats, DownloadStatus
from pydownloads.tracking import DownloadTracker

A = "https://example.com/a"
B = "https://example.com/b"
C = "https://example.com/c"


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tracker(clock: FakeClock) -> DownloadTracker:
    return DownloadTracker(clock=clock)


def _start(tracker: DownloadTracker, url: str, *, total: int | None = 100, attempt: int = 1) -> None:
    tracker.mark_started(url, path=Path("/downloads") / url.rsplit("/", 1)[1], total_bytes=total, attempt=attempt)


# -- registration -------------------------------------------------------------------------------


def test_empty_tracker(tracker: DownloadTracker) -> None:
    assert tracker.get_stats() == DownloadStats()
    assert tracker.get_all_downloads() == {}
    assert tracker.get_download(A) is None


def test_register_records_pending(tracker: DownloadTracker) -> None:
    assert tracker.register(A) is True
    info = tracker.get_download(A)
    assert info == DownloadInfo(url=A, status=DownloadStatus.PENDING)
    assert tracker.get_stats() == DownloadStats(total=1, pending=1)


def test_register_duplicate_while_pending_or_in_progress_is_refused(tracker: DownloadTracker) -> None:
    assert tracker.register(A) is True
    assert tracker.register(A) is False
    _start(tracker, A)
    assert tracker.register(A) is False
    assert tracker.get_stats() == DownloadStats(total=1, in_progress=1)
    info = tracker.get_download(A)
    assert info is not None
    assert info.status is DownloadStatus.IN_PROGRESS


@pytest.mark.parametrize("final", [DownloadStatus.COMPLETED, DownloadStatus.FAILED, DownloadStatus.CANCELLED])
def test_register_again_after_a_final_state_starts_fresh(tracker: DownloadTracker, final: DownloadStatus) -> None:
    tracker.register(A)
    _start(tracker, A, attempt=2)
    tracker.set_bytes(A, 70)
    tracker.mark_finished(A, final, error=RuntimeError("x") if final is not DownloadStatus.COMPLETED else None)
    assert tracker.get_stats().bytes_downloaded == 70

    assert tracker.register(A) is True
    assert tracker.get_download(A) == DownloadInfo(url=A, status=DownloadStatus.PENDING)
    stats = tracker.get_stats()
    assert stats == DownloadStats(total=1, pending=1, bytes_downloaded=0)


def test_re_register_subtracts_only_the_old_records_bytes(tracker: DownloadTracker) -> None:
    for url in (A, B):
        tracker.register(url)
        _start(tracker, url)
    tracker.add_bytes(A, 30)
    tracker.add_bytes(B, 12)
    tracker.mark_finished(A, DownloadStatus.COMPLETED)
    assert tracker.get_stats().bytes_downloaded == 42
    tracker.register(A)
    assert tracker.get_stats().bytes_downloaded == 12
    assert tracker.get_stats().completed == 0


def test_get_all_downloads_keeps_first_queued_order(tracker: DownloadTracker) -> None:
    for url in (C, A, B):
        tracker.register(url)
    tracker.mark_finished(C, DownloadStatus.CANCELLED)
    tracker.register(C)  # re-registered: keeps its original position
    assert list(tracker.get_all_downloads()) == [C, A, B]


# -- transitions and counts ---------------------------------------------------------------------


def test_transitions_update_counts(tracker: DownloadTracker) -> None:
    for url in (A, B, C):
        tracker.register(url)
    assert tracker.get_stats() == DownloadStats(total=3, pending=3)

    _start(tracker, A)
    _start(tracker, B)
    assert tracker.get_stats() == DownloadStats(total=3, pending=1, in_progress=2)

    tracker.mark_finished(A, DownloadStatus.COMPLETED)
    tracker.mark_finished(B, DownloadStatus.FAILED, error=RuntimeError("boom"))
    tracker.mark_finished(C, DownloadStatus.CANCELLED)
    assert tracker.get_stats() == DownloadStats(total=3, completed=1, failed=1, cancelled=1)


def test_mark_started_again_keeps_in_progress_count_and_updates_attempt(tracker: DownloadTracker) -> None:
    tracker.register(A)
    _start(tracker, A, total=10, attempt=1)
    _start(tracker, A, total=20, attempt=2)
    info = tracker.get_download(A)
    assert info is not None
    assert (info.status, info.total_bytes, info.attempts) == (DownloadStatus.IN_PROGRESS, 20, 2)
    assert info.path == Path("/downloads/a")
    assert tracker.get_stats() == DownloadStats(total=1, in_progress=1)


def test_set_attempts(tracker: DownloadTracker) -> None:
    tracker.register(A)
    tracker.set_attempts(A, 4)
    info = tracker.get_download(A)
    assert info is not None
    assert info.attempts == 4


@pytest.mark.parametrize("status", [DownloadStatus.PENDING, DownloadStatus.IN_PROGRESS])
def test_mark_finished_rejects_non_final_status(tracker: DownloadTracker, status: DownloadStatus) -> None:
    tracker.register(A)
    with pytest.raises(ValueError, match="not a final status"):
        tracker.mark_finished(A, status)
    assert tracker.get_stats() == DownloadStats(total=1, pending=1)


def test_unknown_url_operations_raise_key_error(tracker: DownloadTracker) -> None:
    with pytest.raises(KeyError):
        tracker.add_bytes(A, 1)
    with pytest.raises(KeyError):
        tracker.set_bytes(A, 1)
    with pytest.raises(KeyError):
        tracker.mark_finished(A, DownloadStatus.COMPLETED)
    assert tracker.get_stats() == DownloadStats()


# -- bytes --------------------------------------------------------------------------------------


def test_add_bytes_and_set_bytes(tracker: DownloadTracker) -> None:
    tracker.register(A)
    tracker.register(B)
    _start(tracker, A)
    tracker.add_bytes(A, 10)
    tracker.add_bytes(A, 5)
    tracker.add_bytes(B, 7)
    assert tracker.get_stats().bytes_downloaded == 22

    tracker.set_bytes(A, 0)  # restart from zero
    info_a = tracker.get_download(A)
    assert info_a is not None
    assert info_a.bytes_downloaded == 0
    assert tracker.get_stats().bytes_downloaded == 7

    tracker.set_bytes(A, 40)  # resume offset
    tracker.add_bytes(A, 2)
    info_a = tracker.get_download(A)
    info_b = tracker.get_download(B)
    assert info_a is not None
    assert info_b is not None
    assert (info_a.bytes_downloaded, info_b.bytes_downloaded) == (42, 7)
    assert tracker.get_stats().bytes_downloaded == 49


# -- mark_finished ------------------------------------------------------------------------------


def test_mark_finished_stamps_times_from_the_clock(tracker: DownloadTracker, clock: FakeClock) -> None:
    tracker.register(A)
    clock.advance(5)
    _start(tracker, A, attempt=1)
    clock.advance(3)
    _start(tracker, A, attempt=2)  # a retry keeps the first start time
    clock.advance(4.5)
    info = tracker.mark_finished(A, DownloadStatus.COMPLETED, path=Path("/downloads/final.bin"))
    assert (info.started_at, info.finished_at) == (1005.0, 1012.5)
    assert info.elapsed == 7.5
    assert info.path == Path("/downloads/final.bin")
    assert info.error is None
    assert info.error_type is None
    assert tracker.get_download(A) == info


def test_mark_finished_without_start_uses_finish_time_as_start(tracker: DownloadTracker, clock: FakeClock) -> None:
    tracker.register(A)
    clock.advance(2)
    info = tracker.mark_finished(A, DownloadStatus.CANCELLED)
    assert info.started_at == info.finished_at == 1002.0
    assert info.elapsed == 0.0


def test_mark_finished_keeps_error_message_and_type(tracker: DownloadTracker) -> None:
    tracker.register(A)
    _start(tracker, A)
    error = HTTPStatusError("HTTP 404 Not Found from https://example.com/a", status=404)
    info = tracker.mark_finished(A, DownloadStatus.FAILED, error=error)
    assert info.status is DownloadStatus.FAILED
    assert info.error == "HTTP 404 Not Found from https://example.com/a"
    assert info.error_type == "HTTPStatusError"
    assert info.path == Path("/downloads/a")  # kept from mark_started when no path is given


def test_default_clock_is_wall_time() -> None:
    tracker = DownloadTracker()
    tracker.register(A)
    before = time.time()
    info = tracker.mark_finished(A, DownloadStatus.COMPLETED)
    after = time.time()
    assert info.finished_at is not None
    assert before <= info.finished_at <= after


# -- snapshots ----------------------------------------------------------------------------------


def test_snapshots_are_frozen_and_independent(tracker: DownloadTracker) -> None:
    tracker.register(A)
    _start(tracker, A)
    tracker.add_bytes(A, 10)
    snapshot = tracker.get_download(A)
    everything = tracker.get_all_downloads()
    stats = tracker.get_stats()
    assert snapshot is not None

    tracker.add_bytes(A, 90)
    tracker.mark_finished(A, DownloadStatus.COMPLETED)
    everything[B] = DownloadInfo(url=B, status=DownloadStatus.PENDING)  # mutating the copy

    assert snapshot.bytes_downloaded == 10
    assert snapshot.status is DownloadStatus.IN_PROGRESS
    assert everything[A].bytes_downloaded == 10
    assert stats.bytes_downloaded == 10
    assert tracker.get_download(B) is None
    latest = tracker.get_download(A)
    assert latest is not None
    assert (latest.bytes_downloaded, latest.status) == (100, DownloadStatus.COMPLETED)
    assert latest is not snapshot
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.bytes_downloaded = 0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.total = 0  # type: ignore[misc]


def test_get_download_unknown_is_none(tracker: DownloadTracker) -> None:
    tracker.register(A)
    assert tracker.get_download(B) is None
    assert tracker.get_download("") is None


# -- threads ------------------------------------------------------------------------------------


def test_concurrent_add_bytes_totals_are_exact(tracker: DownloadTracker) -> None:
    threads_count = 8
    per_thread = 2_000
    shared = "https://example.com/shared"
    own = [f"https://example.com/own/{i}" for i in range(threads_count)]
    for url in [shared, *own]:
        tracker.register(url)
        _start(tracker, url)

    barrier = threading.Barrier(threads_count, timeout=10)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            for step in range(per_thread):
                tracker.add_bytes(own[index], 1)
                tracker.add_bytes(shared, 2)
                if step % 250 == 0:
                    tracker.get_stats()
                    tracker.get_all_downloads()
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    for url in own:
        info = tracker.get_download(url)
        assert info is not None
        assert info.bytes_downloaded == per_thread
    shared_info = tracker.get_download(shared)
    assert shared_info is not None
    assert shared_info.bytes_downloaded == 2 * per_thread * threads_count
    stats = tracker.get_stats()
    assert stats.bytes_downloaded == 3 * per_thread * threads_count
    assert stats == DownloadStats(total=9, in_progress=9, bytes_downloaded=48_000)


# -- this run's bytes: resumed_from ------------------------------------------------------------


def test_a_resumed_download_counts_this_runs_bytes_apart(tracker: DownloadTracker) -> None:
    tracker.register("u")
    tracker.mark_started("u", path=Path("f"), total_bytes=100, attempt=1, bytes_downloaded=60)  # a kept part
    tracker.add_bytes("u", 25)
    tracker.mark_started("u", path=Path("f"), total_bytes=100, attempt=2, bytes_downloaded=85)  # this run's kept
    tracker.add_bytes("u", 15)
    info = tracker.mark_finished("u", DownloadStatus.COMPLETED)
    assert (info.bytes_downloaded, info.resumed_from, info.bytes_this_run) == (100, 60, 40)


def test_starting_over_drops_what_an_earlier_run_left(tracker: DownloadTracker) -> None:
    tracker.register("u")
    tracker.mark_started("u", path=Path("f"), total_bytes=100, attempt=1, bytes_downloaded=60)
    tracker.mark_started("u", path=Path("f"), total_bytes=100, attempt=2, bytes_downloaded=0)  # from zero
    tracker.add_bytes("u", 100)
    info = tracker.mark_finished("u", DownloadStatus.COMPLETED)
    assert (info.resumed_from, info.bytes_this_run) == (0, 100)
    tracker.register("v")
    tracker.mark_started("v", path=Path("g"), total_bytes=100, attempt=1, bytes_downloaded=60)
    tracker.set_bytes("v", 0)  # a restart from zero
    restarted = tracker.get_download("v")
    assert restarted is not None and restarted.resumed_from == 0


def test_an_unchanged_download_transferred_nothing(tracker: DownloadTracker) -> None:
    tracker.register("u")
    tracker.mark_started("u", path=Path("f"), total_bytes=100, attempt=1, bytes_downloaded=100)
    info = tracker.mark_finished("u", DownloadStatus.COMPLETED, unchanged=True)
    assert (info.bytes_downloaded, info.resumed_from, info.bytes_this_run) == (0, 0, 0)


class _ForgetfulStore:
    """A store that, as the journal, keeps no ``resumed_from``."""

    def __init__(self) -> None:
        self.kept: dict[int, DownloadInfo] = {}

    def started(self, row_id: int, *, path: Path, total: int | None, attempt: int, started_at: float) -> None:
        pass

    def finished(self, row_id: int, info: DownloadInfo) -> None:
        self.kept[row_id] = dataclasses.replace(info, resumed_from=0)

    def lookup(self, url: str) -> DownloadInfo | None:
        return next((info for info in self.kept.values() if info.url == url), None)

    def rows(self, status: str | None = None) -> Iterator[DownloadInfo]:
        return iter(list(self.kept.values()))

    def counts(self) -> dict[str, int]:
        return {}

    def total_bytes(self) -> int:
        return 0


def test_a_store_kept_download_keeps_its_resumed_from(tracker: DownloadTracker) -> None:
    store = _ForgetfulStore()
    tracker.bind_store(store)
    store.kept[1] = DownloadInfo(url="u", status=DownloadStatus.PENDING, bytes_downloaded=7)
    store.kept[2] = DownloadInfo(url="w", status=DownloadStatus.PENDING)
    for key, url in ((1, "u"), (2, "w")):
        assert tracker.adopt(url, key, store.kept[key])
        tracker.mark_started(url, path=Path(url), total_bytes=100, attempt=1, bytes_downloaded=30 if url == "u" else 0)
        tracker.add_bytes(url, 70 if url == "u" else 100)
        tracker.mark_finished(url, DownloadStatus.COMPLETED)
    every = tracker.get_all_downloads()
    assert (every["u"].resumed_from, every["u"].bytes_this_run) == (30, 70)
    assert (every["w"].resumed_from, every["w"].bytes_this_run) == (0, 100)
    looked_up = tracker.get_download("u")
    assert looked_up is not None and looked_up.resumed_from == 30


def test_an_adopted_download_that_never_starts_transferred_nothing(tracker: DownloadTracker) -> None:
    tracker.bind_store(_ForgetfulStore())
    assert tracker.adopt("u", 1, DownloadInfo(url="u", status=DownloadStatus.PENDING, bytes_downloaded=50))
    info = tracker.mark_finished("u", DownloadStatus.FAILED, error=RuntimeError("gone"))
    assert info.bytes_this_run == 0
