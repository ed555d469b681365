"""What :mod:`pydownloads.progress` draws with: byte units, the rate window, and the few
things a tqdm bar (text or Jupyter widget) needs told that its public methods do not say.

Private: the display's helpers, importing nothing of ours and no tqdm (bars are duck-typed,
so a stand-in with the same methods works too).
"""

from __future__ import annotations

from collections import deque
from typing import Any, cast

__all__ = ["RateWindow", "bar_class_for", "clock_time", "format_bytes", "set_bar_style", "set_total",
           "short_name"]

NAME_WIDTH = 20
#: Terminal columns left free at the end of each bar line (see bar_class_for).
_MARGIN = 3
#: A widget's bar styles (ipywidgets): "" is the normal colour.
DANGER, SUCCESS, NORMAL = "danger", "success", ""
# tqdm puts ", " before a postfix: "total: 3/8 files, 1 failed, 1.2 MiB, 3.4 MiB/s, ETA 0:02 |███   | 00:01"
OVERALL_FORMAT = "{desc}: {n_fmt}/{total_fmt} files{postfix} |{bar}| {elapsed}"
OVERALL_FORMAT_UNKNOWN = "{desc}: {n_fmt} files{postfix} {elapsed}"
# A file's bar: "name  42%|████      | 1.2 MiB/3.0 MiB, 2.1 MiB/s" ({stats}: see bar_class_for)
FILE_FORMAT = "{desc}{percentage:4.0f}%|{bar}| {stats:<28}"
FILE_FORMAT_UNKNOWN = "{desc} {stats:<28}"


class RateWindow:
    """Bytes per second over the last ``window`` seconds, from samples taken at redraws.

    A rate over a window settles where an average since the start lags and one over the last
    interval jumps: a redraw (not a chunk) adds one sample, so it costs nothing per chunk.
    """

    __slots__ = ("_samples", "_window")

    def __init__(self, window: float) -> None:
        self._window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, total_bytes: int) -> None:
        """Record ``total_bytes`` downloaded so far at ``now``; forget what fell out of the window."""
        samples = self._samples
        samples.append((now, total_bytes))
        # Keep one sample at or before the window's start, so the span covers the window.
        while len(samples) > 2 and samples[1][0] <= now - self._window:
            samples.popleft()

    def rate(self, min_span: float) -> float | None:
        """Bytes per second over the window; None until ``min_span`` seconds are covered."""
        if len(self._samples) < 2:
            return None
        (first_time, first_bytes), (last_time, last_bytes) = self._samples[0], self._samples[-1]
        span = last_time - first_time
        if span < min_span or span <= 0:
            return None
        return (last_bytes - first_bytes) / span


def set_total(bar: Any, total: int) -> None:
    """Give ``bar`` a new total without restarting it, in a widget too.

    tqdm's widget takes its maximum when it is made and only ``reset()`` (which restarts the
    clock and the count) changes it; the overall bar keeps both, so its widget is told here.
    """
    bar.total = total
    progress = _widget_bar(bar)
    if progress is not None:
        progress.max = total
        if progress.bar_style == "info":  # tqdm's look for "no total yet"
            progress.bar_style = NORMAL


def set_bar_style(bar: Any, style: str) -> None:
    """Colour a widget's bar (``"danger"``, ``"success"``, ``""``); text bars have no colour to set.

    A bar closed as ``"danger"`` stays on the page (tqdm hides only bars without an error).
    """
    progress = _widget_bar(bar)
    if progress is not None and progress.bar_style != style:
        progress.bar_style = style


def _widget_bar(bar: Any) -> Any:
    """The ``IntProgress``/``FloatProgress`` of a tqdm notebook bar; None for a text bar."""
    container = getattr(bar, "container", None)
    children = getattr(container, "children", None)
    if children is None or len(children) < 2:
        return None
    return children[1]


def bar_class_for(base: type[Any]) -> type[Any]:
    """A subclass of ``base`` (tqdm itself is left alone) for the display's bars.

    It starts no monitor thread; offers ``{stats}`` to a ``bar_format`` (the postfix as set,
    without the ", " tqdm puts before ``{postfix}``); and leaves the last columns of a
    terminal line free: the terminal echoes Ctrl-C as ``^C`` at the cursor, and on a
    full-width line that echo would wrap and push every bar one line down for good.
    """
    namespace: dict[str, Any] = {"monitor_interval": 0}
    parent = getattr(base, "format_dict", None)
    if isinstance(parent, property) and parent.fget is not None:
        read = parent.fget

        def format_dict(self: Any) -> Any:
            values = read(self)
            if not isinstance(values, dict):
                return values
            ncols = values.get("ncols")
            if isinstance(ncols, int) and ncols > 2 * _MARGIN:
                ncols -= _MARGIN
            return {**values, "ncols": ncols, "stats": values.get("postfix") or ""}

        namespace["format_dict"] = property(format_dict)
    return cast("type[Any]", type(base.__name__, (base,), namespace))


def short_name(name: str, width: int = NAME_WIDTH) -> str:
    """``name`` cut in the middle to ``width`` characters and padded, so that bars line up."""
    if len(name) > width:
        keep = width - 1
        name = name[: keep // 2] + "…" + name[len(name) - (keep - keep // 2):]
    return name.ljust(width)


def clock_time(seconds: float) -> str:
    """``seconds`` as ``M:SS`` or ``H:MM:SS``."""
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def format_bytes(count: float) -> str:
    """``count`` bytes for people, 1024-based: ``512 B``, ``1.5 KiB``, ``20.0 MiB``.

    The one unit system of the bars and the command's summary: totals, files and speeds.
    """
    if abs(count) < 1023.5:  # what would print as "1024 B" is "1.0 KiB"
        return f"{count:.0f} B"
    value = count / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if abs(value) < 1023.95:  # likewise "1024.0 KiB" is "1.0 MiB"
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
