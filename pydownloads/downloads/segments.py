"""Byte ranges of one file fetched over one or more connections, written in place.

The file is a set of segments ``[pos, end)``.  Each lane (a thread with its own pooled
connection) takes a segment nobody works on, or splits the largest one still running
(work stealing), so a slow connection never becomes the tail of the download.  Every
ranged response must be a 206 whose ``Content-Range`` is exactly what was asked, under
``If-Range``, so bytes of two versions of a file are never spliced.  Done ranges are saved
beside the part file as the lanes go, so a failure or a crash keeps what was fetched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from pydownloads.domain.checksum import Hasher
from pydownloads.domain.errors import DownloadCancelledError, DownloadError, ResumeMismatchError, TransferError
from pydownloads.downloads.pace import Pace
from pydownloads.downloads.settings import (
    FAST_LANE,
    LANE_PROBE,
    LANE_RECHECK,
    MANY_LANES,
    MANY_LANES_READ,
    TransferSettings,
)
from pydownloads.infrastructure import sidecar, transport
from pydownloads.infrastructure.files import PartFile
from pydownloads.infrastructure.limits import HostLimiter, TokenBucket
from pydownloads.infrastructure.redact import redact_url
from pydownloads.infrastructure.sidecar import ResumeState

logger = logging.getLogger(__name__)

#: Called with the number of body bytes just written (counts them for tracker and events).
ByteCounter = Callable[[int], None]


@dataclass
class Segment:
    """Bytes ``[pos, end)`` still to fetch of a range that began at ``start``.

    ``began``/``began_at`` note when and where the current response started, for its speed.
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
        if elapsed < _YOUNG:
            return 0.0
        if done <= 0:
            return float("inf")
        return self.remaining / (done / elapsed)


#: A response younger than this has no meaningful speed yet.
_YOUNG = 0.1
#: Splitting a running range costs a new connection and the bytes already in flight on the
#: old one, so it is only done when the running lane would need longer than this.
STEAL_MIN_SECONDS = 0.5
#: ... and never leaves pieces smaller than this.
STEAL_MIN_BYTES = 1 << 20


@dataclass
class FirstResponse:
    """A response already open that serves the first missing segment.

    ``to_end``: its body runs to the end of the file (a 200, or an open-ended range), so
    it can take over every later byte if the server turns out to ignore ranges.
    """

    reader: transport.BodyReader
    response: requests.Response
    to_end: bool = True


class RangeEngine:
    """Fetches the holes of ``state`` into ``part`` with up to ``lanes`` connections.

    Thread-safe by design: the segment table is guarded by one lock held for O(1) work per
    chunk; the first error stops every lane and is raised from :meth:`run`.
    """

    def __init__(
        self,
        *,
        session: requests.Session,
        url: str,
        headers: dict[str, str],
        settings: TransferSettings,
        part: PartFile,
        state: ResumeState,
        lanes: int,
        count_bytes: ByteCounter,
        buckets: tuple[TokenBucket, ...] = (),
        limiter: HostLimiter | None = None,
        host: str = "",
        hasher: Hasher | None = None,
        deadline_at: float | None = None,
        mirrors: tuple[str, ...] = (),
    ) -> None:
        self._session, self._url, self._headers = session, url, headers
        self._settings, self._part, self._state = settings, part, state
        self._lanes, self._count, self._buckets = lanes, count_bytes, buckets
        self._limiter, self._host = limiter, host
        #: Fed by the first lane while it is the only one (its bytes then arrive in order
        #: from zero); None once other lanes start: the file is then hashed at the end.
        self.hasher = hasher
        self._deadline_at = deadline_at
        #: Where lanes fetch from: ``url`` (whose validators the state holds), then mirrors.
        self._sources = (url, *mirrors)
        self._lock = threading.Lock()
        self._saving = threading.Lock()
        self._failed = threading.Event()
        self._first_done = threading.Event()
        self._error: BaseException | None = None
        self._segments = [Segment(a, a, b) for a, b in hole_ranges(state.ranges, state.total)]
        self._open: set[requests.Response] = set()
        self._last_save = time.monotonic()
        self._first: Segment | None = None
        self._first_to_end = False
        self.ranges_unsupported = False

    # -- orchestration ---------------------------------------------------------------------

    def run(self, first: FirstResponse) -> None:
        """Fetch every missing byte; raise the first lane's error if any lane failed."""
        if not self._segments:
            return
        # The first response's segment is taken before any other lane can pick it.
        own = self._claim_first()
        self._first_to_end = first.to_end
        watcher = None
        if self._lanes > 1:
            watcher = threading.Thread(target=self._add_lanes_when_slow, name="pydownloads-lanes", daemon=True)
            watcher.start()
        try:
            self._lane(first, None, own, self._url)
        finally:
            self._first_done.set()
        if watcher is not None:
            watcher.join()
        missing = sum(s.remaining for s in self._segments)
        if self._error is not None or missing:
            self.save()  # what was fetched stays usable for the next attempt or run
        if self._error is not None:
            raise self._error
        if missing:  # every lane ended without an error but bytes are missing: never commit
            raise ResumeMismatchError(f"{missing} bytes of {redact_url(self._url)} were not fetched")

    def _add_lanes_when_slow(self) -> None:
        """Start the extra lanes once the first connection proves slower than FAST_LANE
        (after LANE_PROBE, then every LANE_RECHECK): a connection that copies as fast as
        the machine can (loopback, a LAN) runs alone, since more lanes would only cost
        memory and CPU.  Mirrors' lanes start at once: they add other hosts' bandwidth."""
        extra: list[threading.Thread] = []
        try:
            window = 0.0 if len(self._sources) > 1 else LANE_PROBE
            while True:
                done, since = self._done_bytes(), time.monotonic()
                if self._first_done.wait(window) or self._failed.is_set():
                    return  # the first lane took every byte, or the download failed
                rate = (self._done_bytes() - done) / max(time.monotonic() - since, 1e-9)
                if rate < FAST_LANE:
                    break
                window = LANE_RECHECK
            extra = self._start_lanes()
        except BaseException as error:
            self._fail(error)
        finally:
            for thread in extra:
                thread.join()

    def _start_lanes(self) -> list[threading.Thread]:
        """Cut what is left into near-equal ranges and start a lane for each but the first."""
        with self._lock:
            self.hasher = None  # bytes will no longer arrive in order
            self._presplit(self._lanes)
            missing = sum(s.remaining for s in self._segments)
            useful = max(len(self._segments), round(missing / self._settings.min_segment_size))
        extra: list[threading.Thread] = []
        for number in range(1, min(self._lanes, useful)):
            source = self._sources[number % len(self._sources)]
            host = transport.host_of(source)
            if self._limiter is not None and not self._limiter.acquire(
                    host, self._settings.cancel_event, wait=False):
                continue  # that host's connection budget is spent: one lane fewer
            thread = threading.Thread(target=self._lane, args=(None, host, None, source),
                                      name=f"pydownloads-seg{number}", daemon=True)
            thread.start()
            extra.append(thread)
        return extra

    def _done_bytes(self) -> int:
        with self._lock:
            return sum(s.pos - s.start for s in self._segments)

    def _lane(self, first: FirstResponse | None, slot: str | None, segment: Segment | None, source: str) -> None:
        """One connection's loop; ``slot`` is the host whose connection slot it holds."""
        try:
            if segment is None:
                segment = self._await_segment()
            buffer = None
            while segment is not None and not self._failed.is_set():
                if buffer is None:  # one buffer per lane, reused for every read of every segment
                    buffer = memoryview(bytearray(self._read_size()))
                self._fetch(segment, first, source, buffer)
                first = None
                segment = self._await_segment()
        except DownloadError as error:
            if source == self._url or isinstance(error, DownloadCancelledError):
                self._fail(error)
            else:  # a mirror lane gives up: its ranges go to the other lanes
                logger.info("mirror %s leaves %s: %s", redact_url(source), redact_url(self._url), error)
        except BaseException as error:
            self._fail(error)
        finally:
            if slot is not None and self._limiter is not None:
                self._limiter.release(slot)

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = error
        self._failed.set()
        self._abort_all()

    def _await_segment(self) -> Segment | None:
        """The next segment for an idle lane, waiting while a running one may yet prove
        slow enough to split; None once nothing is left to take."""
        while not self._failed.is_set():
            segment = self._next_segment()
            if segment is not None or not self._may_split_later():
                return segment
            if self._settings.cancel_event.is_set():
                raise DownloadCancelledError("cancelled", url=redact_url(self._url))
            self._failed.wait(_YOUNG / 2)
        return None

    def _may_split_later(self) -> bool:
        smallest = max(STEAL_MIN_BYTES, self._settings.chunk_size)
        with self._lock:
            return not self.ranges_unsupported and any(
                s.active and s.remaining >= 2 * smallest for s in self._segments)

    def _claim_first(self) -> Segment:
        with self._lock:
            segment = self._first = self._segments[0]
            segment.active = True
            segment.began, segment.began_at = time.monotonic(), segment.pos
            return segment

    def _next_segment(self) -> Segment | None:
        """A segment nobody works on, else the second half of the running one that would
        take longest (work stealing), or None when no split is worth it."""
        with self._lock:
            now = time.monotonic()
            for segment in self._segments:
                if not segment.active and segment.remaining:
                    segment.active = True
                    segment.began, segment.began_at = now, segment.pos  # young until its bytes flow
                    return segment
            if self.ranges_unsupported:
                return None
            smallest = max(STEAL_MIN_BYTES, self._settings.chunk_size)
            candidates = [s for s in self._segments if s.remaining >= 2 * smallest]
            victim = max(candidates, key=lambda s: (s.seconds_left(now), s.remaining), default=None)
            if victim is None or victim.seconds_left(now) < STEAL_MIN_SECONDS:
                return None
            return self._split(victim, victim.pos + victim.remaining // 2)

    def _split(self, segment: Segment, at: int) -> Segment:
        """Give ``[at, end)`` of ``segment`` to a new active segment (lock held)."""
        stolen = Segment(at, at, segment.end, active=True, began=time.monotonic(), began_at=at)
        segment.end = at
        self._segments.append(stolen)
        return stolen

    def _presplit(self, lanes: int) -> None:
        """Cut the work into up to ``lanes`` near-equal ranges, none much smaller than
        ``min_segment_size``, so that no lane waits for a split and none is cut short
        later (lock held by the caller).  A running segment gives up its tail."""
        missing = sum(s.remaining for s in self._segments)
        pieces = min(lanes, max(1, round(missing / self._settings.min_segment_size)))
        size = -(-missing // pieces)
        for segment in list(self._segments):
            while segment.remaining > size and len(self._segments) < pieces:
                self._split(segment, segment.end - size).active = False

    # -- one segment -----------------------------------------------------------------------

    def _read_size(self) -> int:
        """Bytes asked for per read: ``chunk_size``, capped when many lanes share the
        file (a buffer each), and never more than the file."""
        size = self._settings.chunk_size
        if self._lanes > MANY_LANES:
            size = min(size, MANY_LANES_READ)
        return max(1, min(size, self._state.total))

    def _fetch(self, segment: Segment, first: FirstResponse | None, source: str, buffer: memoryview) -> None:
        if first is not None:
            response, reader = first.response, first.reader
        else:
            opened = self._request(segment, source)
            if opened is None:
                return
            response, reader = opened
            with self._lock:
                segment.began, segment.began_at = time.monotonic(), segment.pos
        with self._lock:
            self._open.add(response)
        try:
            self._copy(segment, reader, buffer)
        finally:
            with self._lock:
                self._open.discard(response)
                segment.active = False
            transport.close(response)

    def _request(self, segment: Segment, source: str) -> tuple[requests.Response, transport.BodyReader] | None:
        """Open the ranged response for ``segment``; None if another lane took it over.

        From a mirror, ``If-Range`` cannot be used (its validators are its own): the exact
        Content-Range with the same total decides, and the checksum, if any, at the end.
        """
        last = segment.end - 1
        headers = {**self._headers, "Range": f"bytes={segment.pos}-{last}"}
        if self._state.validator and source == self._url:
            headers["If-Range"] = self._state.validator
        response = transport.send_get(self._session, source, headers=headers, timeout=self._settings.timeout)
        try:
            transport.check_status(response, source, ranged=True)
            if response.status_code != 206:
                transport.close(response)
                if source != self._url:
                    raise ResumeMismatchError(f"mirror {redact_url(source)} does not serve ranges")
                self._refuse_full_body(segment)
                return None
            got = transport.content_range(response)
            if got != (segment.pos, last, self._state.total):
                raise ResumeMismatchError(
                    f"asked {redact_url(source)} for bytes {segment.pos}-{last}/{self._state.total}, "
                    f"got {response.headers.get('Content-Range')!r}")
        except BaseException:
            transport.close(response)
            raise
        return response, transport.BodyReader(response, source, last - segment.pos + 1)

    def _refuse_full_body(self, segment: Segment) -> None:
        """A 200 to a ranged request: ranges are ignored, or the file changed (If-Range).

        If the first lane still streams its full body, it takes over every byte after its
        position (one version throughout) and this lane just stops; otherwise the attempt
        fails and the download restarts cleanly.
        """
        with self._lock:
            self.ranges_unsupported = True
            first = self._first
            if first is not None and self._first_to_end and first.active and first is not segment:
                first.end = self._state.total
                for other in self._segments:
                    if other is not first:
                        other.end = other.pos
                segment.active = False
                return
        raise ResumeMismatchError(
            f"{redact_url(self._url)} answered a range request with the whole file: "
            "it ignores ranges or the file changed")

    def _copy(self, segment: Segment, reader: transport.BodyReader, buffer: memoryview) -> None:
        """Stream the response into the segment's bytes until it ends or is cut short."""
        write, read, count = self._part.write_at, reader.read_into, self._count
        chunk, buckets, hasher = len(buffer), self._buckets, self.hasher
        cancelled, failed = self._settings.cancel_event.is_set, self._failed.is_set
        pace = Pace(self._settings, self._url, self._deadline_at)
        pos = segment.pos
        while True:
            with self._lock:
                segment.pos = pos
                end = segment.end
            if pos >= end:
                return
            data = read(buffer[:min(chunk, end - pos)])
            if not data:  # the reader already checked the announced length: this is a server lie
                raise TransferError(f"{redact_url(self._url)} ended before byte {end}", url=redact_url(self._url))
            write(pos, data)
            if hasher is not None:
                hasher.update(data)
            pos += len(data)
            count(len(data))
            waited = sum(bucket.consume(len(data), self._settings.cancel_event) for bucket in buckets)
            pace.check(len(data), paused=waited)
            if cancelled():
                raise DownloadCancelledError("cancelled", url=redact_url(self._url))
            if failed():
                return
            if time.monotonic() - self._last_save >= self._settings.save_interval:
                self.save()

    # -- state -----------------------------------------------------------------------------

    def done_ranges(self) -> list[tuple[int, int]]:
        """The byte ranges written so far, merged."""
        with self._lock:
            spans = list(self._state.ranges) + [(s.start, s.pos) for s in self._segments if s.pos > s.start]
        return merge(spans)

    def save(self) -> None:
        """Record the done ranges in memory and beside the part file (one lane at a time;
        a lane that finds another saving leaves it to that one)."""
        if not self._saving.acquire(blocking=False):
            return
        try:
            self._last_save = time.monotonic()
            self._state.ranges = self.done_ranges()
            sidecar.save(self._part.final, self._state)
        finally:
            self._saving.release()

    def _abort_all(self) -> None:
        with self._lock:
            responses = list(self._open)
        for response in responses:
            transport.abort(response)

    def abort(self) -> None:
        """Unblock every lane (called from another thread on hard shutdown)."""
        self._failed.set()
        self._abort_all()


def merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping, non-empty ``[start, end)`` ranges covering ``spans``."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def hole_ranges(done: list[tuple[int, int]], total: int) -> list[tuple[int, int]]:
    """The ``[start, end)`` ranges of ``[0, total)`` not covered by ``done``."""
    holes, cursor = [], 0
    for start, end in merge(done):
        if start > cursor:
            holes.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < total:
        holes.append((cursor, total))
    return holes
