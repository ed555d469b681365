"""What one download knows between its attempts, and the decisions taken on it.

:class:`DownloadState` is the one owner of a download's progress: how many attempts it has
made, what is known written of its part file, which source the next attempt asks, how many
connections it may open, which file it has claimed.  The worker and the transfer tell it what
happened (``restart_from_zero()``, ``switch_source(error)``, ``fewer_lanes(n)``...) and read
the outcome; nothing else writes its fields.  It does no I/O.
"""

from __future__ import annotations

from pathlib import Path

from pydownloads.domain.errors import DownloadError, HTTPStatusError, RedirectError, TLSError
from pydownloads.downloads.retry import AttemptCounter
from pydownloads.infrastructure.sidecar import ResumeState

#: Lane cap of a download that asked for no particular number of segments: no cap.
UNCAPPED = 1 << 16


class DownloadState:
    """One download's progress and decisions between attempts.

    :param sources: the URL and its mirrors, in the order they are tried.
    :param segments: the most connections the download may use (None: no own limit).

    One thread at a time: the thread running the download (its segment lanes never touch it).
    """

    __slots__ = (
        "_attempts", "_claimed_path", "_dead", "_lane_cap", "_resume", "_saved_looked_for", "_source",
        "_sources", "_started_at", "_unchanged", "_verify_failures",
    )

    def __init__(self, sources: tuple[str, ...], *, segments: int | None = None) -> None:
        self._sources = sources
        self._attempts = AttemptCounter()
        self._started_at: float | None = None
        self._resume: ResumeState | None = None
        self._claimed_path: Path | None = None
        self._saved_looked_for = False
        self._verify_failures = 0
        self._lane_cap = segments or UNCAPPED
        self._unchanged = False
        self._source = 0  # index in ``sources`` of the URL the next attempt fetches from
        self._dead: set[int] = set()  # sources that failed for good: not asked again

    # -- attempts and time -----------------------------------------------------------------

    @property
    def attempts(self) -> AttemptCounter:
        """The attempt counter, shared with :meth:`RetryHandler.execute_with_retry`, which
        counts each whole attempt in it."""
        return self._attempts

    @property
    def attempt(self) -> int:
        """Attempts begun so far, whole attempts and transport retries alike (1 in the first)."""
        return self._attempts.count

    def retry_in_transport(self) -> int:
        """urllib3 retries a request of the download: that is an attempt too; returns its number."""
        return self._attempts.begin()

    def transport_retries_left(self, max_retries: int) -> int:
        """Transport retries the download's next request may make out of ``max_retries``
        for the whole download: none when it has mirrors (the next attempt goes to
        another one instead of insisting here)."""
        if len(self._sources) > 1:
            return 0
        return max(0, max_retries + 1 - self._attempts.count)

    @property
    def started_at(self) -> float | None:
        """``time.monotonic()`` when the first attempt began, once :meth:`start_clock` ran."""
        return self._started_at

    def start_clock(self, now: float) -> None:
        """The download begins at ``now`` (monotonic), unless it began already."""
        if self._started_at is None:
            self._started_at = now

    # -- sources -----------------------------------------------------------------------------

    @property
    def source(self) -> str:
        """The URL the next attempt fetches from."""
        return self._sources[self._source]

    def switch_source(self, error: DownloadError) -> str | None:
        """The current source failed with ``error``: returns the source the next attempt
        asks instead (the next one still usable, round the list), or None when there is no
        other (no mirrors, or every one failed for good).  A source that failed for good (a
        4xx other than 408 and 429, a bad redirect, TLS) is not asked again."""
        if len(self._sources) < 2:
            return None
        if _failed_for_good(error):
            self._dead.add(self._source)
        alive = [index for index in range(len(self._sources)) if index not in self._dead]
        if not alive:
            return None
        self._source = next((index for index in alive if index > self._source), alive[0])
        return self._sources[self._source]

    def other_sources(self) -> tuple[str, ...]:
        """Usable sources besides the current one, in order."""
        current = self.source
        return tuple(source for index, source in enumerate(self._sources)
                     if source != current and index not in self._dead)

    # -- the part file -----------------------------------------------------------------------

    @property
    def resume(self) -> ResumeState | None:
        """What is known written of the part file, or None (the next bytes start from zero)."""
        return self._resume

    def resume_from(self, state: ResumeState) -> None:
        """From now on ``state`` says what is written (a previous run's, or a new download's)."""
        self._resume = state

    def resume_on(self, source: str, validators: tuple[str | None, str | None]) -> None:
        """The bytes kept go on from ``source`` (another mirror of the same size), whose
        ``(etag, last_modified)`` validate the ranges from now on."""
        state = self._resume
        if state is not None:
            state.etag, state.last_modified = validators
            state.source = source

    def restart_from_zero(self) -> Path | None:
        """What is known of the part file is dropped: the next bytes start from zero.

        Returns the claimed path, whose state file (and part file, if the caller discards
        the bytes) the caller removes; None when no file was claimed yet.
        """
        self._resume = None
        return self._claimed_path

    def finish(self) -> ResumeState | None:
        """The file is complete: returns the resume state it had (its state file can go)."""
        state, self._resume = self._resume, None
        return state

    def look_for_saved_state(self) -> bool:
        """True the first time only: a previous run's part file is looked for once per download."""
        first, self._saved_looked_for = not self._saved_looked_for, True
        return first

    @property
    def claimed_path(self) -> Path | None:
        """The final path this download owns in its worker's PathClaims, if any yet."""
        return self._claimed_path

    def claimed(self, path: Path) -> None:
        """``path`` is now this download's (the caller took it in its PathClaims)."""
        self._claimed_path = path

    # -- outcomes and lanes ------------------------------------------------------------------

    def note_verify_failure(self) -> bool:
        """The bytes failed their check (size or checksum); True when that is final: the
        second time (once may be damage in flight, and is retried)."""
        self._verify_failures += 1
        return self._verify_failures > 1

    @property
    def unchanged(self) -> bool:
        """Completed without a transfer: the file was there and had not changed."""
        return self._unchanged

    def mark_unchanged(self) -> None:
        """The download completes with the file as it is."""
        self._unchanged = True

    @property
    def lane_cap(self) -> int:
        """Most connections the next attempt may use."""
        return self._lane_cap

    def fewer_lanes(self, lanes: int) -> None:
        """A segment failed while ``lanes`` connections ran: half as many next time."""
        self._lane_cap = max(1, lanes // 2)

    def one_lane(self) -> None:
        """The server does not serve ranges after all: one connection from now on."""
        self._lane_cap = 1


def _failed_for_good(error: DownloadError) -> bool:
    """True when asking the same source again cannot help."""
    if isinstance(error, HTTPStatusError):
        return 400 <= error.status < 500 and error.status not in (408, 429)
    return isinstance(error, (RedirectError, TLSError))
