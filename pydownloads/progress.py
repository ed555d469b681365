"""Progress bars for running downloads: a receiver of the download signals, never on their path.

One overall bar (files completed of queued, failed and cancelled apart, bytes, speed, ETA)
and a bar for each active download, drawn with ``tqdm.auto``: a terminal gets text bars, a
Jupyter notebook gets widgets::

    from pydownloads.progress import ProgressDisplay

    with DownloadManager("downloads") as manager:
        display = ProgressDisplay(manager.emitter, manager.tracker)
        manager.add_to_queue(urls)
        manager.queue.join()
        display.close()

A completed file's bar ends full; a failed or cancelled one says so (red in a notebook); the
overall bar fills with completed files only; sizes and speeds are 1024-based (KiB, MiB/s).

It sits above ``events`` and ``tracking`` (it follows the one and reads the other) and below
``downloads``, whose manager imports it only when asked for ``progress=True``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from pydownloads._bars import (
    DANGER,
    FILE_FORMAT,
    FILE_FORMAT_UNKNOWN,
    NORMAL,
    OVERALL_FORMAT,
    OVERALL_FORMAT_UNKNOWN,
    SUCCESS,
    RateWindow,
    bar_class_for,
    clock_time,
    format_bytes,
    set_bar_style,
    set_total,
    short_name,
)
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

__all__ = ["DEFAULT_MAX_BARS", "DEFAULT_MIN_INTERVAL", "ProgressDisplay", "format_bytes"]

DEFAULT_MIN_INTERVAL = 0.1
#: Bars for single downloads shown at once; more active downloads only count in the overall bar.
DEFAULT_MAX_BARS = 8
#: Seconds the overall speed is measured over, and seconds of it before an ETA is shown:
#: the first moments (connections opening, small files first) say little about the rest.
_RATE_WINDOW = 5.0
_ETA_EVIDENCE = 3.0
#: Seconds a failed or cancelled download's bar stays at least before its position is reused.
_LINGER = 2.0

Bar = Any  # a tqdm instance (or a stand-in with the same methods)


class _Download:
    """What the display knows of one active download; touched under the display's lock, but
    for ``done``, which each chunk stores without it (see ``_on_chunk``)."""

    __slots__ = ("bar", "done", "name", "restarted", "since", "slot", "started_at", "total")

    def __init__(self, name: str, total: int | None, started_at: float) -> None:
        self.name = name
        self.total = total
        self.done = 0
        self.started_at = started_at
        self.restarted = False
        self.bar: Bar | None = None
        self.slot = 0
        self.since = (started_at, 0)  # (time, bytes) its bar's speed is measured from


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
    O(1) work, but a chunk, which takes none between redraws; at most once per
    ``min_interval`` one of them also redraws, which touches at most ``max_bars + 1`` bars.
    The display starts no thread (tqdm's monitor thread is switched off for its bars).
    ``close`` and ``write`` may be called from any thread.
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
        self._bar_class = bar_class_for(base)
        self._emitter = emitter
        self._tracker = tracker
        self._file = file
        self._min_interval = float(min_interval)
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        self._active: dict[str, _Download] = {}
        self._ended: list[_Download] = []  # failed or cancelled bars still shown, oldest first
        self._free_slots = list(range(max_bars, 0, -1))  # pop() hands out the lowest position
        self._next_redraw = 0.0
        self._started = clock()
        self._rate = RateWindow(_RATE_WINDOW)
        self._first_byte: float | None = None
        self._sized = [0, 0]  # bytes and count of completed files: the size a queued one may have
        total = tracker.get_stats().total
        self._overall: Bar = self._new_bar(
            desc="total", unit="file", position=0, leave=True, total=total or None,
            bar_format=OVERALL_FORMAT if total else OVERALL_FORMAT_UNKNOWN,
        )
        self._handlers: dict[str, Callable[[Any], None]] = {
            "worker.queued": self._tick_if_due,
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
            write = None if self._closed else getattr(self._bar_class, "write", None)
            if callable(write):
                write(message, file=stream)
            else:
                stream.write(message + "\n")
                stream.flush()

    def close(self) -> None:
        """Stop following events, draw the final counts and close every bar.  Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for name, handler in self._handlers.items():
            self._emitter.off(name, handler)
        with self._lock:
            for download in [*self._ended, *self._active.values()]:
                self._drop_bar(download)
            self._ended.clear()
            self._active.clear()
            self._redraw_overall(self._clock(), final=True)
            self._overall.close()

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- signal handlers (download threads) ------------------------------------------------

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
                download.since = (now, 0)
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
        now = self._clock()
        with self._lock:
            if self._closed:
                return
            download = self._active.pop(event.url, None)
            if isinstance(event, DownloadCompleted):
                self._sized[0] += event.bytes_downloaded
                self._sized[1] += 1
            if download is not None and download.bar is not None:
                self._end_bar(download, event, now)
            stats = self._tracker.get_stats()
            if not stats.pending and not stats.in_progress:  # the last one: draw the end now
                self._redraw(now)
            else:
                self._tick(now)

    def _tick_if_due(self, event: object = None) -> None:
        """Take the lock (and redraw) only when a redraw is due: most events need neither."""
        now = self._clock()
        if now >= self._next_redraw:
            with self._lock:
                self._tick(now)

    # -- drawing (always under self._lock) -------------------------------------------------

    def _tick(self, now: float) -> None:
        """Redraw if ``min_interval`` has passed since the last redraw; else O(1) and nothing."""
        if not self._closed and now >= self._next_redraw:
            self._redraw(now)

    def _redraw(self, now: float) -> None:
        self._next_redraw = now + self._min_interval
        self._redraw_overall(now)
        for download in self._active.values():  # the dictionary only changes under the lock
            if download.bar is None:
                if now - download.started_at >= self._min_interval and self._take_slot(download, now):
                    self._new_file_bar(download, now)
                continue
            bar = download.bar
            if download.restarted:
                download.restarted = False
                bar.reset(total=download.total)
                bar.bar_format = FILE_FORMAT_UNKNOWN if download.total is None else FILE_FORMAT
            self._draw_file(download, download.done, now)

    def _take_slot(self, download: _Download, now: float) -> bool:
        """A position for ``download``'s bar: a free one, or the oldest ended bar's."""
        if not self._free_slots and self._ended and now - self._ended[0].started_at >= _LINGER:
            self._drop_bar(self._ended.pop(0))
        if not self._free_slots:
            return False
        download.slot = self._free_slots.pop()
        return True

    def _new_file_bar(self, download: _Download, now: float) -> None:
        download.since = (now, download.done)
        download.restarted = False
        download.bar = self._new_bar(
            desc=short_name(download.name), total=download.total, initial=download.done,
            position=download.slot, leave=False, unit="B",
            bar_format=FILE_FORMAT_UNKNOWN if download.total is None else FILE_FORMAT,
        )
        self._draw_file(download, download.done, now)

    def _draw_file(self, download: _Download, done: int, now: float, word: str = "") -> None:
        """Bring ``download``'s bar to ``done`` bytes, with its sizes, speed or ``word``."""
        bar: Bar = download.bar
        sizes = format_bytes(done) if download.total is None else (
            f"{format_bytes(done)}/{format_bytes(download.total)}")
        since_time, since_bytes = download.since
        if word:
            sizes = f"{word} at {sizes}"
        elif now - since_time >= 0.5:  # a speed needs half a second of evidence
            sizes += f", {format_bytes((done - since_bytes) / (now - since_time))}/s"
        bar.set_postfix_str(sizes, refresh=False)
        if done > bar.n:
            bar.update(done - bar.n)
        else:
            bar.refresh()

    def _end_bar(self, download: _Download, event: DownloadEvent, now: float) -> None:
        """Draw a finished download's last state: a completed one full, then gone; a failed
        or cancelled one says so (red in a notebook) and stays until its position is needed."""
        bar: Bar = download.bar
        if isinstance(event, DownloadCompleted):
            # Its last bytes are drawn before it closes: tqdm paints a bar closed short of its
            # total as failed.  A total the file did not reach (the server's size was wrong)
            # is the file's size now.
            done = max(event.bytes_downloaded, download.done)
            if download.total != done:
                download.total = done
                set_total(bar, done)
                bar.bar_format = FILE_FORMAT
            self._draw_file(download, done, now)
            self._drop_bar(download)
            return
        word = "failed" if isinstance(event, DownloadFailed) else "cancelled"
        set_bar_style(bar, DANGER)
        self._draw_file(download, download.done, now, word)
        download.started_at = now  # ended: how long it has stayed counts from here
        self._ended.append(download)

    def _redraw_overall(self, now: float, *, final: bool = False) -> None:
        stats = self._tracker.get_stats()
        self._rate.add(now, stats.bytes_downloaded)
        if self._first_byte is None and stats.bytes_downloaded:
            self._first_byte = now
        parts = [f"{count} {word}" for count, word in ((stats.failed, "failed"), (stats.cancelled, "cancelled"))
                 if count]
        parts.append(format_bytes(stats.bytes_downloaded))
        speed = self._rate.rate(min_span=self._min_interval)
        if final:  # the last line tells the average speed of the whole run
            if now > self._started:
                parts.append(f"{format_bytes(stats.bytes_downloaded / (now - self._started))}/s")
        elif speed is not None:
            parts.append(f"{format_bytes(speed)}/s")
            eta = self._eta(now, speed, stats.pending)
            if eta is not None:
                parts.append(f"ETA {clock_time(eta)}")
        bar = self._overall
        if stats.total and bar.total != stats.total:
            set_total(bar, stats.total)
            bar.bar_format = OVERALL_FORMAT
        settled = bool(stats.total) and not stats.pending and not stats.in_progress
        set_bar_style(bar, NORMAL if not settled else SUCCESS if stats.completed == stats.total else DANGER)
        bar.set_postfix_str(", ".join(parts), refresh=False)
        if stats.completed > bar.n:  # completed files only: failed and cancelled are not progress
            bar.update(stats.completed - bar.n)
        else:
            bar.refresh()

    def _eta(self, now: float, speed: float, pending: int) -> float | None:
        """Seconds left: the longer of the bytes still to come over the speed of the last few
        seconds, and the slowest running download's bytes over its own speed (the speed of
        all falls as downloads end).

        The bytes to come are what the running downloads still need and, for each download
        not started yet, the mean size of those whose size is known.  None (no ETA) before a
        few seconds of bytes, or when no size is known at all.
        """
        if self._first_byte is None or now - self._first_byte < _ETA_EVIDENCE or speed <= 0:
            return None
        left: float = 0
        slowest = 0.0
        sizes, sized = self._sized
        for download in self._active.values():
            if download.total is None:
                return None
            rest = max(download.total - download.done, 0)
            since_time, since_bytes = download.since
            if now - since_time >= 1 and download.done > since_bytes:
                slowest = max(slowest, rest * (now - since_time) / (download.done - since_bytes))
            left, sizes, sized = left + rest, sizes + download.total, sized + 1
        if pending and not sized:
            return None
        return max(slowest, (left + (pending * sizes / sized if pending else 0)) / speed)

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
