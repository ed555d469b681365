"""What one download's requests carry to the transport retries, passed with each request.

urllib3 retries a request before its body starts (``infrastructure.retries``).  A download
hands its :class:`RetryListener` to each of its requests (``transport.send_get(...,
retries=)``); the session passes it on to the adapter as ``request_retry=`` (requests'
``Session.send`` hands unknown keywords to the adapter, redirects included), which gives the
request a urllib3 Retry of its own: no more retries than the download has left, its waits
reported to the listener, and the header watchdog told the download's deadline.
"""

from __future__ import annotations

from typing import Protocol

from pydownloads.domain.errors import DownloadError


class RetryListener(Protocol):
    """One download as the transport retries of its requests see it.

    Handed explicitly with each request (``send_get(..., retries=)``), never through a
    thread-local; called from urllib3's retry loop, so none of it raises.
    """

    @property
    def deadline_at(self) -> float | None:
        """``time.monotonic()`` by which the download ends, if it has a deadline."""

    def retries_left(self) -> int:
        """Transport retries the next request may still make (0: its first failure ends it)."""

    def retrying(self, delay: float, reason: str) -> DownloadError | None:
        """urllib3 is about to wait ``delay`` s and retry after ``reason``: count the retry,
        then report it, or return the error that ends the wait instead (it would pass the
        download's deadline; nothing is reported then)."""

    def exhausted(self, reason: str, status: int | None) -> DownloadError:
        """The error that says the download's retries ran out on ``reason`` (or ``status``)."""


class RequestRetry:
    """One request (its redirects included) as its transport retries see it: the download's
    listener, and ``spent``, the listener's error, set when urllib3 ended the retries because
    the download's budget (not the request's own) ran out."""

    __slots__ = ("listener", "spent")

    def __init__(self, listener: RetryListener) -> None:
        self.listener = listener
        self.spent: DownloadError | None = None
