"""One queued download as the machinery sees it, and who gets to settle its outcome."""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydownloads.domain.errors import DestinationConflictError, InvalidArgumentError
from pydownloads.domain.models import FileConfig
from pydownloads.infrastructure.paths import contained_path, safe_component, subdir_parts

if TYPE_CHECKING:
    import requests


@dataclass(frozen=True, kw_only=True)
class DownloadRequest:
    """Where and how to fetch one URL: validated, with the folder already made safe."""

    url: str
    root: Path
    subdir: tuple[str, ...] = ()
    filename: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

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
        contained_path(root, *subdir)
        return cls(url=config.url, root=root, subdir=subdir, filename=filename, headers=config.headers)

    def destination(self, name: str) -> Path:
        """The final path for file ``name``, checked to stay inside ``root``."""
        return contained_path(self.root, *self.subdir, name)


class Owner(enum.Enum):
    """Who settled a job's outcome: the worker that ran it, or a shutdown that cancelled it."""

    WORKER = "worker"
    SHUTDOWN = "shutdown"


class DownloadJob:
    """A request on its way through the queue and a worker.

    The outcome is settled exactly once: the first of the worker (about to finish) and a
    shutdown (cancelling) to :meth:`claim` it wins; the loser leaves the tracker alone.
    Whoever wins also marks the queue task done.
    """

    __slots__ = ("_lock", "claimed_path", "owner", "priority", "request", "response")

    def __init__(self, request: DownloadRequest, priority: int = 0) -> None:
        self.request = request
        self.priority = priority
        self._lock = threading.Lock()
        self.owner: Owner | None = None
        #: The response being streamed, so that a hard shutdown can abort it.
        self.response: requests.Response | None = None
        self.claimed_path: Path | None = None

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
        self._owners: dict[Path, str] = {}

    def claim(self, path: Path, url: str) -> None:
        """Own ``path`` for ``url``.

        :raises DestinationConflictError: another URL owns it in this run.
        """
        with self._lock:
            owner = self._owners.setdefault(path, url)
        if owner != url:
            raise DestinationConflictError(
                f"{path.name} is already the destination of {owner}; give this download "
                "another filename or destination_subdir",
                path=str(path), other_url=owner, url=url,
            )

    def release(self, path: Path, url: str) -> None:
        """Give ``path`` up, if ``url`` owns it."""
        with self._lock:
            if self._owners.get(path) == url:
                del self._owners[path]
