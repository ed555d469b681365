"""Byte ranges of one file fetched over one or more connections, written in place.

:class:`RangeEngine` runs a file's *lanes*: threads with a connection each, acting on one
:class:`~pydownloads.downloads.segment_table.SegmentTable` behind one lock.  The first lane
is the response the transfer already opened; it runs alone while it copies faster than
``TransferSettings.fast_lane`` (loopback, a LAN) or while it is behind its connection (the
machine, not the link, sets its speed), as :class:`~pydownloads.downloads.segment_table.LaneGauge`
judges over LANE_PROBE seconds from its first bytes, then every LANE_RECHECK.  Once it
proves slow, or at once when mirrors can serve ranges,
what is left is cut into near-equal pieces and up to ``lanes`` connections fetch them (each
within the host's connection budget); a lane that runs out of work takes half of the
running range that would take longest (work stealing), so a slow connection never becomes
the tail of the download.  Every ranged response must be a 206 whose ``Content-Range`` is
exactly what was asked, under ``If-Range`` (from a mirror: the same total, the checksum
deciding at the end), so bytes of two versions of a file are never spliced; a 200 instead
lets the first response take over every later byte if its body runs to the end, else the
attempt fails.  Bytes go through :class:`~pydownloads.downloads.chunks.ChunkCopy`, the loop
a single stream uses too.  The first lane hashes while it is alone.  Done ranges are saved
beside the part file every ``save_interval`` and when the engine stops short, so a failure
or a crash keeps what was fetched.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests

from pydownloads.domain.checksum import Hasher
from pydownloads.domain.errors import DownloadCancelledError, DownloadError, ResumeMismatchError, TransferError
from pydownloads.domain.redact import get_logger
from pydownloads.downloads.chunks import FILL_SECONDS, SHARED_FILL, ByteCounter, ChunkCopy
from pydownloads.downloads.pace import Pace
from pydownloads.downloads.segment_table import YOUNG, LaneGauge, Segment, SegmentTable
from pydownloads.downloads.segment_table import hole_ranges as hole_ranges  # re-exported: older imports
from pydownloads.downloads.segment_table import merge as merge  # re-exported: older imports
from pydownloads.downloads.settings import LANE_PROBE, LANE_RECHECK, MANY_LANES, MANY_LANES_READ, TransferSettings
from pydownloads.infrastructure import sidecar, transport
from pydownloads.infrastructure.files import PartFile
from pydownloads.infrastructure.limits import HostLimiter, TokenBucket
from pydownloads.infrastructure.request_retry import RetryListener
from pydownloads.infrastructure.sidecar import ResumeState

logger = get_logger(__name__)


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
    chunk; the first error stops every lane and is raised from :meth:`run`;
    :meth:`abort` may be called from any thread.
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
        retries: RetryListener | None = None,
    ) -> None:
        self._session, self._url, self._headers = session, url, headers
        self._settings, self._part, self._state = settings, part, state
        self._lanes, self._limiter, self._host = lanes, limiter, host
        self._copy = ChunkCopy(part=part, count=count_bytes, buckets=buckets,
                               cancel_event=settings.cancel_event, url=self._url)
        #: Fed by the first lane while it is the only one (its bytes then arrive in order
        #: from zero); None once other lanes start: the file is then hashed at the end.
        self.hasher = hasher
        self._deadline_at = deadline_at
        #: The download's transport retries, for the requests of the first lane (the worker's
        #: own thread); extra lanes' requests go without, as they always have.
        self._retries = retries
        #: Where lanes fetch from: ``url`` (whose validators the state holds), then mirrors.
        self._sources = (url, *mirrors)
        self._lock = threading.Lock()  # guards the table, _open and _error
        #: Notified when a segment is let go or the download fails: idle lanes look again.
        self._released = threading.Condition(self._lock)
        self._saving = threading.Lock()
        self._failed = threading.Event()
        self._first_done = threading.Event()
        self._error: BaseException | None = None
        self._table = SegmentTable(state.ranges, state.total, chunk_size=settings.chunk_size)
        self._open: set[requests.Response] = set()
        self._last_save = time.monotonic()

    @property
    def ranges_unsupported(self) -> bool:
        """True once a ranged request got the whole file: later attempts use one lane."""
        with self._lock:
            return self._table.ranges_unsupported

    # -- orchestration ---------------------------------------------------------------------

    def run(self, first: FirstResponse) -> None:
        """Fetch every missing byte; raise the first lane's error if any lane failed."""
        with self._lock:
            if not self._table.segments:
                return
            # The first response's segment is taken before any other lane can pick it.
            own = self._table.claim_first(time.monotonic(), to_end=first.to_end)
        watcher = None
        if self._lanes > 1:
            watcher = threading.Thread(target=self._add_lanes_when_slow, args=(first, threading.get_native_id()),
                                       name="pydownloads-lanes", daemon=True)
            watcher.start()
        try:
            self._lane(first, None, own, self._url, self._retries)
        finally:
            self._first_done.set()
        if watcher is not None:
            watcher.join()
        with self._lock:
            missing = self._table.missing()
        if self._error is not None or missing:
            self.save()  # what was fetched stays usable for the next attempt or run
        if self._error is not None:
            raise self._error
        if missing:  # every lane ended without an error but bytes are missing: never commit
            raise ResumeMismatchError(f"{missing} bytes of {self._url} were not fetched")

    def _add_lanes_when_slow(self, first: FirstResponse, thread: int) -> None:
        """Start the extra lanes once the first connection (``first``, read by the thread
        whose native id is ``thread``) proves slow, as
        :class:`LaneGauge` judges it: a connection that copies as fast as the machine can
        (loopback, a LAN, or a busy machine) runs alone, since more lanes would only cost
        memory and CPU.  Mirrors' lanes start at once: they add other hosts' bandwidth."""
        extra: list[threading.Thread] = []
        try:
            if len(self._sources) == 1:
                gauge = LaneGauge(self._settings.fast_lane, window=LANE_PROBE, recheck=LANE_RECHECK)
                # What the reader received, not what was written: a chunk still filling counts.
                reader, response = first.reader, first.response
                while not gauge.slow(time.monotonic(), reader.received, transport.waiting(response),
                                     queued_seconds(thread)):
                    if self._first_done.wait(gauge.window) or self._failed.is_set():
                        return  # the first lane took every byte, or the download failed
            extra = self._start_lanes()
        except BaseException as error:
            self._fail(error)
        finally:
            for lane in extra:
                lane.join()

    def _start_lanes(self) -> list[threading.Thread]:
        """Cut what is left into near-equal ranges and start a lane for each but the first."""
        with self._lock:
            self.hasher = None  # bytes will no longer arrive in order
            table = self._table
            table.presplit(self._lanes, self._settings.min_segment_size, time.monotonic())
            useful = max(len(table.segments), round(table.missing() / self._settings.min_segment_size))
        extra: list[threading.Thread] = []
        for number in range(1, min(self._lanes, useful)):
            source = self._sources[number % len(self._sources)]
            host = transport.host_of(source)
            if self._limiter is not None and not self._limiter.acquire(
                    host, self._settings.cancel_event, wait=False):
                continue  # that host's connection budget is spent: one lane fewer
            thread = threading.Thread(target=self._lane, args=(None, host, None, source, None),
                                      name=f"pydownloads-seg{number}", daemon=True)
            thread.start()
            extra.append(thread)
        return extra

    def _lane(self, first: FirstResponse | None, slot: str | None, segment: Segment | None, source: str,
              retries: RetryListener | None) -> None:
        """One connection's loop; ``slot`` is the host whose connection slot it holds."""
        try:
            if segment is None:
                segment = self._await_segment()
            buffer = None
            while segment is not None and not self._failed.is_set():
                if buffer is None:  # one buffer per lane, reused for every read of every segment
                    buffer = memoryview(bytearray(self._read_size()))
                self._fetch(segment, first, source, buffer, retries)
                first = None
                segment = self._await_segment()
        except DownloadError as error:
            if source == self._url or isinstance(error, DownloadCancelledError):
                self._fail(error)
            else:  # a mirror lane gives up: its ranges go to the other lanes
                logger.info("mirror %s leaves %s: %s", source, self._url, error)
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
            with self._lock:
                segment = self._table.next_segment(time.monotonic())
                if segment is not None or not self._table.may_split_later():
                    return segment
                if self._settings.cancel_event.is_set():
                    raise DownloadCancelledError("cancelled", url=self._url)
                self._released.wait(YOUNG / 2)  # woken when a segment is let go: no poll's delay
        return None

    # -- one segment -----------------------------------------------------------------------

    def _read_size(self) -> int:
        """Bytes asked for per read: ``chunk_size``, capped when many lanes share the
        file (a buffer each), and never more than the file."""
        size = self._settings.chunk_size
        if self._lanes > MANY_LANES:
            size = min(size, MANY_LANES_READ)
        return max(1, min(size, self._state.total))

    def _fetch(self, segment: Segment, first: FirstResponse | None, source: str, buffer: memoryview,
               retries: RetryListener | None) -> None:
        if first is not None:
            response, reader = first.response, first.reader
        else:
            opened = self._request(segment, source, retries)
            if opened is None:
                return
            response, reader = opened
            with self._lock:
                self._table.started(segment, time.monotonic())
        with self._lock:
            self._open.add(response)
        try:
            self._copy_segment(segment, reader, buffer)
        finally:
            self._let_go(segment, response)
            transport.close(response)

    def _let_go(self, segment: Segment, response: requests.Response) -> None:
        """No connection works on ``segment`` any more: idle lanes look again at once."""
        with self._lock:
            self._open.discard(response)
            self._table.release(segment)
            self._released.notify_all()

    def _request(self, segment: Segment, source: str,
                 retries: RetryListener | None) -> tuple[requests.Response, transport.BodyReader] | None:
        """Open the ranged response for ``segment``; None if another lane took it over.

        From a mirror, ``If-Range`` cannot be used (its validators are its own): the exact
        Content-Range with the same total decides, and the checksum, if any, at the end.
        """
        with self._lock:
            pos, last = segment.pos, segment.end - 1
        headers = {**self._headers, "Range": f"bytes={pos}-{last}"}
        if self._state.validator and source == self._url:
            headers["If-Range"] = self._state.validator
        response = transport.send_get(self._session, source, headers=headers, timeout=self._settings.timeout,
                                      retries=retries)
        try:
            transport.check_status(response, source, ranged=True)
            if response.status_code != 206:
                transport.close(response)
                if source != self._url:
                    raise ResumeMismatchError(f"mirror {source} does not serve ranges")
                self._refuse_full_body(segment)
                return None
            got = transport.content_range(response)
            if got != (pos, last, self._state.total):
                raise ResumeMismatchError(
                    f"asked {source} for bytes {pos}-{last}/{self._state.total}, "
                    f"got {response.headers.get('Content-Range')!r}")
        except BaseException:
            transport.close(response)
            raise
        return response, transport.BodyReader(response, source, last - pos + 1)

    def _refuse_full_body(self, segment: Segment) -> None:
        """A 200 to a ranged request: ranges are ignored, or the file changed (If-Range).

        If the first lane still streams its full body, it takes over every byte after its
        position (one version throughout) and this lane just stops; otherwise the attempt
        fails and the download restarts cleanly.
        """
        with self._lock:
            if self._table.take_over(segment):
                return
        raise ResumeMismatchError(
            f"{self._url} answered a range request with the whole file: "
            "it ignores ranges or the file changed")

    def _copy_segment(self, segment: Segment, reader: transport.BodyReader, buffer: memoryview) -> None:
        """Stream the response into the segment's bytes until it ends or is cut short."""
        with self._lock:
            pos, end = segment.pos, segment.end
        step, hasher = _Cursor(self, segment).step, self.hasher
        pace = Pace(self._settings, self._url, self._deadline_at)
        while pos < end:
            reached = self._copy.run(reader, buffer, pos, end, pace=pace, hasher=hasher, step=step,
                                     fill=FILL_SECONDS if self._lanes == 1 else SHARED_FILL)
            if self._failed.is_set():
                return
            with self._lock:
                end = self._table.advance(segment, reached)
            # Short of the end: the body ended (the reader checked its announced length,
            # so the server lied), or the segment grew since the last chunk (a takeover).
            if reached < end and reached == pos:
                raise TransferError(f"{self._url} ended before byte {end}", url=self._url)
            pos = reached

    # -- state -----------------------------------------------------------------------------

    def done_ranges(self) -> list[tuple[int, int]]:
        """The byte ranges written so far, merged."""
        with self._lock:
            return self._table.done_ranges()

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
            self._released.notify_all()  # idle lanes see the failure at once
        for response in responses:
            transport.abort(response)

    def abort(self) -> None:
        """Unblock every lane (called from another thread on hard shutdown)."""
        self._failed.set()
        self._abort_all()


def queued_seconds(thread: int) -> float | None:
    """Seconds the thread with native id ``thread`` has waited, ready to run, for a core
    (Linux's schedstat); None where the system does not say."""
    try:
        with open(f"/proc/self/task/{thread}/schedstat", "rb") as stats:
            return int(stats.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class _Cursor:
    """The per-chunk step of one lane's response: records the position its segment has
    reached and learns where the segment now ends (a split may have cut it), under the
    engine's lock; stops when the download failed; saves the done ranges when due."""

    __slots__ = ("_advance", "_engine", "_failed", "_interval", "_lock", "_segment")

    def __init__(self, engine: RangeEngine, segment: Segment) -> None:
        self._engine, self._segment = engine, segment
        self._lock, self._advance = engine._lock, engine._table.advance
        self._failed, self._interval = engine._failed.is_set, engine._settings.save_interval

    def step(self, pos: int) -> int:
        with self._lock:
            end = self._advance(self._segment, pos)
        if self._failed():
            return pos
        engine = self._engine
        if time.monotonic() - engine._last_save >= self._interval:
            engine.save()
        return end
