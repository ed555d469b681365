"""Speed floor and total deadline of one stream, checked per chunk in O(1)."""

from __future__ import annotations

import time

from pydownloads.domain.errors import DeadlineExceededError, DownloadTimeoutError
from pydownloads.downloads.settings import TransferSettings


class Pace:
    """Fails a stream slower than ``min_speed`` over ``min_speed_window`` seconds, or past
    ``deadline_at``; a server dripping bytes beats a read timeout, not this."""

    __slots__ = ("_deadline_at", "_floor", "_url", "_window", "_window_bytes", "_window_start")

    def __init__(self, settings: TransferSettings, url: str, deadline_at: float | None) -> None:
        self._floor = settings.min_speed
        self._window = settings.min_speed_window
        self._deadline_at = deadline_at
        self._url = url
        self._window_start = time.monotonic()
        self._window_bytes = 0

    def check(self, count: int, *, paused: float = 0.0) -> None:
        """Account ``count`` more bytes; raise when too slow or too late.

        :param paused: seconds just spent waiting on our own rate limit, which do not count
            against the server's speed.
        """
        if self._floor is None and self._deadline_at is None:
            return
        now = time.monotonic()
        if self._deadline_at is not None and now > self._deadline_at:
            raise DeadlineExceededError(f"{self._url} passed its deadline", url=self._url)
        if self._floor is None:
            return
        self._window_start += paused
        self._window_bytes += count
        elapsed = now - self._window_start
        if elapsed >= self._window:
            if self._window_bytes < self._floor * elapsed:
                raise DownloadTimeoutError(
                    f"{self._url} sent {self._window_bytes} bytes in {elapsed:.1f} s, "
                    f"under the minimum of {self._floor:.0f} bytes/s", url=self._url)
            self._window_start, self._window_bytes = now, 0
