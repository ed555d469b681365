"""One queued download as the machinery sees it, and who gets to settle its outcome."""

from __future__ import annotations

import enum
import functools
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydownloads.domain.checksum import Checksum
from pydownloads.domain.errors import DestinationConflictError, InvalidArgumentError
from pydownloads.domain.models import FileConfig
from pydownloads.downloads.state import DownloadState
from pydownloads.infrastructure.limits import TokenBucket
from pydownloads.infrastructure.paths import PART_SUFFIX, contained_in, name_from_url, safe_component, subdir_parts
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
    def from_config(cls, config: FileConfig, root: Path) -> DownloadRequest:
        """Check a FileConfig against ``root``.

        :raises InvalidArgumentError: the subfolder or file name would leave ``root`` or is empty.
        """
        subdir = tuple(subdir_parts(config.destination_subdir)) if config.destination_subdir else ()
        filename = None
        if config.filename is not None:
            filename = safe_component(config.filename)
            if filename is None:
                raise InvalidArgumentError(f"filename {config.filename!r} has no usable name in it")
        base = os.path.realpath(root)
        contained_in(base, *subdir)
        return cls(
            url=config.url, root=root, base=base, subdir=subdir, filename=filename, headers=config.headers,
            checksum=config.parsed_checksum, expected_size=config.expected_size, segments=config.segments,
            rate_limit=config.rate_limit, if_changed=config.if_changed, mirrors=config.mirrors,
        )

    @property
    def sources(self) -> tuple[str, ...]:
        """The URL and its mirrors, in the order they are tried."""
        return (self.url, *self.mirrors)

    def predicted_destination(self) -> Path | None:
        """The final path if the response cannot change it (explicit filename), else the
        URL-derived one, which a Content-Disposition header may still override."""
        name = self.filename or self.url_name
        return self.destination(name) if name else None

    @functools.cached_property
    def url_name(self) -> str | None:
        """The URL's last path segment made safe (:func:`name_from_url`), computed once."""
        return name_from_url(self.url)

    def destination(self, name: str) -> Path:
        """The final path for file ``name``, checked to stay inside ``root``."""
        return contained_in(self.base or os.path.realpath(self.root), *self.subdir, name)


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

    __slots__ = ("_lock", "abort", "bucket", "owner", "priority", "request", "state")

    def __init__(self, request: DownloadRequest, priority: int = 0) -> None:
        self.request = request
        self.priority = priority
        self._lock = threading.Lock()
        self.owner: Owner | None = None
        #: Unblocks the running attempt from another thread (hard shutdown); None when idle.
        self.abort: Callable[[], None] | None = None
        self.state = DownloadState(request.sources, segments=request.segments)
        self.bucket = TokenBucket(request.rate_limit) if request.rate_limit else None

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

    Thread-safe; O(1) per call under one lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[str, str] = {}  # final, part and state file paths -> URL

    def claim(self, path: Path, url: str) -> None:
        """Own ``path`` and the part and state files beside it for ``url``.

        :raises DestinationConflictError: another URL owns one of them in this run.
        """
        keys = _keys(path)
        with self._lock:
            owners = {self._owners.get(key, url) for key in keys} - {url}
            if not owners:
                for key in keys:
                    self._owners[key] = url
        if owners:
            owner = owners.pop()
            raise DestinationConflictError(
                f"{path.name} is already the destination of {owner}; give this download "
                "another filename or destination_subdir",
                path=str(path), other_url=owner, url=url,
            )

    def release(self, path: Path, url: str) -> None:
        """Give ``path`` up, if ``url`` owns it."""
        with self._lock:
            for key in _keys(path):
                if self._owners.get(key) == url:
                    del self._owners[key]


def _keys(path: Path) -> tuple[str, str, str]:
    """``path``, its part file and its state file, as text (cheaper than three Paths)."""
    name = str(path)
    return name, name + PART_SUFFIX, name + SIDECAR_SUFFIX
