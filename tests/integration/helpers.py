"""Shared helpers for integration tests: deterministic payloads and event recording."""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path

from pydownloads.events import EventEmitter
from tests.support import wait_until

__all__ = ["EventLog", "file_sha256", "files_under", "payload", "sha256", "wait_until"]  # wait_until: tests.support's


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` deterministic pseudo-random bytes."""
    return random.Random(seed).randbytes(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class EventLog:
    """Records every event of an emitter, thread-safely, in arrival order."""

    def __init__(self, emitter: EventEmitter) -> None:
        self._lock = threading.Lock()
        self.events: list[object] = []
        for name in emitter.names:
            emitter.on(name, self._record)

    def _record(self, event: object) -> None:
        with self._lock:
            self.events.append(event)

    def kinds(self, url: str | None = None) -> list[str]:
        with self._lock:
            return [type(e).__name__ for e in self.events if url is None or getattr(e, "url", None) == url]

    def of(self, kind: str) -> list[object]:
        with self._lock:
            return [e for e in self.events if type(e).__name__ == kind]


def files_under(root: Path) -> list[Path]:
    """Every file below ``root`` (sorted), to check nothing stray was left."""
    return sorted(p for p in root.rglob("*") if p.is_file())
