"""One queued download as the machinery sees it, and who gets to settle its outcome."""

from __future__ import annotations

import enum
import functools
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydownloads.domain.checksum import Checksum
from pydownloads.domain.errors import DestinationConflictError, InvalidArgumentError
from pydownloads.domain.models import FileConfig
from pydownloads.downloads.state import DownloadState
from pydownloads.infrastructure.limits import TokenBucket
from pydownloads.infrastructure.paths import (
    PART_SUFFIX,
    checked_below,
    name_from_url,
    safe_component,
    subdir_parts,
)
from pydownloads.infrastructure.sidecar import SIDECAR_SUFFIX


@dataclass(frozen=True, kw_only=True)
class DownloadRequest:
    """Where and how to fetch one URL: validated, with the folder already made safe."""

    url: str
    root: Path
    #: ``root`` resolved once (``os.path.realpath``), for the per-file containment check.
    base: str = ""
    subdir: tuple[str, ...] = ()
    filename: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    checksum: Checksum | None = None
    expected_size: int | None = None
    segments: int | None = None
    rate_limit: float | None = None
    if_changed: bool = False
    mirrors: tuple[str, ...] = ()
    continue_partial: bool = False

    @staticmethod
    def check(config: FileConfig) -> None:
        """The checks of :meth:`from_config` that need no file system (for fast queueing).

        :raises InvalidArgumentError: the subfolder or file name is unusable or leaves the root.
        """
        if config.destination_subdir:
            subdir_parts(config.destination_subdir)
        if config.filename is not None and safe_component(config.filename) is None:
            raise InvalidArgumentError(f"filename {config.filename!r} has no usable name in it")

    @classmethod
    def from_config(cls, config: FileConfig, root: Path, *, base: str | None = None) -> DownloadRequest:
        """Check a FileConfig against ``root``.

        :param base: ``os.path.realpath(root)``, when the caller resolved it already (once for
            many requests: the subfolder below it is still checked, symbolic links included).
        :raises InvalidArgumentError: the subfolder or file name would leave ``root`` or is empty.
        """
        subdir = tuple(subdir_parts(config.destination_subdir)) if config.destination_subdir else ()
        filename = None
        if config.filename is not None:
            filename = safe_component(config.filename)
            if filename is None:
                raise InvalidArgumentError(f"filename {config.filename!r} has no usable name in it")
        if base is None:
            base = os.path.realpath(root)
        if subdir:
            checked_below(base, *subdir)
        return cls(
            url=config.url, root=root, base=base, subdir=subdir, filename=filename, headers=config.headers,
            checksum=config.parsed_checksum, expected_size=config.expected_size, segments=config.segments,
            rate_limit=config.rate_limit, if_changed=config.if_changed, mirrors=config.mirrors,
            continue_partial=config.continue_partial,
        )

    @property
    def sources(self) -> tuple[str, ...]:
        """The URL and its mirrors, in the order they are tried."""
        return (self.url, *self.mirrors)

    def predicted_destination(self, known: Path | None = None) -> Path | None:
        """The final path if the response cannot change it (explicit filename), else the
        URL-derived one, which a Content-Disposition header may still override.

        :param known: a Path made for it already (the one claimed at queueing): returned
            when it is the same path, so that no other is made.
        """
        name = self.filename or self.url_name
        return self.destination(name, known) if name else None

    @functools.cached_property
    def url_name(self) -> str | None:
        """The URL's last path segment made safe (:func:`name_from_url`), computed once."""
        return name_from_url(self.url)

    def destination(self, name: str, known: Path | None = None) -> Path:
        """The final path for file ``name``, checked to stay inside ``root`` (``known``: as
        in :meth:`predicted_destination`)."""
        candidate = checked_below(self.base or os.path.realpath(self.root), *self.subdir, name)
        return known if known is not None and str(known) == candidate else Path(candidate)


class Owner(enum.Enum):
    """Who settled a job's outcome: the worker that ran it, or a shutdown that cancelled it."""

    WORKER = "worker"
    SHUTDOWN = "shutdown"


class DownloadJob:
    """A request on its way through the queue and a worker.

    The outcome is settled exactly once: the first of the worker (about to finish) and a
    shutdown (cancelling) to :meth:`claim` it wins; the loser leaves the tracker alone.
    Whoever wins also marks the queue task done.  What the download learns and decides
    between its attempts lives in ``state`` (:class:`DownloadState`).
    """

    __slots__ = ("_lock", "abort", "bucket", "owner", "priority", "refused", "renamed", "request", "state")

    def __init__(self, request: DownloadRequest, priority: int = 0) -> None:
        self.request = request
        self.priority = priority
        self._lock = threading.Lock()
        self.owner: Owner | None = None
        #: Unblocks the running attempt from another thread (hard shutdown); None when idle.
        self.abort: Callable[[], None] | None = None
        self.state = DownloadState(request.sources, segments=request.segments)
        self.bucket = TokenBucket(request.rate_limit) if request.rate_limit else None
        #: Set by :class:`NameClaims` when a download queued before holds this one's name:
        #: the free ``name (n).ext`` it goes to instead (``on_existing="rename"``) ...
        self.renamed: Path | None = None
        #: ... or, otherwise, the conflict it fails with (whatever the timing).
        self.refused: DestinationConflictError | None = None

    @property
    def url(self) -> str:
        return self.request.url

    def claim(self, owner: Owner) -> bool:
        """Take the right to settle the outcome; True if ``owner`` has it (now or already)."""
        with self._lock:
            if self.owner is None:
                self.owner = owner
            return self.owner is owner


class PathClaims:
    """Final paths owned by downloads of one worker, so that two never share a file.

    A claim covers the final path and the part and state files beside it, but only the
    final path is kept (one string a claim, not three); a new claim looks up every final
    path whose files would meet its own.  Without a state file, claims stay for the whole
    run.  With one (:meth:`bind`), a completed download's claim goes (:meth:`completed`):
    the state file answers for it from then on, so memory does not grow with the files done.
    Thread-safe; O(1) per call under one lock (one indexed query with a state file).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[str, str] = {}  # final path -> URL
        self._completed: Callable[[Sequence[str]], Mapping[str, Sequence[str]]] | None = None

    def bind(self, completed_owners: Callable[[Sequence[str]], Mapping[str, Sequence[str]]]) -> None:
        """Ask ``completed_owners(paths)`` for the downloads completed this run (their claims
        given up): for each of ``paths`` some were completed to, their URLs."""
        with self._lock:
            self._completed = completed_owners

    def claim(self, path: Path, url: str) -> None:
        """Own ``path`` and the part and state files beside it for ``url``.

        :raises DestinationConflictError: another URL owns one of them in this run.
        """
        owner = self.try_claim(path, url)
        if owner is not None:
            raise conflict(path, owner, url)

    def try_claim(self, path: Path, url: str) -> str | None:
        """Like :meth:`claim`, without raising: None when ``url`` owns ``path`` now, else the
        URL that owns it (or one of the files beside it)."""
        return self.try_claim_all([(path, url)])[0]

    def try_claim_all(self, wanted: Sequence[tuple[Path, str]]) -> list[str | None]:
        """:meth:`try_claim` for each ``(path, url)`` in turn, the state file asked once for all."""
        names = [str(path) for path, _ in wanted]
        keys = [_neighbours(name) for name in names]
        with self._lock:
            done: Mapping[str, Sequence[str]] = {}
            if self._completed is not None:  # what no claim holds now may be a completed download's
                asked = [key for name, near in zip(names, keys, strict=True) if name not in self._owners
                         for key in near]
                done = self._completed(asked) if asked else {}
            return [self._claim(name, near, url, done)
                    for name, near, (_, url) in zip(names, keys, wanted, strict=True)]

    def _claim(self, name: str, keys: list[str], url: str, done: Mapping[str, Sequence[str]]) -> str | None:
        """One claim of :meth:`try_claim_all` (under the lock); ``done``: the completed owners."""
        for key in keys:
            owner = self._owners.get(key)
            if owner is not None and owner != url:
                return owner
        if name not in self._owners:
            for key in keys:
                owner = next((other for other in done.get(key, ()) if other != url), None)
                if owner is not None:
                    return owner
        self._owners[name] = url
        return None

    def release(self, path: Path, url: str) -> None:
        """Give ``path`` up, if ``url`` owns it."""
        name = str(path)
        with self._lock:
            if self._owners.get(name) == url:
                del self._owners[name]

    def completed(self, path: Path, url: str) -> None:
        """``url`` completed to ``path`` (its final status recorded): with a state file bound
        its claim goes, the state file holding the path; else it stays for the run."""
        if self._completed is not None:
            self.release(path, url)

def _neighbours(name: str) -> list[str]:
    """The final paths whose file, part file or state file would be one of ``name``'s three.

    ``X`` shares a file with ``name`` when one is the other, or the other's part or state
    file (``.part`` and ``.part.json`` end differently, so no part meets a state file).
    """
    keys = [name, name + PART_SUFFIX, name + SIDECAR_SUFFIX]
    for suffix in (PART_SUFFIX, SIDECAR_SUFFIX):
        if name.endswith(suffix):
            keys.append(name[: -len(suffix)])
    return keys


def conflict(path: Path, owner: str, url: str) -> DestinationConflictError:
    """The error of ``url`` finding ``path`` owned by the download of ``owner``."""
    return DestinationConflictError(
        f"{path.name} is already the destination of {owner}; give this download "
        "another filename or destination_subdir",
        path=str(path), other_url=owner, url=url,
    )


def claim_free_name(claims: PathClaims, final: Path, url: str) -> Path:
    """The first ``name (n).ext`` beside ``final`` that is neither a file already nor owned
    by another download of the run, claimed for ``url`` (``on_existing="rename"``).

    :raises DestinationConflictError: the first 9,999 numbers are all taken.
    """
    for number in range(1, 10_000):
        candidate = final.with_name(f"{final.stem} ({number}){final.suffix}")
        if not candidate.exists() and claims.try_claim(candidate, url) is None:
            return candidate
    raise DestinationConflictError(f"no free name beside {final.name}", path=str(final), other_url="", url=url)


class NameClaims:
    """Claims the destination of each download as it is queued, when its name is known
    before any response (its ``filename``, else its URL's): the first queued keeps a
    contested name, whatever the timing of the downloads later.  A later one goes to the
    first free ``name (n).ext`` with ``rename`` (``on_existing="rename"``), or fails with
    :class:`DestinationConflictError` when it runs.

    Queue order is the order the workers take downloads: priority, then input order.  Names
    only a server's Content-Disposition gives are claimed when the response arrives instead
    (see :class:`~pydownloads.downloads.destination.Destination`).

    Thread-safe (PathClaims is); with ``rename`` a stat per download (a file already there
    is renamed around in queue order too), none otherwise.
    """

    def __init__(self, claims: PathClaims, *, rename: bool) -> None:
        self.claims, self.rename = claims, rename

    def reserve(self, jobs: Iterable[DownloadJob]) -> None:
        """Claim the names of ``jobs``, higher priority first, then in the order given."""
        folders: dict[tuple[str, tuple[str, ...]], Path] = {}  # one Path per folder: cheaper children
        ordered = sorted(jobs, key=_queue_order)
        if self.rename:
            for job in ordered:
                self._reserve(job, folders)
            return
        named = [(job, path) for job in ordered if (path := self._path(job, folders)) is not None]
        owners = self.claims.try_claim_all([(path, job.url) for job, path in named])  # one query for all
        for (job, path), owner in zip(named, owners, strict=True):
            if owner is None:
                job.state.claimed(path)
            else:
                job.refused = conflict(path, owner, job.url)

    @staticmethod
    def _path(job: DownloadJob, folders: dict[tuple[str, tuple[str, ...]], Path]) -> Path | None:
        """The final path of ``job`` if its name is known before any response, else None."""
        request = job.request
        name = request.filename or request.url_name
        if name is None:
            return None
        folder = folders.get((request.base, request.subdir))
        if folder is None:
            folder = Path(request.base or os.path.realpath(request.root), *request.subdir)
            folders[(request.base, request.subdir)] = folder
        return folder / name  # no containment check here (it looks at the disk): each attempt makes it

    def _reserve(self, job: DownloadJob, folders: dict[tuple[str, tuple[str, ...]], Path]) -> None:
        """Claim the name of ``job`` with ``rename``: a name taken goes to ``name (n).ext``."""
        path = self._path(job, folders)
        if path is None:
            return
        if not job.request.if_changed and path.is_file():
            self._rename(job, path)  # renamed around the file already there now: numbers in queue order too
            return
        if self.claims.try_claim(path, job.url) is None:
            job.state.claimed(path)
        else:
            self._rename(job, path)

    def _rename(self, job: DownloadJob, path: Path) -> None:
        try:
            job.renamed = claim_free_name(self.claims, path, job.url)
        except DestinationConflictError as error:
            job.refused = error
            return
        job.state.claimed(job.renamed)


def _queue_order(job: DownloadJob) -> int:
    return -job.priority
