"""One attempt at one download: request, pick the destination, resume or start, verify, rename."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests

from pydownloads.domain.checksum import Hasher
from pydownloads.domain.errors import (
    ChecksumMismatchError,
    DownloadCancelledError,
    FileSystemError,
    HTTPStatusError,
    IncompleteDownloadError,
    RedirectError,
    ResumeMismatchError,
    SizeMismatchError,
    TransferError,
    VerificationError,
)
from pydownloads.domain.redact import get_logger
from pydownloads.downloads.chunks import UNBOUNDED, ChunkCopy
from pydownloads.downloads.continuing import adopt, partial_size, read_answer
from pydownloads.downloads.destination import Destination
from pydownloads.downloads.job import DownloadJob, Owner, PathClaims
from pydownloads.downloads.ondisk import conditional_headers, hash_file, part_holds, remember_validators
from pydownloads.downloads.pace import Pace
from pydownloads.downloads.segments import FirstResponse, RangeEngine, hole_ranges
from pydownloads.downloads.settings import SMALL_BODY, TransferSettings
from pydownloads.events.emitter import EventEmitter
from pydownloads.events.types import ChunkDownloaded, DownloadRetrying, DownloadStarted
from pydownloads.infrastructure import sidecar, transport
from pydownloads.infrastructure.files import PartFile, part_path
from pydownloads.infrastructure.limits import HostLimiter, TokenBucket
from pydownloads.infrastructure.request_retry import RetryListener
from pydownloads.infrastructure.sidecar import ResumeState
from pydownloads.tracking.tracker import DownloadTracker

logger = get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class TransferContext:
    """What every attempt of a worker shares (all of it thread-safe)."""

    session: requests.Session
    settings: TransferSettings
    tracker: DownloadTracker
    emitter: EventEmitter
    claims: PathClaims
    limiter: HostLimiter | None = None
    bucket: TokenBucket | None = None


class Transfer:
    """One attempt of ``job``; :meth:`run` returns the final path or raises a DownloadError.

    What the attempt learns and decides for the next ones goes to ``job.state``.
    ``retries``, when given, goes with the requests made in this thread (the first segment
    lane's included, not the extra lanes'): see :func:`transport.send_get`.

    Runs in one worker thread (segment lanes are its helpers); the job's ``abort`` hook lets
    a hard shutdown unblock it from another thread.
    """

    def __init__(self, ctx: TransferContext, job: DownloadJob, deadline_at: float | None,
                 retries: RetryListener | None = None) -> None:
        self._ctx, self._job, self._deadline_at, self._retries = ctx, job, deadline_at, retries
        self._state = job.state
        self._url = job.url  # the download's name: tracker, events, resume state
        self._source = job.state.source  # where this attempt fetches from
        self._place = Destination(job, ctx.claims, self._url)
        self._buckets = tuple(b for b in (ctx.bucket, job.bucket) if b is not None)
        self._headers = {"Accept-Encoding": "identity", **job.request.headers}
        self._total: int | None = None
        self._validators: tuple[str | None, str | None] = (None, None)

    def run(self) -> Path:
        settings = self._ctx.settings
        if settings.cancel_event.is_set():
            raise DownloadCancelledError("cancelled before it started", url=self._url)
        limiter = self._ctx.limiter
        host = transport.host_of(self._source)
        if limiter is not None:
            limiter.acquire(host, settings.cancel_event, priority=self._job.priority)
        try:
            self._place.load_saved_state()
            resume, final = self._state.resume, self._state.claimed_path
            if resume is not None and final is not None and resume.ranges:
                return self._resume(final, resume)
            kept = partial_size(self._job.request.continue_partial, self._place.predicted)
            if kept is not None and self._place.predicted is not None:
                return self._continue(self._place.predicted, kept)
            return self._place.skip_existing(settings.on_existing) or self._fresh()
        except VerificationError as error:
            self._forget(discard=True)  # the bytes are wrong: start over from zero
            error.final = self._state.note_verify_failure()
            raise
        except (TransferError, IncompleteDownloadError, HTTPStatusError, ResumeMismatchError, RedirectError) as error:
            # With mirrors, the next attempt goes to the next usable one (retryable).
            following = self._state.switch_source(error)
            if following is None:
                raise
            raise TransferError(f"{error}; next: {following}", url=self._url, cause=error) from error
        finally:
            self._job.abort = None
            if limiter is not None:
                limiter.release(host)

    # -- the two ways an attempt goes ------------------------------------------------------

    def _fresh(self) -> Path:
        ctx, job = self._ctx, self._job
        headers, existing = self._headers, None
        if job.request.if_changed:
            predicted = self._place.predicted
            # Asked conditionally only about the file recorded at its completion (and proven
            # by the checksum, if any): one changed since is fetched again, whatever a 304 says.
            conditional = conditional_headers(predicted, job.request.checksum) \
                if predicted is not None and predicted.is_file() else {}
            if conditional:
                existing, headers = predicted, {**headers, **conditional}
        response = transport.send_get(ctx.session, self._source, headers=headers, timeout=ctx.settings.timeout,
                                      retries=self._retries)
        job.abort = lambda: transport.abort(response)
        try:
            if existing is not None and response.status_code == 304:
                return self._place.unchanged(existing)
            transport.check_status(response, self._source)
            final = self._place.for_response(response, rename=ctx.settings.on_existing == "rename")
            if ctx.settings.on_existing != "replace" and not job.request.if_changed and final.is_file():
                if ctx.settings.on_existing == "skip":
                    return self._place.unchanged(final)
                final = self._place.rename(final)
            checked = self._place.predicted  # load_saved_state looked there already
            saved = self._state.resume or (sidecar.load(final, self._url) if final != checked else None)
            etag, modified = transport.validators(response)
            total = transport.content_length(response)
            if saved is not None and saved.matches(self._url, total, etag, modified, self._source,
                                                   checksum=job.request.checksum is not None) \
                    and part_holds(final, saved):
                transport.close(response)  # a previous run left part of this file: resume it
                self._state.resume_from(saved)
                return self._resume(final, saved)
            if saved is not None:
                sidecar.delete(final)  # the file changed since, or its part is gone
                self._state.restart_from_zero()
            return self._start_over(final, response)
        finally:
            transport.close(response)

    def _start_over(self, final: Path, response: requests.Response) -> Path:
        """Download from byte zero, the body of ``response`` (a 200) serving the start."""
        total = transport.content_length(response)
        etag, modified = transport.validators(response)
        self._validators = transport.validators(response, weak=True)  # for If-None-Match
        self._check_size(total)
        reader = transport.BodyReader(response, self._source, total)
        proven = etag or modified or self._job.request.checksum is not None
        if total is None or not proven or total <= SMALL_BODY:
            # Unknown length, or neither a validator nor a checksum to prove that resumed or
            # split bytes are of one version: one pass.  One read's worth: nothing worth
            # resuming or splitting either, and the range machinery would cost more.
            return self._stream_whole(final, reader)
        state = ResumeState(url=self._url, total=total, etag=etag, last_modified=modified, source=self._source)
        self._state.resume_from(state)
        lanes = self._lanes(total) if transport.accepts_ranges(response) else 1
        return self._fetch_ranges(final, state, lanes, FirstResponse(reader, response), fresh=True)

    def _resume(self, final: Path, state: ResumeState) -> Path:
        """Go on from the bytes a previous attempt or run left, under ``If-Range`` (without
        validators, only with a checksum, which decides at the end)."""
        ctx = self._ctx
        request = self._job.request
        if state.validator is None and request.checksum is None and not request.continue_partial:
            return self._fresh()  # nothing can prove the kept bytes (-c trusts the server): _fresh drops them
        holes = hole_ranges(state.ranges, state.total)
        if not holes:  # every byte is there already: only the checks and the rename are left
            return self._complete_part(final, state.total)
        start, end = holes[0]
        last = state.total - 1 if len(holes) == 1 else end - 1
        headers = {**self._headers, "Range": f"bytes={start}-" if len(holes) == 1 else f"bytes={start}-{last}"}
        same_source = state.source in (None, self._source)
        self._validators = (state.etag, state.last_modified)
        if state.validator and same_source:
            headers["If-Range"] = state.validator
        try:
            response = transport.send_get(ctx.session, self._source, headers=headers, timeout=ctx.settings.timeout,
                                          retries=self._retries)
            self._job.abort = lambda: transport.abort(response)
            try:
                transport.check_status(response, self._source, ranged=True)
                if response.status_code == 200:  # changed, or ranges ignored: this body starts over
                    self._forget(discard=False)
                    self._announce_restart("the server sent the whole file (it changed, or ignores ranges)")
                    return self._start_over(final, response)
                if transport.content_range(response) != (start, last, state.total):
                    raise ResumeMismatchError(
                        f"asked {self._url} for bytes {start}-{last}/{state.total}, "
                        f"got {response.headers.get('Content-Range')!r}", url=self._url)
                if not same_source:  # another mirror of the same size: its validators from now on
                    self._validators = transport.validators(response)
                    self._state.resume_on(self._source, self._validators)
                first = FirstResponse(transport.BodyReader(response, self._source, last - start + 1), response,
                                      to_end=last == state.total - 1)
                return self._fetch_ranges(final, state, self._lanes(state.total), first, fresh=False)
            finally:
                transport.close(response)
        except ResumeMismatchError as error:
            self._forget(discard=True)
            if error.from_zero:  # said so already, where it was raised
                raise
            raise ResumeMismatchError(f"restarting from zero: {error}", url=self._url, from_zero=True) from error

    def _continue(self, final: Path, size: int) -> Path:
        """``continue_partial``: the ``size`` bytes under ``final`` (no part of ours) are the
        start; ask for the rest and append, replace or complete (see :mod:`pydownloads.downloads.continuing`)."""
        ctx = self._ctx
        self._place.claim(final)
        headers = {**self._headers, "Range": f"bytes={size}-"}
        response = transport.send_get(ctx.session, self._source, headers=headers, timeout=ctx.settings.timeout,
                                      retries=self._retries)
        self._job.abort = lambda: transport.abort(response)
        try:
            answer = read_answer(response, size)
            if answer is None:  # a 200 (ranges ignored): its body replaces the kept bytes
                transport.check_status(response, self._source)
                self._announce_restart("the server sent the whole file (it ignores ranges)")
                return self._start_over(final, response)
            total = answer.total
            if total is None:  # the kept bytes do not fit the server's file: from zero
                transport.close(response)
                self._announce_restart(f"{response.headers.get('Content-Range')!r} does not continue {size} bytes")
                return self._fresh()
            self._check_size(total)
            adopt(final, self._url)  # the final name only ever holds a complete file
            etag, modified = transport.validators(response)
            state = ResumeState(url=self._url, total=total, etag=etag, last_modified=modified,
                                ranges=[(0, size)], source=self._source)
            self._state.resume_from(state)
            if not answer.body:  # a 416 for exactly this size: complete already
                return self._complete_part(final, total)
            self._validators = (etag, modified)
            first = FirstResponse(transport.BodyReader(response, self._source, total - size), response)
            proven = state.validator is not None or self._job.request.checksum is not None
            lanes = self._lanes(total) if proven else 1  # unproven lanes could splice two versions
            return self._fetch_ranges(final, state, lanes, first, fresh=False)
        finally:
            transport.close(response)

    def _complete_part(self, final: Path, total: int) -> Path:
        """Every byte is in the part file already: only the checks and the rename are left."""
        part = PartFile(final, url=self._url, keep=True)
        try:
            self._started(final, total, total)
            return self._finish(part, total, None)
        finally:
            part.close()

    def _fetch_ranges(
        self, final: Path, state: ResumeState, lanes: int, first: FirstResponse, *, fresh: bool
    ) -> Path:
        ctx, job = self._ctx, self._job
        part = PartFile(final, url=self._url, keep=not fresh)
        try:
            self._started(final, state.total, state.done_bytes)
            if fresh and lanes > 1:
                part.preallocate(state.total)
            hasher = self._new_hasher() if fresh else None
            engine = RangeEngine(
                session=ctx.session, url=self._source, headers=self._headers, settings=ctx.settings, part=part,
                state=state, lanes=lanes, count_bytes=self._count, buckets=self._buckets, limiter=ctx.limiter,
                host=transport.host_of(self._source), hasher=hasher, deadline_at=self._deadline_at,
                mirrors=self._parallel_mirrors(), retries=self._retries,
            )
            job.abort = engine.abort
            try:
                engine.run(first)
            except ResumeMismatchError as error:
                self._forget(discard=True)
                if engine.ranges_unsupported:
                    self._state.one_lane()
                raise ResumeMismatchError(f"restarting from zero: {error}", url=self._url,
                                          from_zero=True) from error
            except DownloadCancelledError:
                raise
            except FileSystemError:
                # A full disk: keeping the bytes would hold it full for every later file.
                self._forget(discard=True)
                raise
            except Exception:
                if lanes > 1:
                    self._state.fewer_lanes(lanes)  # a segment failed: fewer connections next time
                raise
            part.truncate(state.total)
            return self._finish(part, state.total, engine.hasher)
        finally:
            part.close()

    def _stream_whole(self, final: Path, reader: transport.BodyReader) -> Path:
        """A body of unknown length, with no validator, or small: one pass from zero, no resume.

        (A stale resume state was dropped where it was found: ``_fresh``, ``_load_saved_state``.)
        """
        self._state.restart_from_zero()
        part = PartFile(final, url=self._url)
        try:
            self._started(final, reader.expected, 0)
            hasher = self._new_hasher()
            settings = self._ctx.settings
            size = settings.chunk_size if reader.expected is None else max(1, min(settings.chunk_size, reader.expected))
            buffer = memoryview(bytearray(size))  # reused by every read of this body
            copy = ChunkCopy(part=part, count=self._count, buckets=self._buckets,
                             cancel_event=settings.cancel_event, url=self._url)
            pace = Pace(settings, self._source, self._deadline_at)
            end = copy.run(reader, buffer, 0, UNBOUNDED, pace=pace, hasher=hasher)  # to the body's end
            return self._finish(part, end, hasher)
        except BaseException:
            part.discard()
            raise

    # -- bookkeeping -----------------------------------------------------------------------

    def _started(self, final: Path, total: int | None, done: int) -> None:
        self._total = total
        if not self._ctx.tracker.mark_started(
                self._url, path=final, total_bytes=total, attempt=self._state.attempt, bytes_downloaded=done):
            raise DownloadCancelledError("cancelled", url=self._url)
        if self._ctx.emitter.is_listening(DownloadStarted):
            self._ctx.emitter.emit(DownloadStarted(url=self._url, path=final, total_bytes=total,
                                                   attempt=self._state.attempt))

    def _count(self, count: int) -> None:
        done = self._ctx.tracker.add_bytes(self._url, count)
        emitter = self._ctx.emitter
        if emitter.is_listening(ChunkDownloaded):
            emitter.emit(ChunkDownloaded(url=self._url, bytes_downloaded=count, total_downloaded=done,
                                         total_bytes=self._total))

    def _parallel_mirrors(self) -> tuple[str, ...]:
        """Mirrors whose lanes may fetch ranges beside this source's: only with a checksum,
        which proves at the end that every range came from the same bytes (equal sizes alone
        could splice two versions); without one, mirrors take over one after another."""
        return self._state.other_sources() if self._job.request.checksum is not None else ()

    def _announce_restart(self, why: str) -> None:
        """Say that the bytes kept so far were dropped and the download starts over."""
        logger.info("%s: restarting from zero: %s", self._url, why)
        if self._ctx.emitter.is_listening(DownloadRetrying):
            self._ctx.emitter.emit(DownloadRetrying(
                url=self._url, attempt=self._state.attempt, delay=0.0, reason=f"restarting from zero: {why}",
                restart=True))

    def _lanes(self, total: int) -> int:
        settings, request = self._ctx.settings, self._job.request
        wanted = min(request.segments or settings.max_segments, self._state.lane_cap)
        return max(1, min(wanted, total // settings.min_segment_size))

    def _check_size(self, total: int | None) -> None:
        expected = self._job.request.expected_size
        if expected is not None and total is not None and total != expected:
            raise SizeMismatchError(f"{self._url} is {total} bytes, expected {expected}",
                                    expected=expected, actual=total, url=self._url)

    def _new_hasher(self) -> Hasher | None:
        checksum = self._job.request.checksum
        return checksum.new_hasher() if checksum is not None else None

    def _finish(self, part: PartFile, size: int, hasher: Hasher | None) -> Path:
        """Verify size and checksum, then move the part file to its final name."""
        self._check_size(size)
        checksum = self._job.request.checksum
        if checksum is not None:
            actual = hasher.hexdigest() if hasher is not None else hash_file(part.path, checksum)
            if actual != checksum.hexdigest:
                raise ChecksumMismatchError(
                    f"{self._url}: {checksum.algorithm} is {actual}, expected {checksum.hexdigest}",
                    algorithm=checksum.algorithm, expected=checksum.hexdigest, actual=actual, url=self._url)
        if self._ctx.settings.cancel_event.is_set() or not self._job.claim(Owner.WORKER):
            raise DownloadCancelledError("cancelled", url=self._url)
        self._ctx.tracker.set_bytes(self._url, size)  # bytes fetched twice (a takeover) count once
        path = part.commit()
        if self._job.request.if_changed:
            remember_validators(path, self._validators)
        state = self._state.finish()
        if state is not None and state.persisted:
            sidecar.delete(path)
        return path

    def _forget(self, *, discard: bool) -> None:
        """Drop what is known of the partial file (and with ``discard`` the file itself)."""
        claimed = self._state.restart_from_zero()
        if claimed is not None:
            sidecar.delete(claimed)
            if discard:
                part_path(claimed).unlink(missing_ok=True)
