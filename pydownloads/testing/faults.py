"""The faults a :class:`~pydownloads.testing.LocalServer` injects, one request each."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

__all__ = [
    "AUTO",
    "Fault",
    "IgnoreRange",
    "ResetAfter",
    "ShortBody",
    "Slow",
    "Stall",
    "StallHeaders",
    "Status",
    "WrongRange",
]


class _Auto(enum.Enum):
    AUTO = enum.auto()


AUTO: Final = _Auto.AUTO
"""Default for ``etag``: a strong ETag computed from the sha256 of the data."""
Auto = _Auto  # the type of AUTO, for annotations in the server


@dataclass(frozen=True)
class Status:
    """Answer with ``code``, extra ``headers`` and ``body`` (Content-Length added)."""

    code: int
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    body: bytes = b""


@dataclass(frozen=True)
class ResetAfter:
    """Normal headers, ``nbytes`` of the body, then abort the connection with a TCP RST."""

    nbytes: int


@dataclass(frozen=True)
class ShortBody:
    """Normal headers, ``nbytes`` of the body, then a clean close (FIN)."""

    nbytes: int


@dataclass(frozen=True)
class Stall:
    """Normal headers, ``after_bytes`` of the body, wait ``seconds``, then close."""

    seconds: float
    after_bytes: int = 0


@dataclass(frozen=True)
class StallHeaders:
    """Wait ``seconds`` before sending anything, then close without answering."""

    seconds: float


@dataclass(frozen=True)
class IgnoreRange:
    """Answer this request with the whole file (200), as if ``Range`` had not been sent."""


@dataclass(frozen=True)
class WrongRange:
    """Answer a ``Range`` request with a 206 that starts ``shift`` bytes off (a server bug)."""

    shift: int


@dataclass(frozen=True)
class Slow:
    """Send this response's body at ``rate`` bytes per second."""

    rate: int


Fault = Status | ResetAfter | ShortBody | Stall | StallHeaders | IgnoreRange | WrongRange | Slow
