"""What the bars say, driven by events and a clock of the test's: no sockets, no sleeps.

A tqdm stand-in records each bar's count, total, postfix and close; the tracker is a real
one, moved as the manager moves it, and the events are the manager's.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from pydownloads.domain import DownloadStatus
from pydownloads.events import (
    ChunkDownloaded,
    DownloadCancelled,
    DownloadCompleted,
    DownloadFailed,
    DownloadStarted,
    EventEmitter,
)
from pydownloads.progress import ProgressDisplay
from pydownloads.tracking import DownloadTracker

MIB = 1024 * 1024


class FakeBar:
    """Records what the display does with a bar; ``bars`` holds every bar made."""

    bars: list[FakeBar] = []

    def __init__(self, *, total: int | None = None, initial: int = 0, desc: str = "", **options: Any) -> None:
        self.n, self.total, self.desc, self.options = initial, total, desc.strip(), options
        self.postfix, self.bar_format = "", options.get("bar_format")
        self.closed_at: int | None = None
        self.postfixes: list[str] = []
        FakeBar.bars.append(self)

    def update(self, n: int) -> None:
        assert n > 0 and self.closed_at is None
        self.n += n

    def refresh(self) -> None:
        pass

    def reset(self, total: int | None = None) -> None:
        self.n, self.total = 0, total

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        self.postfix = s
        self.postfixes.append(s)

    def close(self) -> None:
        assert self.closed_at is None, "closed twice"
        self.closed_at = self.n


class Run:
    """A display over a real tracker and emitter, moved by hand as a manager would."""

    def __init__(self, files: int, *, min_interval: float = 0.1, max_bars: int = 4) -> None:
        FakeBar.bars = []
        self.now = 0.0
        self.emitter, self.tracker = EventEmitter(), DownloadTracker()
        self.urls = [f"http://h/f{i}.bin" for i in range(files)]
        for url in self.urls:
            self.tracker.register(url)
        self.display = ProgressDisplay(self.emitter, self.tracker, tqdm_class=FakeBar,  # type: ignore[arg-type]
                                       min_interval=min_interval, max_bars=max_bars, clock=lambda: self.now)
        self.overall = FakeBar.bars[0]

    def start(self, url: str, total: int | None) -> None:
        self.tracker.mark_started(url, path=Path(url.rsplit("/", 1)[1]), total_bytes=total, attempt=1)
        self.emitter.emit(DownloadStarted(url=url, path=Path(url.rsplit("/", 1)[1]), total_bytes=total, attempt=1))

    def chunk(self, url: str, size: int) -> None:
        done = self.tracker.add_bytes(url, size)
        self.emitter.emit(ChunkDownloaded(url=url, bytes_downloaded=size, total_downloaded=done, total_bytes=None))

    def finish(self, url: str, status: DownloadStatus) -> None:
        info = self.tracker.mark_finished(url, status, error=RuntimeError("x") if status != DownloadStatus.COMPLETED
                                          else None)
        if status is DownloadStatus.COMPLETED:
            event: Any = DownloadCompleted(url=url, path=Path("f"), bytes_downloaded=info.bytes_downloaded,
                                           elapsed=1.0, attempts=1)
        elif status is DownloadStatus.FAILED:
            event = DownloadFailed(url=url, error="x", error_type="RuntimeError", attempts=1)
        else:
            event = DownloadCancelled(url=url, bytes_downloaded=info.bytes_downloaded)
        self.emitter.emit(event)

    def bar_of(self, name: str) -> FakeBar:
        (bar,) = [b for b in FakeBar.bars if b.desc == name]
        return bar


def test_a_completed_files_bar_shows_its_last_bytes_before_it_closes() -> None:
    run = Run(1)
    url = run.urls[0]
    run.start(url, 1000)
    run.now = 0.2
    run.chunk(url, 980)  # redraw due: the bar comes in at 980
    bar = run.bar_of("f0.bin")
    assert bar.n == 980
    run.now = 0.25  # within one interval: the last bytes are not drawn by the chunk...
    run.chunk(url, 20)
    run.finish(url, DownloadStatus.COMPLETED)
    assert bar.closed_at == 1000 == bar.total  # ...but before the bar closes: full, never "failed"


def test_a_failed_and_a_cancelled_download_say_so_and_stay_a_while() -> None:
    run = Run(3, max_bars=2)
    bad, stopped, later = run.urls
    run.start(bad, 1000)
    run.start(stopped, 1000)
    run.now = 0.2
    run.chunk(bad, 400)
    run.chunk(stopped, 300)
    run.finish(bad, DownloadStatus.FAILED)
    run.finish(stopped, DownloadStatus.CANCELLED)
    failed, cancelled = run.bar_of("f0.bin"), run.bar_of("f1.bin")
    assert "failed" in failed.postfix and "cancelled" in cancelled.postfix
    assert failed.closed_at is None and cancelled.closed_at is None  # still shown
    run.start(later, 1000)
    run.now = 1.0
    run.chunk(later, 10)
    assert failed.closed_at is None  # its position is not taken before it was seen
    run.now = 3.0
    run.chunk(later, 10)
    assert failed.closed_at == 400 and "failed" in failed.postfix  # the oldest made room
    assert run.bar_of("f2.bin").options["position"] == failed.options["position"]
    run.display.close()
    assert cancelled.closed_at == 300


def test_the_overall_bar_counts_completed_failed_and_cancelled_apart_and_ends_without_close() -> None:
    run = Run(6, min_interval=10.0)  # one redraw, then only what a last download forces
    for url in run.urls:
        run.start(url, 100)
        run.chunk(url, 100)
    for url, status in zip(run.urls, [DownloadStatus.COMPLETED] * 3 + [DownloadStatus.FAILED] * 2
                           + [DownloadStatus.CANCELLED], strict=True):
        run.finish(url, status)
    overall = run.overall
    assert overall.total == 6 and overall.n == 3  # failed and cancelled are no progress
    assert overall.postfix.startswith("2 failed, 1 cancelled, 600 B")
    assert overall.closed_at is None  # drawn at the last download's end, not at close
    run.display.close()
    assert overall.closed_at == 3 and overall.n < overall.total


def test_the_overall_total_is_there_from_the_first_draw() -> None:
    run = Run(5)
    assert run.overall.total == 5 and run.overall.n == 0


def test_no_eta_before_three_seconds_of_bytes_then_one_that_settles() -> None:
    """20 files of 1 MiB, 4 at a time, each at 1 MiB/s: the run takes 5 s (after 0.5 s
    of connecting).  Sampled every 0.1 s, the ETA must not show in the first seconds and,
    once shown, stay within 20 % (or 0.5 s) of what is left."""
    run = Run(20)
    queue, running = list(run.urls), dict[str, int]()
    run.now = 0.5
    etas: list[tuple[float, float]] = []
    step = 0.1
    while queue or running:
        while queue and len(running) < 4:
            url = queue.pop(0)
            run.start(url, MIB)
            running[url] = 0
        run.now = round(run.now + step, 6)
        for url in list(running):
            size = min(int(MIB * step), MIB - running[url])
            running[url] += size
            run.chunk(url, size)
            if running[url] == MIB:
                del running[url]
                run.finish(url, DownloadStatus.COMPLETED)
        match = re.search(r"ETA (\d+):(\d\d)", run.overall.postfix)
        if match:
            etas.append((run.now, int(match[1]) * 60 + int(match[2])))
    end = run.now
    assert etas and etas[0][0] >= 0.5 + 3.0  # three seconds of evidence first
    for at, eta in etas:
        left = end - at
        assert abs(eta - left) <= max(0.2 * left, 1.0), (at, eta, left)


def test_one_unit_system_on_every_bar(tmp_path: Path) -> None:
    """Real tqdm text: KiB and MiB (and MiB/s) on the files as on the total; no "M", "MB/s"
    or "kB/s" of tqdm's own scaling."""
    out = io.StringIO()
    now = [0.0]
    emitter, tracker = EventEmitter(), DownloadTracker()
    tracker.register("http://h/big.bin")
    display = ProgressDisplay(emitter, tracker, file=out, min_interval=0.1, clock=lambda: now[0])
    tracker.mark_started("http://h/big.bin", path=Path("big.bin"), total_bytes=3 * MIB, attempt=1)
    emitter.emit(DownloadStarted(url="http://h/big.bin", path=Path("big.bin"), total_bytes=3 * MIB, attempt=1))
    for i in range(1, 31):
        now[0] = i * 0.1
        done = tracker.add_bytes("http://h/big.bin", MIB // 10)
        emitter.emit(ChunkDownloaded(url="http://h/big.bin", bytes_downloaded=MIB // 10, total_downloaded=done,
                                     total_bytes=3 * MIB))
    display.close()
    text = out.getvalue()
    assert re.search(r"big\.bin .*\| [\d.]+ MiB/3\.0 MiB, 1\.0 MiB/s", text), text
    assert not re.search(r"\d(M|k|K|G)(B|B/s|/s)?\b|MB/s|kB/s", text), text
