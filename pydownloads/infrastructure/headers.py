"""What a response's headers say: lengths, ranges, validators, ``Retry-After``, its host.

Pure functions of the headers (no I/O); ``transport`` re-exports them, where their callers
know them.
"""

from __future__ import annotations

import email.utils
import re
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import requests


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks for (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if _DIGITS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def content_length(response: requests.Response) -> int | None:
    """The announced body length, or None when absent or not believable."""
    raw = response.headers.get("Content-Length")
    if raw is None or "Transfer-Encoding" in response.headers:
        return None  # RFC 9112: Transfer-Encoding overrides any Content-Length
    values = {part.strip() for part in raw.split(",")}
    if len(values) != 1:
        return None
    value = values.pop()
    return int(value) if _DIGITS.fullmatch(value) else None


_DIGITS = re.compile(r"[0-9]{1,18}")
_CONTENT_RANGE = re.compile(r"\s*bytes\s+([0-9]{1,18})-([0-9]{1,18})/([0-9]{1,18}|\*)\s*", re.IGNORECASE)


def content_range(response: requests.Response) -> tuple[int, int, int | None] | None:
    """``(first, last, total)`` of a 206's ``Content-Range`` (last inclusive), or None."""
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    if match is None:
        return None
    first, last, total = int(match[1]), int(match[2]), match[3]
    if last < first:
        return None
    return first, last, None if total == "*" else int(total)


def validators(response: requests.Response, *, weak: bool = False) -> tuple[str | None, str | None]:
    """``(strong ETag, Last-Modified)``; a weak ETag cannot validate ranges (``If-Range``
    compares strongly), so it is None unless ``weak``: ``If-None-Match`` compares weakly."""
    etag = response.headers.get("ETag")
    opaque = etag.removeprefix("W/") if weak and etag is not None else etag  # the quoted part
    if opaque is not None and not opaque.startswith('"'):
        etag = None
    return etag, response.headers.get("Last-Modified")


def accepts_ranges(response: requests.Response) -> bool:
    """True when the server says it serves byte ranges."""
    return "bytes" in response.headers.get("Accept-Ranges", "").lower()


def host_of(url: str) -> str:
    """``scheme://host:port`` of ``url``: the unit connection limits count in."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
