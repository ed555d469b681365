"""Which bytes of a file are still to fetch, and which connection fetches them.

Pure planning, apart from the threads that act on it: :class:`SegmentTable` holds the
segments ``[pos, end)`` still to fetch and decides which one an idle connection takes, when
a running one is worth splitting (work stealing), how the work is cut when more connections
join, and what a server that ignores ranges leaves to do.  It takes no lock and reads no
clock (callers pass ``now``); :class:`~pydownloads.downloads.segments.RangeEngine` holds one
lock around it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: A response younger than this (seconds) has no meaningful speed yet.
YOUNG = 0.1
#: Splitting a running range costs a new connection and the bytes already in flight on the
#: old one, so it is only done when the running lane would need longer than this.
STEAL_MIN_SECONDS = 0.5
#: ... and never leaves pieces smaller than this (nor than one read).
STEAL_MIN_BYTES = 1 << 20
#: A first lane with at least this many bytes waiting unread on its connection at two
#: looks in a row (and more than arrive in a first window) is behind it: this machine, not
#: the link, sets its speed, and more lanes would only share the same cores (a busy
#: machine's 1 GiB took 3.6-4.0 s over 16 ranges against 2.5 s over one connection).
BEHIND = 256 << 10
#: A look over a window in which the lane's thread waited for a core this share of the
#: time or more says more about the machine than about the link: it adds lanes only if what
#: arrived is plainly slow even over the time the lane could run, else it decides nothing.
STARVED = 0.25
#: Under this share of ``fast_lane`` a lane is plainly slow and lanes join on one look;
#: between it and ``fast_lane`` a second look must agree (a busy moment is not a slow link).
PLAINLY_SLOW = 0.25


@dataclass(slots=True)
class Segment:
    """Bytes ``[pos, end)`` still to fetch of a range that began at ``start``.

    ``began``/``began_at`` note when and where the current response started, for its speed.
    ``active``: a connection works on it.
    """

    start: int
    pos: int
    end: int
    active: bool = False
    began: float = 0.0
    began_at: int = 0

    @property
    def remaining(self) -> int:
        return max(0, self.end - self.pos)

    def seconds_left(self, now: float) -> float:
        """How long the current response needs for the rest, at its speed so far: zero
        while too young to tell (not split yet), infinite if nothing came since."""
        elapsed, done = now - self.began, self.pos - self.began_at
        if elapsed < YOUNG:
            return 0.0
        if done <= 0:
            return float("inf")
        return self.remaining / (done / elapsed)


class SegmentTable:
    """The segments of one file of ``total`` bytes, ``done`` of which are fetched already.

    Not thread-safe: one lock around every call (each is O(segments), and a lane's
    :meth:`advance` is O(1)).  Invariants (tested): the ranges still to fetch never overlap,
    together with :meth:`done_ranges` they cover ``[0, total)`` exactly, a segment's
    position never moves back nor past its end, and a steal never leaves a piece smaller
    than ``max(STEAL_MIN_BYTES, chunk_size)``.  Done and still-to-fetch ranges overlap only
    after :meth:`take_over`, whose first response writes again what other lanes wrote.

    :param chunk_size: the most bytes one read asks for; no split leaves less than this.
    """

    def __init__(self, done: Iterable[tuple[int, int]], total: int, *, chunk_size: int) -> None:
        self.total = total
        self._done = merge(done)
        self.segments = [Segment(a, a, b) for a, b in hole_ranges(self._done, total)]
        self._smallest = max(STEAL_MIN_BYTES, chunk_size)
        self._first: Segment | None = None
        self._first_to_end = False
        #: Set once a ranged request got the whole body: no more splits.
        self.ranges_unsupported = False

    # -- taking work -----------------------------------------------------------------------

    def claim_first(self, now: float, *, to_end: bool) -> Segment:
        """Give the first missing segment to the response already open for it.

        :param to_end: that response's body runs to the end of the file, so it can take
            over every later byte if the server turns out to ignore ranges.
        """
        segment = self._first = self.segments[0]
        self._first_to_end = to_end
        self._begin(segment, now)
        return segment

    def next_segment(self, now: float) -> Segment | None:
        """A segment nobody works on, else the second half of the running one that would
        take longest (work stealing), or None when no split is worth it."""
        for segment in self.segments:
            if not segment.active and segment.remaining:
                self._begin(segment, now)  # young until its bytes flow
                return segment
        if self.ranges_unsupported:
            return None
        candidates = [s for s in self.segments if s.remaining >= 2 * self._smallest]
        victim = max(candidates, key=lambda s: (s.seconds_left(now), s.remaining), default=None)
        if victim is None or victim.seconds_left(now) < STEAL_MIN_SECONDS:
            return None
        return self.split(victim, victim.pos + victim.remaining // 2, now)

    def may_split_later(self) -> bool:
        """True while a running segment is big enough that a split may become worth it."""
        return not self.ranges_unsupported and any(
            s.active and s.remaining >= 2 * self._smallest for s in self.segments)

    def started(self, segment: Segment, now: float) -> None:
        """A new response for ``segment`` opened: its speed is measured from here."""
        segment.began, segment.began_at = now, segment.pos

    def release(self, segment: Segment) -> None:
        """No connection works on ``segment`` any more (what is left may be taken again)."""
        segment.active = False

    def advance(self, segment: Segment, pos: int) -> int:
        """Record that ``segment`` is written up to ``pos``; returns its end, which a split
        may have moved closer (the caller stops there).

        A position past the end (a read in flight while the tail was cut off) counts only
        up to the end: the tail's new owner writes those bytes again.
        """
        end = segment.end
        if pos > end:
            pos = end
        if pos > segment.pos:
            segment.pos = pos
        return end

    # -- cutting work ----------------------------------------------------------------------

    def split(self, segment: Segment, at: int, now: float) -> Segment:
        """Give ``[at, end)`` of ``segment`` to a new active segment, and return it."""
        stolen = Segment(at, at, segment.end, active=True, began=now, began_at=at)
        segment.end = at
        self.segments.append(stolen)
        return stolen

    def presplit(self, lanes: int, min_segment_size: int, now: float) -> None:
        """Cut the work into up to ``lanes`` near-equal ranges, none much smaller than
        ``min_segment_size``, so that no lane waits for a split and none is cut short
        later.  A running segment gives up its tail; the new pieces wait to be taken."""
        missing = self.missing()
        pieces = min(lanes, max(1, round(missing / min_segment_size)))
        size = -(-missing // pieces)
        for segment in list(self.segments):
            while segment.remaining > size and len(self.segments) < pieces:
                self.split(segment, segment.end - size, now).active = False

    def take_over(self, segment: Segment) -> bool:
        """A ranged request for ``segment`` got the whole body (a 200): ranges are ignored,
        or the file changed.  Returns True when the first response still streams a body to
        the end of the file: it then takes over every byte after its position (one version
        throughout) and every other segment ends where it is; False when the attempt must
        fail (and the download restart cleanly)."""
        self.ranges_unsupported = True
        first = self._first
        if first is None or not self._first_to_end or not first.active or first is segment:
            return False
        first.end = self.total
        for other in self.segments:
            if other is not first:
                other.end = other.pos
        segment.active = False
        return True

    # -- what is done ----------------------------------------------------------------------

    def fetched(self) -> int:
        """Bytes written since the table was made."""
        return sum(s.pos - s.start for s in self.segments)

    def missing(self) -> int:
        """Bytes still to fetch."""
        return sum(s.remaining for s in self.segments)

    def remaining_ranges(self) -> list[tuple[int, int]]:
        """The ``[pos, end)`` ranges still to fetch, merged."""
        return merge((s.pos, s.end) for s in self.segments)

    def done_ranges(self) -> list[tuple[int, int]]:
        """The byte ranges written so far (before the table, and since), merged."""
        return merge([*self._done, *((s.start, s.pos) for s in self.segments)])

    def _begin(self, segment: Segment, now: float) -> None:
        segment.active = True
        segment.began, segment.began_at = now, segment.pos


class LaneGauge:
    """Decides when a file's first connection should get company, from looks at the bytes
    its lane fetched, those waiting unread on the connection, and how long the lane's
    thread waited for a core; pure (the caller passes clock and counts).

    A window opens at the first look (the response is open, its bytes on their way) and
    after each look that finds the connection fast or doubts; the speed is what *arrived* in it
    (fetched, plus the change in what waits), which a lane starved of CPU does not lower.
    A connection as fast as ``fast_lane`` runs alone, and so does one whose lane is behind
    it (more bytes waiting at two looks in a row than arrive in ``window``).  In a window in
    which the lane waited for a core (``STARVED``), the speed is taken over the time it could
    run, and only a plainly slow one counts.
    A slower connection gets lanes: at once when plainly slow, else when the next look
    agrees.  Looks come every ``window`` seconds until the first fast one, then every
    ``recheck``.

    :param fast_lane: bytes/s at which one connection runs alone.
    """

    __slots__ = ("_doubt", "_fast", "_first", "_last", "_open", "recheck", "window")

    def __init__(self, fast_lane: float, *, window: float, recheck: float) -> None:
        self._fast, self._first, self.window, self.recheck = fast_lane, window, window, recheck
        self._open: tuple[float, int, float] | None = None  # (when, arrived, queued) the window opened
        self._last = (0.0, 0)  # (when, waiting) at the last look
        self._doubt = False

    def slow(self, now: float, fetched: int, waiting: int | None, queued: float | None) -> bool:
        """One look: True when lanes should join now.

        :param fetched: bytes the lane has read so far.
        :param waiting: bytes waiting unread on its connection now (None: unknown).
        :param queued: seconds its thread has waited for a core so far (None: unknown).
        """
        waiting, queued = waiting or 0, queued or 0.0
        opened, (last, waited) = self._open, self._last
        if opened is not None and now - last < self.window * 0.95:  # a timed wait may end a hair early
            return False
        self._last = (now, waiting)
        if opened is None:
            self._open = (now, fetched + waiting, queued)
            return False
        elapsed = now - opened[0]
        rate = (fetched + waiting - opened[1]) / elapsed
        if rate >= self._fast:
            self._open, self._doubt, self.window = (now, fetched + waiting, queued), False, self.recheck
            return False
        self.window = self._first  # whatever comes next shows soon
        # Behind: more waiting unread, at this look and the last, than arrives in a short window.
        if min(waiting, waited) >= max(BEHIND, rate * self._first):
            return False
        starved = queued - opened[2]
        if starved >= STARVED * elapsed:  # measured the machine: only a link plainly slow over
            ran = max(elapsed - starved, 1e-3)  # the time the lane could run says "lanes"
            return (fetched + waiting - opened[1]) / ran < self._fast * PLAINLY_SLOW
        if rate < self._fast * PLAINLY_SLOW or self._doubt:
            return True
        self._open, self._doubt = (now, fetched + waiting, queued), True  # the next look measures afresh
        return False


def merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping, non-empty ``[start, end)`` ranges covering ``spans``."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def hole_ranges(done: Iterable[tuple[int, int]], total: int) -> list[tuple[int, int]]:
    """The ``[start, end)`` ranges of ``[0, total)`` not covered by ``done``."""
    holes, cursor = [], 0
    for start, end in merge(done):
        if start > cursor:
            holes.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < total:
        holes.append((cursor, total))
    return holes
