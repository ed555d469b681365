"""Progress bars for running downloads: a receiver of the download signals, never on their path.

One overall bar (files done of queued, bytes, speed, ETA) and a bar for each active download,
drawn with ``tqdm.auto``: a terminal gets text bars, a Jupyter notebook gets widgets::

    from pydownloads.progress import ProgressDisplay

    with DownloadManager("downloads") as manager:
        display = ProgressDisplay(manager.emitter, manager.tracker)
        manager.add_to_queue(urls)
        manager.queue.join()
        display.close()

It sits above ``events`` and ``tracking`` (it follows the one and reads the other) and below
``downloads``, whose manager imports it only when asked for ``progress=True``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, cast

from pydownloads.domain.errors import InvalidArgumentError
from pydownloads.events.emitter import EventEmitter
from pydownloads.events.types import (
    ChunkDownloaded,
    DownloadCancelled,
    DownloadCompleted,
    DownloadEvent,
    DownloadFailed,
    DownloadStarted,
)
from pydownloads.tracking.tracker import DownloadTracker

if TYPE_CHECKING:  # tqdm (and with tqdm.auto, asyncio) is imported only when bars are drawn
    from tqdm.auto import tqdm as auto_tqdm

__all__ = ["DEFAULT_MAX_BARS", "DEFAULT_MIN_INTERVAL", "ProgressDisplay"]

DEFAULT_MIN_INTERVAL = 0.1
#: Bars for single downloads shown at once; more active downloads only count in the overall bar.
DEFAULT_MAX_BARS = 8
_NAME_WIDTH = 20
#: Terminal columns left free at the end of each bar line (see _bar_class_for).
_MARGIN = 3
# tqdm puts ", " before a postfix: "total: 3/8 files, 1.2 MiB, 3.4 MiB/s, ETA 0:02 |███   | 00:01"
_OVERALL_FORMAT = "{desc}: {n_fmt}/{total_fmt} files{postfix} |{bar}| {elapsed}"
_OVERALL_FORMAT_UNKNOWN = "{desc}: {n_fmt} files{postfix} {elapsed}"
#: Weight of the newest measurement in the overall speed (exponential moving average).
_SPEED_SMOOTHING = 0.3

Bar = Any  # a tqdm instance (or a stand-in with the same methods)


class _Download:
    """What the display knows of one active download; touched under the display's lock, but
    for ``done``, which each chunk stores without it (see ``_on_chunk``)."""

    __slots__ = ("bar", "done", "name", "restarted", "slot", "started_at", "total")

    def __init__(self, name: str, total: int | None, started_at: float) -> None:
        self.name = name
        self.total = total
        self.done = 0
        self.started_at = started_at
        self.restarted = False
        self.bar: Bar | None = None
        self.slot = 0


class ProgressDisplay:
    """Draw progress bars from a manager's events until :meth:`close`.

    :param emitter: the events to follow (``manager.emitter``); handlers are subscribed here.
    :param tracker: where the overall counts come from (``manager.tracker``).
    :param tqdm_class: the bar class; default ``tqdm.auto.tqdm`` (widgets in Jupyter).
    :param file: where terminal bars go; default: tqdm's (standard error).
    :param min_interval: seconds between two redraws; events in between only update counters.
    :param max_bars: bars for single downloads at once (positions 1..max_bars are reused);
        a download gets one once it has run for ``min_interval``, so small files that finish
        at once never cost a bar.
    :param clock: monotonic seconds (injectable for tests).

    Threading: the handlers run in the download threads.  Each takes the display's lock for
    O(1) work; at most once per ``min_interval`` one of them also redraws, which touches at
    most ``max_bars + 1`` bars.  The display starts no thread (tqdm's monitor thread is
    switched off for its bars).  ``close`` and ``write`` may be called from any thread.
    """

    def __init__(
        self,
        emitter: EventEmitter,
        tracker: DownloadTracker,
        *,
        tqdm_class: type[auto_tqdm[Any]] | None = None,
        file: IO[str] | None = None,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        max_bars: int = DEFAULT_MAX_BARS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(min_interval, (int, float)) or not 0 <= min_interval < float("inf"):
            raise InvalidArgumentError(f"min_interval must be seconds >= 0, not {min_interval!r}")
        if not isinstance(max_bars, int) or isinstance(max_bars, bool) or max_bars < 0:
            raise InvalidArgumentError(f"max_bars must be an int >= 0, not {max_bars!r}")
        if tqdm_class is None:  # imported here: tqdm.auto costs 20-35 ms (asyncio) in every process
            from tqdm.auto import tqdm as auto_tqdm
            tqdm_class = auto_tqdm
        base = tqdm_class
        # The write lock must exist before the download threads race to create it.
        get_lock = getattr(base, "get_lock", None)
        if callable(get_lock):
            get_lock()
        self._bar_class = _bar_class_for(base)
        self._emitter = emitter
        self._tracker = tracker
        self._file = file
        self._min_interval = float(min_interval)
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        self._active: dict[str, _Download] = {}
        self._free_slots = list(range(max_bars, 0, -1))  # pop() hands out the lowest position
        self._next_redraw = 0.0
        self._last_bytes = 0
        self._started = self._last_time = clock()
        self._speed: float | None = None
        self._overall: Bar = self._new_bar(
            desc="total", unit="file", position=0, leave=True, total=None,
            bar_format=_OVERALL_FORMAT_UNKNOWN,
        )
        self._handlers: dict[str, Callable[[Any], None]] = {
            "worker.queued": self._on_queued,
            "worker.started": self._on_started,
            "worker.chunk_downloaded": self._on_chunk,
            "worker.completed": self._on_finished,
            "worker.failed": self._on_finished,
            "worker.cancelled": self._on_finished,
        }
        with self._lock:
            self._redraw(self._clock())
        for name, handler in self._handlers.items():
            emitter.on(name, handler)

    # -- the public surface ----------------------------------------------------------------

    def write(self, message: str) -> None:
        """Print ``message`` on its own line above the bars (which are redrawn below it)."""
        with self._lock:
            stream = self._file if self._file is not None else sys.stderr
            if self._closed:
                stream.write(message + "\n")
                stream.flush()
                return
            write = getattr(self._bar_class, "write", None)
            if callable(write):
                write(message, file=stream)
            else:
                stream.write(message + "\n")

    def close(self) -> None:
        """Stop following events, draw the final counts and close every bar.  Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for name, handler in self._handlers.items():
            self._emitter.off(name, handler)
        with self._lock:
            for download in list(self._active.values()):
                self._drop_bar(download)
            self._active.clear()
            self._redraw_overall(self._clock(), final=True)
            self._overall.close()

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- signal handlers (download threads) ------------------------------------------------

    def _on_queued(self, event: DownloadEvent) -> None:
        self._tick_if_due()

    def _on_started(self, event: DownloadStarted) -> None:
        # Under the lock (once per attempt, not per chunk): another attempt changes three
        # fields together, and a redraw between them would draw a restart half-made.
        now = self._clock()
        with self._lock:
            if self._closed:
                return
            download = self._active.get(event.url)
            if download is None:
                self._active[event.url] = _Download(event.path.name, event.total_bytes, now)
            else:  # another attempt: the bytes start again from what it keeps
                download.total, download.done, download.restarted = event.total_bytes, 0, True
            self._tick(now)

    def _on_chunk(self, event: ChunkDownloaded) -> None:
        # The one write without the lock: one dictionary lookup and one attribute store are
        # atomic, and a redraw reading ``done`` a chunk late only draws that chunk next time.
        # Sixteen download threads taking one lock for every chunk cost more than the bars.
        download = self._active.get(event.url)
        if download is not None:
            download.done = event.total_downloaded
        self._tick_if_due()

    def _on_finished(self, event: DownloadCompleted | DownloadFailed | DownloadCancelled) -> None:
        with self._lock:
            download = self._active.pop(event.url, None)
            if download is not None:
                self._drop_bar(download)
            self._tick()

    def _tick_if_due(self) -> None:
        """Take the lock (and redraw) only when a redraw is due: most events need neither."""
        now = self._clock()
        if now >= self._next_redraw:
            with self._lock:
                self._tick(now)

    # -- drawing (always under self._lock) -------------------------------------------------

    def _tick(self, now: float | None = None) -> None:
        """Redraw if ``min_interval`` has passed since the last redraw; else O(1) and nothing."""
        if self._closed:
            return
        now = self._clock() if now is None else now
        if now >= self._next_redraw:
            self._redraw(now)

    def _redraw(self, now: float) -> None:
        self._next_redraw = now + self._min_interval
        self._redraw_overall(now)
        for download in self._active.values():  # the dictionary only changes under the lock
            if download.bar is None:
                if not self._free_slots or now - download.started_at < self._min_interval:
                    continue
                download.slot = self._free_slots.pop()
                download.bar = self._new_bar(
                    desc=_short_name(download.name), total=download.total, initial=download.done,
                    position=download.slot, leave=False, unit="B", unit_scale=True, unit_divisor=1024,
                )
                download.restarted = False
                continue
            bar = download.bar
            if download.restarted:
                download.restarted = False
                bar.reset(total=download.total)
            if download.done != bar.n:
                bar.update(download.done - bar.n)

    def _redraw_overall(self, now: float, *, final: bool = False) -> None:
        stats = self._tracker.get_stats()
        done = stats.completed + stats.failed + stats.cancelled
        elapsed = now - self._last_time
        if elapsed >= self._min_interval and elapsed > 0:
            measured = (stats.bytes_downloaded - self._last_bytes) / elapsed
            previous = self._speed
            self._speed = measured if previous is None else (
                _SPEED_SMOOTHING * measured + (1 - _SPEED_SMOOTHING) * previous)
            self._last_bytes, self._last_time = stats.bytes_downloaded, now
        parts = [format_bytes(stats.bytes_downloaded)]
        if final:  # the last line tells the average speed of the whole run
            if now > self._started:
                parts.append(f"{format_bytes(stats.bytes_downloaded / (now - self._started))}/s")
        elif self._speed is not None:
            parts.append(f"{format_bytes(self._speed)}/s")
            eta = self._eta(now, done, stats.pending)
            if eta is not None:
                parts.append(f"ETA {_clock_time(eta)}")
        bar = self._overall
        if stats.total and bar.total != stats.total:
            bar.total = stats.total
            bar.bar_format = _OVERALL_FORMAT
        bar.set_postfix_str(", ".join(parts), refresh=False)
        if done > bar.n:
            bar.update(done - bar.n)
        else:
            bar.refresh()

    def _eta(self, now: float, done: int, pending: int) -> float | None:
        """Seconds left: the longer of the bytes the running downloads still need at the
        current speed, and the files not started yet at the rate files have been finishing."""
        estimates = []
        if self._speed:
            left = sum(d.total - d.done for d in self._active.values()
                       if d.total is not None and d.total > d.done)
            estimates.append(left / self._speed)
        if pending and done and now > self._started:
            estimates.append(pending / (done / (now - self._started)))
        elif pending:
            return None
        return max(estimates, default=None)

    def _new_bar(self, **options: Any) -> Bar:
        if self._file is not None:
            options["file"] = self._file
        # We throttle redraws ourselves: let every update we make reach the screen.
        return self._bar_class(mininterval=0, miniters=1, dynamic_ncols=True, **options)

    def _drop_bar(self, download: _Download) -> None:
        if download.bar is not None:
            download.bar.close()
            download.bar = None
            self._free_slots.append(download.slot)
            self._free_slots.sort(reverse=True)


def _bar_class_for(base: type[auto_tqdm[Any]]) -> type[auto_tqdm[Any]]:
    """A subclass of ``base`` (tqdm itself is left alone) for the display's bars.

    It starts no monitor thread, and leaves the last columns of a terminal line free: the
    terminal echoes Ctrl-C as ``^C`` at the cursor, and on a full-width line that echo would
    wrap and push every bar one line down for good.
    """
    namespace: dict[str, Any] = {"monitor_interval": 0}
    parent = getattr(base, "format_dict", None)
    if isinstance(parent, property) and parent.fget is not None:
        read = parent.fget

        def format_dict(self: Any) -> Any:
            values = read(self)
            ncols = values.get("ncols") if isinstance(values, dict) else None
            if isinstance(ncols, int) and ncols > 2 * _MARGIN:
                values = {**values, "ncols": ncols - _MARGIN}
            return values

        namespace["format_dict"] = property(format_dict)
    return cast("type[auto_tqdm[Any]]", type(base.__name__, (base,), namespace))


def _short_name(name: str, width: int = _NAME_WIDTH) -> str:
    """``name`` cut in the middle to ``width`` characters and padded, so that bars line up."""
    if len(name) > width:
        keep = width - 1
        name = name[: keep // 2] + "…" + name[len(name) - (keep - keep // 2):]
    return name.ljust(width)


def _clock_time(seconds: float) -> str:
    """``seconds`` as ``M:SS`` or ``H:MM:SS``."""
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def format_bytes(count: float) -> str:
    """``count`` bytes for people, 1024-based: ``512 B``, ``1.5 KiB``, ``20.0 MiB``."""
    if abs(count) < 1024:
        return f"{count:.0f} B"
    value = count / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
