"""The typed events of a download's life: frozen snapshots, safe to keep and to pickle."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from pydownloads.domain.redact import redact_text, redact_url


@dataclass(frozen=True, kw_only=True)
class DownloadEvent:
    """Base of every event: which download (``url``, its credentials redacted here) and when."""

    url: str
    timestamp: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        # An event is where a download's URL leaves the program: its credentials go here.
        if "@" in self.url:
            object.__setattr__(self, "url", redact_url(self.url))


@dataclass(frozen=True, kw_only=True)
class DownloadQueued(DownloadEvent):
    """The download was put on the queue."""

    priority: int


@dataclass(frozen=True, kw_only=True)
class DownloadStarted(DownloadEvent):
    """An attempt got a response and its body is about to stream into ``path``'s part file."""

    path: Path
    total_bytes: int | None
    attempt: int


@dataclass(frozen=True, kw_only=True)
class ChunkDownloaded(DownloadEvent):
    """A piece of the body was written: ``bytes_downloaded`` in this piece, ``total_downloaded`` so far."""

    bytes_downloaded: int
    total_downloaded: int
    total_bytes: int | None


@dataclass(frozen=True, kw_only=True)
class DownloadCompleted(DownloadEvent):
    """The file is complete under its final name."""

    path: Path
    bytes_downloaded: int
    elapsed: float
    attempts: int


@dataclass(frozen=True, kw_only=True)
class DownloadFailed(DownloadEvent):
    """The download gave up; nothing is left under the final name."""

    error: str
    error_type: str
    attempts: int

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "error", redact_text(self.error))


@dataclass(frozen=True, kw_only=True)
class DownloadRetrying(DownloadEvent):
    """Attempt ``attempt`` will start after ``delay`` seconds, because of ``reason``; with
    ``restart``, attempt ``attempt`` goes on at once from byte zero (the bytes kept so far
    were dropped)."""

    attempt: int
    delay: float
    reason: str
    restart: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "reason", redact_text(self.reason))


@dataclass(frozen=True, kw_only=True)
class DownloadCancelled(DownloadEvent):
    """A shutdown stopped the download (or it never started)."""

    bytes_downloaded: int
