"""Typed download events and the emitter that carries them on blinker signals."""

from pydownloads.events.emitter import EVENT_NAMES, SIGNALS, EventEmitter
from pydownloads.events.types import (
    ChunkDownloaded,
    DownloadCancelled,
    DownloadCompleted,
    DownloadEvent,
    DownloadFailed,
    DownloadQueued,
    DownloadRetrying,
    DownloadStarted,
)

__all__ = [
    "EVENT_NAMES",
    "SIGNALS",
    "ChunkDownloaded",
    "DownloadCancelled",
    "DownloadCompleted",
    "DownloadEvent",
    "DownloadFailed",
    "DownloadQueued",
    "DownloadRetrying",
    "DownloadStarted",
    "EventEmitter",
]
