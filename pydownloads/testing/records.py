"""What a :class:`~pydownloads.testing.LocalServer` remembers of the requests it saw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydownloads.testing.faults import Fault

__all__ = ["Headers", "RequestRecord"]


class Headers(dict[str, str]):
    """A ``dict`` of request headers whose lookups ignore case (keys as received)."""

    def _key(self, name: str) -> str | None:
        lowered = name.lower()
        return next((k for k in self if k.lower() == lowered), None)

    def __getitem__(self, name: str) -> str:
        key = self._key(name)
        if key is None:
            raise KeyError(name)
        return super().__getitem__(key)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) is not None

    def get(self, name: str, default: Any = None) -> Any:
        key = self._key(name)
        return default if key is None else super().__getitem__(key)


@dataclass(frozen=True)
class RequestRecord:
    """One request as seen by the server.

    ``path`` excludes the query string (``target`` is the raw request target);
    times are :func:`time.monotonic` values; ``client_port`` identifies the TCP
    connection (equal ports = keep-alive reuse); ``status`` is set just before
    the response head is written (``None`` if nothing was answered);
    ``finished_at`` is set when the server is done with the request; ``fault``
    is the fault this request consumed; ``seq`` numbers requests from 0.
    """

    method: str
    path: str
    headers: Headers
    range: str | None
    started_at: float
    target: str
    client_port: int
    fault: Fault | None = None
    status: int | None = None
    finished_at: float | None = None
    seq: int = 0
