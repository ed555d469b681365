"""What the command prints: notices while it runs, then a summary or JSON records."""

from __future__ import annotations

import functools
import itertools
import json
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pydownloads.domain.models import DownloadInfo, DownloadStatus
from pydownloads.domain.redact import redact_url
from pydownloads.events.types import DownloadRetrying
from pydownloads.progress import ProgressDisplay, format_bytes
from pydownloads.results import SKIPPED, DownloadResults, bytes_this_run, file_size, outcome_of, settled_earlier

#: Carriage return and ANSI "erase the whole line".
_WIPE_LINE = "\r\x1b[2K"
#: At most this many cancelled downloads are listed one by one after an interruption.
_LISTED = 10
#: The ``"outcome"`` of a download of the state file, not in the input, that this run finished
#: (whether it resumed shows in its ``"resumed_from"``).
CARRIED_OVER = "carried over"


@dataclass
class Tally:
    """What the summary and the exit status count, gathered in one pass over a run's downloads."""

    statuses: Counter[DownloadStatus] = field(default_factory=Counter)
    earlier: Counter[DownloadStatus] = field(default_factory=Counter)
    unchanged: int = 0
    bytes: int = 0
    carried: Counter[DownloadStatus] = field(default_factory=Counter)

    @property
    def carried_over(self) -> int:
        return sum(self.carried.values())

    @property
    def all_completed(self) -> bool:
        """True when every download, carried over ones too, completed."""
        return set(self.statuses) | set(self.carried) <= {DownloadStatus.COMPLETED}


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How a run ended: every download in input order, and how long it took.

    ``downloads`` and ``carried_over`` are lists, or (with a state file) views that read the
    downloads back from it each time they are iterated: a million downloads are never held.
    With a state file, some downloads may have been settled by an earlier run (``earlier``):
    completed ones were skipped, failed ones kept their failure.  ``carried_over`` are the
    downloads an earlier run left unfinished in the state file, not in this input, that this
    run finished too.
    """

    downloads: Iterable[DownloadInfo]
    elapsed: float
    interrupted: bool = False
    stopped_at_once: bool = False
    started_at: float | None = None
    state_file: Path | None = None
    carried_over: Iterable[DownloadInfo] = ()
    #: The per-host connection cap, and per host (``scheme://host:port``) how many downloads waited for it.
    host_cap: int | None = None
    host_waits: Mapping[str, int] = field(default_factory=dict)

    @property
    def results(self) -> DownloadResults:
        """The downloads as the library's results type (``pydownloads.download`` returns the same)."""
        return DownloadResults.of(self.downloads, started_at=self.started_at)

    @property
    def touched(self) -> Iterator[DownloadInfo]:
        """Every download of the run: the input's in order, then those carried over."""
        return itertools.chain(self.downloads, self.carried_over)

    def outcomes(self) -> Iterator[tuple[DownloadInfo, str]]:
        """Each download of :attr:`touched` with how it ended this time (``"outcome"``)."""
        for info in self.downloads:
            yield info, outcome_of(info, started_at=self.started_at)
        for info in self.carried_over:
            yield info, CARRIED_OVER

    @functools.cached_property
    def tally(self) -> Tally:
        """The counts of the run (one pass over its downloads, then kept)."""
        tally = Tally()
        for info in self.downloads:
            tally.statuses[info.status] += 1
            if self.earlier(info):
                tally.earlier[info.status] += 1
            elif info.status is DownloadStatus.COMPLETED and info.unchanged:
                tally.unchanged += 1
            tally.bytes += bytes_this_run(info, started_at=self.started_at)
        for info in self.carried_over:
            tally.carried[info.status] += 1
        return tally

    def count(self, status: DownloadStatus) -> int:
        return self.tally.statuses[status]

    def earlier(self, info: DownloadInfo) -> bool:
        """True if ``info`` was settled by an earlier run (skipped by this one)."""
        return settled_earlier(info, started_at=self.started_at)

    def count_earlier(self, status: DownloadStatus) -> int:
        return self.tally.earlier[status]

    def count_unchanged(self) -> int:
        """Downloads this run completed without a transfer (not modified, or kept as they were)."""
        return self.tally.unchanged

    @property
    def bytes(self) -> int:
        """Bytes this run transferred for its input: not those of a download it skipped, nor
        an earlier run's part of one it resumed (the carried over are counted on their line)."""
        return self.tally.bytes


class Console:
    """Human output on standard error; thread-safe, and polite to progress bars.

    While a :class:`ProgressDisplay` is attached, lines go above the bars through it.
    """

    def __init__(self, stdout: TextIO, stderr: TextIO, *, quiet: bool = False) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.quiet = quiet
        self.display: ProgressDisplay | None = None
        self._lock = threading.Lock()

    def say(self, message: str) -> None:
        """Print ``message`` unless ``--quiet``."""
        if not self.quiet:
            self._print(message)

    def error(self, message: str) -> None:
        """Print ``message`` always."""
        self._print(message)

    def interrupted(self, message: str) -> None:
        """Print ``message`` always, first wiping the line where the terminal echoed ``^C``."""
        self._print(_WIPE_LINE + message if self.stderr.isatty() else message)

    def on_retrying(self, event: DownloadRetrying) -> None:
        """Event handler: one line per retry, as it is scheduled, and per restart from zero
        (no new attempt, no wait: the reason says what happened)."""
        if event.restart:
            self.say(f"{event.url}: {event.reason}")
            return
        self.say(f"retrying {event.url} in {event.delay:.1f} s ({event.reason}; attempt {event.attempt})")

    def _print(self, message: str) -> None:
        display = self.display
        if display is not None:
            display.write(message)
            return
        with self._lock:
            self.stderr.write(message + "\n")
            self.stderr.flush()


def report(outcome: Outcome, console: Console, *, as_json: bool) -> None:
    """The end of a run: JSON records on stdout, or a summary (only the failures with --quiet)."""
    if as_json:
        for info, how in outcome.outcomes():
            console.stdout.write(json.dumps(record(info, how)) + "\n")
        console.stdout.flush()
    elif console.quiet:
        failed = outcome.count(DownloadStatus.FAILED) + outcome.tally.carried[DownloadStatus.FAILED]
        for info in outcome.touched if failed else ():
            if info.status is DownloadStatus.FAILED:
                console.error(failure_line(info))
    else:
        for line in summary_lines(outcome):
            console.say(line)
    if as_json:
        for line in cap_lines(outcome):
            console.say(line)
    if outcome.interrupted:
        for line in interrupted_lines(outcome):
            console.error(line)


def failure_line(info: DownloadInfo) -> str:
    """``FAILED url: reason (ErrorType, N attempts)``."""
    attempts = f"{info.attempts} attempt" + ("" if info.attempts == 1 else "s")
    url = redact_url(info.url)
    # The URL leads the line already.
    reason = (info.error or "").removeprefix(f"{url}: ").replace(f" from {url}", "")
    return f"FAILED {url}: {reason} ({info.error_type}, {attempts})"


def summary_lines(outcome: Outcome) -> list[str]:
    """The closing summary: counts, bytes, time and speed, then each failure with its reason.

    ``12 completed (3 skipped: already done; 2 unchanged), 1 failed (1 in an earlier run:
    --retry-failed tries again), 0 cancelled: ...``
    """
    speed = outcome.bytes / outcome.elapsed if outcome.elapsed > 0 else 0.0
    skipped = outcome.count_earlier(DownloadStatus.COMPLETED)
    unchanged = outcome.count_unchanged()
    kept = outcome.count_earlier(DownloadStatus.FAILED)
    notes = "; ".join(([f"{skipped} skipped: already done"] if skipped else [])
                      + ([f"{unchanged} unchanged"] if unchanged else []))
    lines = [
        f"{outcome.count(DownloadStatus.COMPLETED)} completed"
        + (f" ({notes})" if notes else "")
        + f", {outcome.count(DownloadStatus.FAILED)} failed"
        + (f" ({kept} in an earlier run: --retry-failed tries again)" if kept else "")
        + f", {outcome.count(DownloadStatus.CANCELLED)} cancelled: {format_bytes(outcome.bytes)} "
        f"in {outcome.elapsed:.1f} s ({format_bytes(speed)}/s)"
    ]
    if outcome.tally.carried_over:
        lines.append(carried_over_line(outcome))
    lines += cap_lines(outcome)
    if outcome.count(DownloadStatus.FAILED) or outcome.tally.carried[DownloadStatus.FAILED]:
        lines += [failure_line(info) for info in outcome.touched if info.status is DownloadStatus.FAILED]
    return lines


def cap_lines(outcome: Outcome) -> list[str]:
    """``12 downloads waited for a connection to example.com (--max-per-host 8)``, per host."""
    return [f"{count} download{'' if count == 1 else 's'} waited for a connection to {_shown(host)} "
            f"(--max-per-host {outcome.host_cap})" for host, count in sorted(outcome.host_waits.items())]


def _shown(host: str) -> str:
    """``scheme://host:port`` as ``host``, its port kept unless the scheme's default."""
    scheme, _, rest = host.partition("://")
    return rest.removesuffix(":443" if scheme == "https" else ":80")


def carried_over_line(outcome: Outcome) -> str:
    """What this run finished of the work an earlier run left in the state file."""
    counts = outcome.tally.carried
    done = ", ".join(f"{counts[status]} {status.value}" for status in DownloadStatus if counts[status])
    return (f"Also finished {outcome.tally.carried_over} download(s) an earlier run left unfinished in "
            f"{outcome.state_file}: {done}")


def interrupted_lines(outcome: Outcome) -> list[str]:
    """What an interruption left undone, and how to carry on."""
    left = (info for info in outcome.downloads if not info.status.is_final or info.status is DownloadStatus.CANCELLED)
    listed = list(itertools.islice(left, _LISTED))
    if not listed:
        return ["Interrupted, but every download had already finished."]
    more = sum(1 for _ in left)
    lines = [f"Interrupted: {len(listed) + more} download(s) did not finish:"]
    lines += [f"  {redact_url(info.url)}" for info in listed]
    if more:
        lines.append(f"  ... and {more} more")
    if outcome.state_file is not None:
        lines.append(f"Run the same command again to continue (the state is kept in {outcome.state_file}).")
    else:
        lines.append("Run the same command again to download them (partial files resume).")
    return lines


def json_record(info: DownloadInfo, how: str | None = None) -> str:
    """One line of ``--json`` output (see :func:`record`)."""
    return json.dumps(record(info, how))


def record(info: DownloadInfo, how: str | None = None) -> dict[str, object]:
    """A download as the JSON output shows it.

    ``how`` is its ``"outcome"`` (default: from ``info`` alone, never ``"skipped"``).
    ``"bytes"`` and ``"attempts"`` are this run's (0 for a skipped download); ``"size"`` is
    the completed file's size; ``"resumed_from"`` the bytes an earlier run had left.
    """
    skipped = how == SKIPPED
    return {
        "url": redact_url(info.url),
        "status": info.status.value,
        "outcome": outcome_of(info, started_at=None) if how is None else how,
        "path": str(info.path) if info.status is DownloadStatus.COMPLETED and info.path is not None else None,
        "bytes": 0 if skipped else info.bytes_this_run,
        "size": file_size(info),
        "resumed_from": 0 if skipped else info.resumed_from,
        "total_bytes": info.total_bytes,
        "attempts": 0 if skipped else info.attempts,
        "unchanged": info.unchanged,
        "error": info.error,
        "error_type": info.error_type,
        "elapsed": None if info.elapsed is None else round(info.elapsed, 3),
    }
