"""ProgressDisplay driven by a real manager against the local server."""

from __future__ import annotations

import io
import re
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from pydownloads import DownloadManager, InvalidArgumentError, RetryConfig
from pydownloads.events import ChunkDownloaded, DownloadCompleted, DownloadStarted, EventEmitter
from pydownloads.localserver import LocalServer, ResetAfter
from pydownloads.progress import ProgressDisplay
from pydownloads.tracking import DownloadTracker
from tests.integration.helpers import payload, wait_until

FAST_RETRY = RetryConfig(max_retries=2, base_delay=0.01, max_delay=0.02)


def fake_tqdm() -> tuple[type, list[tuple[Any, ...]]]:
    """A tqdm stand-in class recording what the display does with its bars, and the record."""
    log: list[tuple[Any, ...]] = []
    lock = threading.Lock()

    class FakeBar:
        def __init__(self, *, total: int | None = None, initial: int = 0, position: int | None = None,
                     desc: str = "", leave: bool = True, **options: Any) -> None:
            self.n, self.total, self.position, self.desc = initial, total, position, desc
            self.bar_format = options.get("bar_format")
            self.options, self.postfix, self.closed = options, "", False
            log.append(("new", desc.strip(), position, total, initial))

        def update(self, n: int) -> None:
            assert n > 0 and not self.closed
            self.n += n
            log.append(("update", self.desc.strip(), n))

        def refresh(self) -> None:
            log.append(("refresh", self.desc.strip()))

        def reset(self, total: int | None = None) -> None:
            self.n, self.total = 0, total
            log.append(("reset", self.desc.strip(), total))

        def set_postfix_str(self, s: str, refresh: bool = True) -> None:
            self.postfix = s

        def close(self) -> None:
            assert not self.closed, "closed twice"
            self.closed = True
            log.append(("close", self.desc.strip(), self.position, self.n, self.postfix))

        @classmethod
        def write(cls, s: str, file: Any = None) -> None:
            log.append(("write", s))

        @classmethod
        def get_lock(cls) -> threading.Lock:
            log.append(("get_lock",))
            return lock

    return FakeBar, log


def open_bars_over_time(log: list[tuple[Any, ...]]) -> tuple[int, set[int], int]:
    """(most file bars open at once, positions they used, file bars created)."""
    open_positions: list[int] = []
    most, used, created = 0, set(), 0
    for entry in log:
        if entry[0] == "new" and entry[2] != 0:
            assert entry[2] not in open_positions, f"position {entry[2]} given twice"
            open_positions.append(entry[2])
            used.add(entry[2])
            created += 1
            most = max(most, len(open_positions))
        elif entry[0] == "close" and entry[2] != 0:
            open_positions.remove(entry[2])
    assert open_positions == []
    return most, used, created


def test_bars_follow_a_real_manager_reusing_a_pool_of_positions(local_server: LocalServer, tmp_path: Path) -> None:
    urls = [local_server.add_file(f"/p{i}.bin", payload(200_000, i), rate=1_000_000) for i in range(6)]
    bar_class, log = fake_tqdm()
    with DownloadManager(tmp_path, max_workers=3) as manager:
        display = ProgressDisplay(manager.emitter, manager.tracker, tqdm_class=bar_class, min_interval=0.02,
                                  max_bars=2)
        manager.add_to_queue(urls)
        manager.queue.join()
        display.close()
        display.close()  # idempotent
    assert log[0] == ("get_lock",)  # the write lock exists before any thread draws
    assert log[1] == ("new", "total", 0, None, 0)
    most, used, created = open_bars_over_time(log)
    assert most == 2 and used == {1, 2} and created >= 3  # more bars than positions: positions reused
    file_bars = [e for e in log if e[0] == "new" and e[2] != 0]
    assert all(e[3] == 200_000 for e in file_bars)  # sized bars
    final = log[-1]
    assert final[:4] == ("close", "total", 0, 6)
    assert final[4].startswith("1.1 MiB, ") and final[4].endswith("/s")
    assert not manager.emitter.is_listening(ChunkDownloaded)  # close() unsubscribed


def test_a_download_of_unknown_size_gets_a_bar_without_total(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/stream.log", payload(150_000), rate=1_000_000, send_length=False)
    bar_class, log = fake_tqdm()
    with DownloadManager(tmp_path, max_workers=1) as manager:
        display = ProgressDisplay(manager.emitter, manager.tracker, tqdm_class=bar_class, min_interval=0)
        manager.add_to_queue([url])
        manager.queue.join()
        display.close()
    (created,) = [e for e in log if e[0] == "new" and e[1] == "stream.log"]
    assert created[3] is None
    assert sum(e[2] for e in log if e[0] == "update" and e[1] == "stream.log") + created[4] <= 150_000
    assert log[-1][:4] == ("close", "total", 0, 1)


def test_a_retried_download_restarts_its_bar(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/flaky.bin", payload(300_000), rate=2_000_000, accept_ranges=False)
    local_server.add_faults("/flaky.bin", ResetAfter(100_000))
    bar_class, log = fake_tqdm()
    with DownloadManager(tmp_path, max_workers=1, retry_config=FAST_RETRY) as manager:
        display = ProgressDisplay(manager.emitter, manager.tracker, tqdm_class=bar_class, min_interval=0)
        manager.add_to_queue([url])
        manager.queue.join()
        display.close()
    info = manager.tracker.get_download(url)
    assert info is not None and info.attempts == 2 and info.bytes_downloaded == 300_000
    assert ("reset", "flaky.bin", 300_000) in log
    after_reset = log[log.index(("reset", "flaky.bin", 300_000)):]
    assert sum(e[2] for e in after_reset if e[0] == "update" and e[1] == "flaky.bin") <= 300_000


def test_real_tqdm_output_and_no_monitor_thread(local_server: LocalServer, tmp_path: Path) -> None:
    # 200 ms a file at least: long enough for each to earn a bar of its own even on a busy machine
    urls = [local_server.add_file(f"/r{i}.bin", payload(100_000, i), rate=500_000) for i in range(3)]
    out = io.StringIO()
    before = set(threading.enumerate())
    with DownloadManager(tmp_path, max_workers=2) as manager:
        display = ProgressDisplay(manager.emitter, manager.tracker, file=out, min_interval=0.01)
        manager.add_to_queue(urls)
        manager.queue.join()
        display.write("a line above the bars")
        display.close()
    text = out.getvalue()
    assert "total: 3/3 files, 293.0 KiB" in text
    assert any(f"r{i}.bin" in text for i in range(3)) and "a line above the bars\n" in text
    assert not any(type(t).__name__ == "TMonitor" for t in set(threading.enumerate()) - before)


def test_chunk_events_between_redraws_do_no_drawing() -> None:
    """10,000 chunks within one interval cost counter updates only: the display stays O(1)."""
    now = [0.0]
    emitter, tracker = EventEmitter(), DownloadTracker()
    bar_class, log = fake_tqdm()
    display = ProgressDisplay(emitter, tracker, tqdm_class=bar_class, min_interval=0.5, clock=lambda: now[0])
    tracker.register("http://h/a")
    emitter.emit(DownloadStarted(url="http://h/a", path=Path("a"), total_bytes=10_000, attempt=1))
    drawn = len(log)
    for i in range(1, 10_001):
        emitter.emit(ChunkDownloaded(url="http://h/a", bytes_downloaded=1, total_downloaded=i, total_bytes=10_000))
    assert len(log) == drawn
    now[0] = 0.6  # one interval later: one redraw brings the bar in at the current count
    emitter.emit(ChunkDownloaded(url="http://h/a", bytes_downloaded=0, total_downloaded=10_000, total_bytes=10_000))
    assert ("new", "a", 1, 10_000, 10_000) in log[drawn:]
    emitter.emit(DownloadCompleted(url="http://h/a", path=Path("a"), bytes_downloaded=10_000, elapsed=1, attempts=1))
    assert log[-1][:3] == ("close", "a", 1)
    display.close()
    assert not emitter.is_listening(ChunkDownloaded) and not emitter.is_listening(DownloadStarted)
    count = len(log)
    emitter.emit(DownloadStarted(url="http://h/b", path=Path("b"), total_bytes=1, attempt=1))
    assert len(log) == count  # nothing after close


def test_write_goes_through_the_bar_class_and_after_close_plainly() -> None:
    bar_class, log = fake_tqdm()
    out = io.StringIO()
    display = ProgressDisplay(EventEmitter(), DownloadTracker(), tqdm_class=bar_class, file=out)
    display.write("retrying x")
    assert ("write", "retrying x") in log
    display.close()
    display.write("after")
    assert out.getvalue() == "after\n"


@pytest.mark.parametrize("options", [{"min_interval": -1}, {"min_interval": float("nan")}, {"max_bars": -1},
                                     {"max_bars": True}])
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        ProgressDisplay(EventEmitter(), DownloadTracker(), **options)


@pytest.mark.timeout(60)
def test_after_ctrl_c_the_overall_bar_counts_only_completed_files(local_server: LocalServer, tmp_path: Path) -> None:
    """The command with --progress: one Ctrl-C finishes the two running downloads and
    cancels four; the bar's last line says 2 of 6 and 4 cancelled, never 6/6."""
    from tests.integration.test_cli import Running

    urls = [local_server.add_file(f"/c{i}.bin", payload(600_000, i), rate=1_000_000) for i in range(6)]
    command = Running(*urls, "-j", "2", "--progress", cwd=tmp_path)
    try:
        assert wait_until(lambda: sum(local_server.bytes_sent(f"/c{i}.bin") > 0 for i in range(6)) == 2)
        command.process.send_signal(signal.SIGINT)
        code, _, stderr = command.finish(timeout=20)
    finally:
        command.close()
    assert code == 130 and "2 completed, 0 failed, 4 cancelled" in stderr, stderr
    overall = [line for line in re.split(r"[\r\n]", stderr) if line.startswith("total: ")]
    assert overall[-1].startswith("total: 2/6 files, 4 cancelled, "), overall[-1]
    assert not any(line.startswith("total: 6/6") for line in overall), overall
