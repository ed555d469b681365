"""One attempt at one download: request, pick the destination, resume or start, verify, rename."""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import requests

from pydownloads.domain.checksum import Checksum, Hasher
from pydownloads.domain.errors import (
    ChecksumMismatchError,
    DestinationConflictError,
    DownloadCancelledError,
    DownloadError,
    FileSystemError,
    HTTPStatusError,
    IncompleteDownloadError,
    RedirectError,
    ResumeMismatchError,
    SizeMismatchError,
    TLSError,
    TransferError,
    VerificationError,
)
from pydownloads.downloads.chunks import UNBOUNDED, ChunkCopy
from pydownloads.downloads.job import DownloadJob, Owner, PathClaims
from pydownloads.downloads.pace import Pace
from pydownloads.downloads.retry import AttemptCounter
from pydownloads.downloads.segments import FirstResponse, RangeEngine, hole_ranges
from pydownloads.downloads.settings import SMALL_BODY, TransferSettings
from pydownloads.events.emitter import EventEmitter
from pydownloads.events.types import ChunkDownloaded, DownloadRetrying, DownloadStarted
from pydownloads.infrastructure import sidecar, transport
from pydownloads.infrastructure.files import PartFile, part_path
from pydownloads.infrastructure.limits import HostLimiter, TokenBucket
from pydownloads.infrastructure.paths import DEFAULT_NAME, parse_content_disposition
from pydownloads.infrastructure.redact import redact_url
from pydownloads.infrastructure.sidecar import ResumeState
from pydownloads.tracking.tracker import DownloadTracker

logger = logging.getLogger(__name__)


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

    Runs in one worker thread (segment lanes are its helpers); the job's ``abort`` hook lets
    a hard shutdown unblock it from another thread.
    """

    def __init__(self, ctx: TransferContext, job: DownloadJob, attempts: AttemptCounter,
                 deadline_at: float | None) -> None:
        self._ctx, self._job, self._attempts, self._deadline_at = ctx, job, attempts, deadline_at
        self._url = job.url  # the download's name: tracker, events, resume state
        self._source = job.request.sources[job.source]  # where this attempt fetches from
        # Resolved once per attempt (each attempt checks again: a link planted meanwhile is caught).
        self._predicted = job.request.predicted_destination()
        self._shown = redact_url(job.url)
        self._buckets = tuple(b for b in (ctx.bucket, job.bucket) if b is not None)
        self._headers = {"Accept-Encoding": "identity", **job.request.headers}
        self._total: int | None = None
        self._validators: tuple[str | None, str | None] = (None, None)

    def run(self) -> Path:
        settings = self._ctx.settings
        if settings.cancel_event.is_set():
            raise DownloadCancelledError("cancelled before it started", url=self._shown)
        limiter = self._ctx.limiter
        host = transport.host_of(self._source)
        if limiter is not None:
            limiter.acquire(host, settings.cancel_event, priority=self._job.priority)
        try:
            self._load_saved_state()
            resume, final = self._job.resume, self._job.claimed_path
            if resume is not None and final is not None and resume.ranges:
                return self._resume(final, resume)
            return self._skip_existing() or self._fresh()
        except VerificationError as error:
            self._forget(discard=True)  # the bytes are wrong: start over from zero
            self._job.verify_failures += 1
            error.final = self._job.verify_failures > 1
            raise
        except (TransferError, IncompleteDownloadError, HTTPStatusError, ResumeMismatchError, RedirectError) as error:
            failover = self._next_mirror(error)
            if failover is None:
                raise
            raise failover from error
        finally:
            self._job.abort = None
            if limiter is not None:
                limiter.release(host)

    def _next_mirror(self, error: DownloadError) -> DownloadError | None:
        """With mirrors, the next attempt goes to the next usable one; a mirror that failed
        for good (a 4xx, a bad redirect, TLS) is not asked again.  Returns the (retryable)
        error to raise instead, or None when there is no other mirror to go to."""
        job, sources = self._job, self._job.request.sources
        if len(sources) < 2:
            return None
        if _mirror_is_dead(error):
            job.dead_sources.add(job.source)
        alive = [i for i in range(len(sources)) if i not in job.dead_sources]
        if not alive:
            return None
        job.source = next((i for i in alive if i > job.source), alive[0])
        shown = redact_url(sources[job.source])
        return TransferError(f"{error}; next: {shown}", url=self._shown, cause=error)

    # -- where the bytes go ----------------------------------------------------------------

    def _load_saved_state(self) -> None:
        """Once per job: pick up a previous run's part file, if it is intact."""
        job = self._job
        if job.sidecar_checked:
            return
        job.sidecar_checked = True
        predicted = self._predicted
        state = sidecar.load(predicted, self._url) if predicted is not None else None
        if predicted is None or state is None:
            return
        if not _part_holds(predicted, state):
            sidecar.delete(predicted)  # its part file is gone or short: the state is worthless
            return
        self._claim(predicted)
        job.resume = state

    def _destination(self, response: requests.Response) -> Path:
        request = self._job.request
        name = request.filename
        if name is None:
            disposition = response.headers.get("Content-Disposition")
            name = parse_content_disposition(disposition) if disposition else None
        name = name or request.url_name or DEFAULT_NAME
        predicted = self._predicted
        final = predicted if predicted is not None and predicted.name == name else request.destination(name)
        self._claim(final)
        return final

    def _rename(self, final: Path) -> Path:
        """``on_existing="rename"``: the first free ``name (n).ext`` beside ``final``."""
        for number in range(1, 10_000):
            candidate = final.with_name(f"{final.stem} ({number}){final.suffix}")
            if candidate.exists():
                continue
            try:
                self._claim(candidate)
            except DestinationConflictError:
                continue
            return candidate
        raise DestinationConflictError(f"no free name beside {final.name}", path=str(final),
                                       other_url="", url=self._shown)

    def _claim(self, final: Path) -> None:
        job = self._job
        if final != job.claimed_path:
            if job.claimed_path is not None:
                self._ctx.claims.release(job.claimed_path, job.url)
            self._ctx.claims.claim(final, job.url)
            job.claimed_path = final

    # -- the two ways an attempt goes ------------------------------------------------------

    def _skip_existing(self) -> Path | None:
        """``on_existing="skip"``: a file already under the expected name is kept, unasked."""
        request = self._job.request
        if self._ctx.settings.on_existing != "skip" or request.if_changed:
            return None
        predicted = self._predicted
        if predicted is None or not predicted.is_file():
            return None
        return self._unchanged(predicted)

    def _unchanged(self, final: Path) -> Path:
        """Complete with the file as it is: nothing transferred."""
        self._claim(final)
        if not self._job.claim(Owner.WORKER):
            raise DownloadCancelledError("cancelled", url=self._shown)
        self._job.unchanged = True
        return final

    def _fresh(self) -> Path:
        ctx, job = self._ctx, self._job
        headers, existing = self._headers, None
        if job.request.if_changed:
            predicted = self._predicted
            if predicted is not None and predicted.is_file():
                existing, headers = predicted, {**headers, **conditional_headers(predicted)}
        response = transport.send_get(ctx.session, self._source, headers=headers, timeout=ctx.settings.timeout)
        job.abort = lambda: transport.abort(response)
        try:
            if existing is not None and response.status_code == 304:
                return self._unchanged(existing)
            transport.check_status(response, self._source)
            final = self._destination(response)
            if ctx.settings.on_existing != "replace" and not job.request.if_changed and final.is_file():
                if ctx.settings.on_existing == "skip":
                    return self._unchanged(final)
                final = self._rename(final)
            checked = self._predicted  # _load_saved_state looked there already
            saved = job.resume or (sidecar.load(final, self._url) if final != checked else None)
            etag, modified = transport.validators(response)
            total = transport.content_length(response)
            if saved is not None and saved.matches(self._url, total, etag, modified, self._source) \
                    and _part_holds(final, saved):
                transport.close(response)  # a previous run left part of this file: resume it
                job.resume = saved
                return self._resume(final, saved)
            if saved is not None:
                sidecar.delete(final)  # the file changed since, or its part is gone
                job.resume = None
            return self._start_over(final, response)
        finally:
            transport.close(response)

    def _start_over(self, final: Path, response: requests.Response) -> Path:
        """Download from byte zero, the body of ``response`` (a 200) serving the start."""
        job = self._job
        total = transport.content_length(response)
        etag, modified = transport.validators(response)
        self._validators = (etag, modified)
        self._check_size(total)
        reader = transport.BodyReader(response, self._source, total)
        if total is None or not (etag or modified) or total <= SMALL_BODY:
            # Unknown length or no validator: nothing to resume.  One read's worth: nothing
            # worth resuming or splitting either, and the range machinery would cost more.
            return self._stream_whole(final, reader)
        state = job.resume = ResumeState(url=self._url, total=total, etag=etag, last_modified=modified,
                                         source=self._source)
        lanes = self._lanes(total) if transport.accepts_ranges(response) else 1
        return self._fetch_ranges(final, state, lanes, FirstResponse(reader, response), fresh=True)

    def _resume(self, final: Path, state: ResumeState) -> Path:
        """Go on from the bytes a previous attempt or run left, under ``If-Range``."""
        ctx, job = self._ctx, self._job
        holes = hole_ranges(state.ranges, state.total)
        if not holes:  # every byte is there already: only the checks and the rename are left
            part = PartFile(final, url=self._shown, keep=True)
            try:
                self._started(final, state.total, state.total)
                return self._finish(part, state.total, None)
            finally:
                part.close()
        start, end = holes[0]
        last = state.total - 1 if len(holes) == 1 else end - 1
        headers = {**self._headers, "Range": f"bytes={start}-" if len(holes) == 1 else f"bytes={start}-{last}"}
        same_source = state.source in (None, self._source)
        self._validators = (state.etag, state.last_modified)
        if state.validator and same_source:
            headers["If-Range"] = state.validator
        try:
            response = transport.send_get(ctx.session, self._source, headers=headers, timeout=ctx.settings.timeout)
            job.abort = lambda: transport.abort(response)
            try:
                transport.check_status(response, self._source, ranged=True)
                if response.status_code == 200:  # changed, or ranges ignored: this body starts over
                    self._forget(discard=False)
                    self._announce_restart("the server sent the whole file (it changed, or ignores ranges)")
                    return self._start_over(final, response)
                if transport.content_range(response) != (start, last, state.total):
                    raise ResumeMismatchError(
                        f"asked {self._shown} for bytes {start}-{last}/{state.total}, "
                        f"got {response.headers.get('Content-Range')!r}", url=self._shown)
                if not same_source:  # another mirror of the same size: its validators from now on
                    state.etag, state.last_modified = transport.validators(response)
                    state.source = self._source
                    self._validators = (state.etag, state.last_modified)
                first = FirstResponse(transport.BodyReader(response, self._source, last - start + 1), response,
                                      to_end=last == state.total - 1)
                return self._fetch_ranges(final, state, self._lanes(state.total), first, fresh=False)
            finally:
                transport.close(response)
        except ResumeMismatchError as error:
            self._forget(discard=True)
            if str(error).startswith("restarting from zero"):
                raise
            raise ResumeMismatchError(f"restarting from zero: {error}", url=self._shown) from error

    def _fetch_ranges(
        self, final: Path, state: ResumeState, lanes: int, first: FirstResponse, *, fresh: bool
    ) -> Path:
        ctx, job = self._ctx, self._job
        part = PartFile(final, url=self._shown, keep=not fresh)
        try:
            self._started(final, state.total, state.done_bytes)
            if fresh and lanes > 1:
                part.preallocate(state.total)
            hasher = self._new_hasher() if fresh else None
            engine = RangeEngine(
                session=ctx.session, url=self._source, headers=self._headers, settings=ctx.settings, part=part,
                state=state, lanes=lanes, count_bytes=self._count, buckets=self._buckets, limiter=ctx.limiter,
                host=transport.host_of(self._source), hasher=hasher, deadline_at=self._deadline_at,
                mirrors=self._parallel_mirrors(),
            )
            job.abort = engine.abort
            try:
                engine.run(first)
            except ResumeMismatchError as error:
                self._forget(discard=True)
                if engine.ranges_unsupported:
                    job.lane_cap = 1
                raise ResumeMismatchError(f"restarting from zero: {error}", url=self._shown) from error
            except DownloadCancelledError:
                raise
            except FileSystemError:
                # A full disk: keeping the bytes would hold it full for every later file.
                self._forget(discard=True)
                raise
            except Exception:
                if lanes > 1:
                    job.lane_cap = max(1, lanes // 2)  # a segment failed: fewer connections next time
                raise
            part.truncate(state.total)
            return self._finish(part, state.total, engine.hasher)
        finally:
            part.close()

    def _stream_whole(self, final: Path, reader: transport.BodyReader) -> Path:
        """A body of unknown length, with no validator, or small: one pass from zero, no resume.

        (A stale resume state was dropped where it was found: ``_fresh``, ``_load_saved_state``.)
        """
        self._job.resume = None
        part = PartFile(final, url=self._shown)
        try:
            self._started(final, reader.expected, 0)
            hasher = self._new_hasher()
            settings = self._ctx.settings
            size = settings.chunk_size if reader.expected is None else max(1, min(settings.chunk_size, reader.expected))
            buffer = memoryview(bytearray(size))  # reused by every read of this body
            copy = ChunkCopy(part=part, count=self._count, buckets=self._buckets,
                             cancel_event=settings.cancel_event, shown=self._shown)
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
                self._url, path=final, total_bytes=total, attempt=self._attempts.count, bytes_downloaded=done):
            raise DownloadCancelledError("cancelled", url=self._shown)
        if self._ctx.emitter.is_listening(DownloadStarted):
            self._ctx.emitter.emit(DownloadStarted(url=self._shown, path=final, total_bytes=total,
                                                   attempt=self._attempts.count))

    def _count(self, count: int) -> None:
        done = self._ctx.tracker.add_bytes(self._url, count)
        emitter = self._ctx.emitter
        if emitter.is_listening(ChunkDownloaded):
            emitter.emit(ChunkDownloaded(url=self._shown, bytes_downloaded=count, total_downloaded=done,
                                         total_bytes=self._total))

    def _parallel_mirrors(self) -> tuple[str, ...]:
        """Mirrors whose lanes may fetch ranges beside this source's: only with a checksum,
        which proves at the end that every range came from the same bytes (equal sizes alone
        could splice two versions); without one, mirrors take over one after another."""
        request, job = self._job.request, self._job
        if request.checksum is None:
            return ()
        return tuple(source for index, source in enumerate(request.sources)
                     if source != self._source and index not in job.dead_sources)

    def _announce_restart(self, why: str) -> None:
        """Say that the bytes kept so far were dropped and the download starts over."""
        logger.info("%s: restarting from zero: %s", self._shown, why)
        if self._ctx.emitter.is_listening(DownloadRetrying):
            self._ctx.emitter.emit(DownloadRetrying(
                url=self._shown, attempt=self._attempts.count, delay=0.0, reason=f"restarting from zero: {why}"))

    def _lanes(self, total: int) -> int:
        settings, request = self._ctx.settings, self._job.request
        wanted = min(request.segments or settings.max_segments, self._job.lane_cap)
        return max(1, min(wanted, total // settings.min_segment_size))

    def _check_size(self, total: int | None) -> None:
        expected = self._job.request.expected_size
        if expected is not None and total is not None and total != expected:
            raise SizeMismatchError(f"{self._shown} is {total} bytes, expected {expected}",
                                    expected=expected, actual=total, url=self._shown)

    def _new_hasher(self) -> Hasher | None:
        checksum = self._job.request.checksum
        return checksum.new_hasher() if checksum is not None else None

    def _finish(self, part: PartFile, size: int, hasher: Hasher | None) -> Path:
        """Verify size and checksum, then move the part file to its final name."""
        self._check_size(size)
        checksum = self._job.request.checksum
        if checksum is not None:
            actual = hasher.hexdigest() if hasher is not None else _hash_file(part.path, checksum)
            if actual != checksum.hexdigest:
                raise ChecksumMismatchError(
                    f"{self._shown}: {checksum.algorithm} is {actual}, expected {checksum.hexdigest}",
                    algorithm=checksum.algorithm, expected=checksum.hexdigest, actual=actual, url=self._shown)
        if self._ctx.settings.cancel_event.is_set() or not self._job.claim(Owner.WORKER):
            raise DownloadCancelledError("cancelled", url=self._shown)
        self._ctx.tracker.set_bytes(self._url, size)  # bytes fetched twice (a takeover) count once
        path = part.commit()
        if self._job.request.if_changed:
            remember_validators(path, self._validators)
        state = self._job.resume
        if state is not None and state.persisted:
            sidecar.delete(path)
        self._job.resume = None
        return path

    def _forget(self, *, discard: bool) -> None:
        """Drop what is known of the partial file (and with ``discard`` the file itself)."""
        job = self._job
        job.resume = None
        if job.claimed_path is not None:
            sidecar.delete(job.claimed_path)
            if discard:
                part_path(job.claimed_path).unlink(missing_ok=True)


def _mirror_is_dead(error: DownloadError) -> bool:
    if isinstance(error, HTTPStatusError):
        return 400 <= error.status < 500 and error.status not in (408, 429)
    return isinstance(error, (RedirectError, TLSError))


_ETAG_ATTRIBUTE = "user.pydownloads.etag"


def conditional_headers(path: Path) -> dict[str, str]:
    """``If-None-Match`` (the ETag kept with the file) and ``If-Modified-Since`` (its time)."""
    headers = {"If-Modified-Since": email.utils.formatdate(path.stat().st_mtime, usegmt=True)}
    with contextlib.suppress(OSError, AttributeError):  # no extended attributes here
        headers["If-None-Match"] = os.getxattr(path, _ETAG_ATTRIBUTE).decode("ascii")
    return headers


def remember_validators(path: Path, validators: tuple[str | None, str | None]) -> None:
    """Keep the server's validators with the file for the next ``if_changed`` check: the
    ETag in an extended attribute (where the file system has them), Last-Modified as the
    file's time (as wget -N does)."""
    etag, modified = validators
    if modified:
        with contextlib.suppress(TypeError, ValueError, OSError):
            when = email.utils.parsedate_to_datetime(modified).timestamp()
            os.utime(path, (when, when))
    if etag:
        with contextlib.suppress(OSError, AttributeError):
            os.setxattr(path, _ETAG_ATTRIBUTE, etag.encode("ascii", "replace"))


def _part_holds(final: Path, state: ResumeState) -> bool:
    """True when the part file exists and is long enough for the ranges said done."""
    try:
        size = part_path(final).stat().st_size
    except OSError:
        return False
    return all(end <= size for _, end in state.ranges)


def _hash_file(path: Path, checksum: Checksum) -> str:
    hasher = hashlib.new(checksum.algorithm)
    try:
        with open(path, "rb") as file:
            while block := file.read(1 << 20):
                hasher.update(block)
    except OSError as error:
        raise FileSystemError(f"cannot read {path} back to check it: {error.strerror or error}",
                              cause=error) from error
    return hasher.hexdigest()


