"""The one boundary where requests and urllib3 meet pydownloads.

Every exception requests or urllib3 can raise is translated here into the DownloadError
tree, with the URL (redacted) and the original as ``cause``.  No other module catches them.
"""

from __future__ import annotations

import contextlib
import email.utils
import socket
import time
from collections.abc import Mapping
from typing import NoReturn

import requests
import requests.exceptions as rex
import urllib3.exceptions as uex

from pydownloads.domain.errors import (
    DownloadError,
    DownloadTimeoutError,
    HTTPStatusError,
    IncompleteDownloadError,
    RedirectError,
    TLSError,
    TransferError,
)
from pydownloads.infrastructure.redact import redact_url

Timeout = float | tuple[float, float]


def translate(error: BaseException, url: str) -> DownloadError:
    """The DownloadError that says what ``error`` (from requests/urllib3/sockets) means."""
    shown = redact_url(url)
    if isinstance(error, DownloadError):
        return error
    if isinstance(error, rex.ConnectTimeout):
        return DownloadTimeoutError(f"timed out connecting to {shown}", url=shown, cause=error)
    if isinstance(error, (rex.ReadTimeout, uex.ReadTimeoutError, socket.timeout)):
        return DownloadTimeoutError(f"timed out waiting for data from {shown}", url=shown, cause=error)
    if isinstance(error, (rex.SSLError, uex.SSLError)):
        return TLSError(f"TLS failed for {shown}: {error}", url=shown, cause=error)
    if isinstance(error, rex.TooManyRedirects):
        return RedirectError(f"too many redirects from {shown}", url=shown, cause=error)
    if isinstance(error, (rex.InvalidSchema, rex.InvalidURL, rex.MissingSchema)):
        return RedirectError(f"{shown} led to a URL that cannot be downloaded: {error}", url=shown, cause=error)
    if isinstance(error, (rex.RequestException, uex.HTTPError, OSError)):
        return TransferError(f"connection to {shown} failed: {_short(error)}", url=shown, cause=error)
    raise TypeError(f"not a transport error: {error!r}") from error


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def send_get(
    session: requests.Session, url: str, *, headers: Mapping[str, str], timeout: Timeout
) -> requests.Response:
    """GET ``url`` with a streamed body, following redirects; translate failures.

    :raises DownloadError: the request could not be sent or no response came.
    """
    try:
        return session.get(url, headers=headers, timeout=timeout, stream=True, allow_redirects=True)
    except DownloadError:
        raise
    except (rex.RequestException, uex.HTTPError, OSError) as error:
        raise translate(error, url) from error


def check_status(response: requests.Response, url: str) -> None:
    """Raise HTTPStatusError unless the response is a plain success (2xx but not 206)."""
    status = response.status_code
    if 200 <= status < 300 and status != 206:
        return
    shown = redact_url(url)
    reason = response.reason or ""
    close(response)
    raise HTTPStatusError(
        f"HTTP {status} {reason} from {shown}".rstrip(),
        status=status,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        url=shown,
    )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks for (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
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
    if raw is None:
        return None
    values = {part.strip() for part in raw.split(",")}
    if len(values) != 1:
        return None
    value = values.pop()
    return int(value) if value.isdigit() else None


class BodyReader:
    """Reads a streamed body as the server sent it (no decoding), counting the bytes.

    One thread at a time; :func:`abort` may be called from another thread to end it.
    """

    __slots__ = ("_read", "_url", "expected", "received")

    def __init__(self, response: requests.Response, url: str, expected: int | None) -> None:
        self._read = response.raw.read
        self._url = url
        self.expected = expected
        self.received = 0

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end of the body.

        :raises IncompleteDownloadError: the body ended before its announced length.
        :raises TransferError: the connection broke or timed out.
        """
        try:
            data = self._read(size, decode_content=False)
        except (uex.ProtocolError, rex.ChunkedEncodingError, uex.IncompleteRead) as error:
            self._fail_short(error)
        except (rex.RequestException, uex.HTTPError, OSError) as error:
            raise translate(error, self._url) from error
        self.received += len(data)
        if not data and self.expected is not None and self.received != self.expected:
            self._fail_short(None)
        return data

    def _fail_short(self, error: BaseException | None) -> NoReturn:
        shown = redact_url(self._url)
        if self.expected is None:
            raise TransferError(
                f"connection to {shown} broke after {self.received} bytes", url=shown, cause=error
            ) from error
        raise IncompleteDownloadError(
            f"{shown} sent {self.received} of {self.expected} bytes",
            expected=self.expected, received=self.received, url=shown, cause=error,
        ) from error


def abort(response: requests.Response) -> None:
    """Unblock a thread reading ``response`` from another thread, by shutting its socket.

    Best effort: urllib3 does not expose the socket publicly, so this looks for it.
    """
    raw = response.raw
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def close(response: requests.Response) -> None:
    """Release the response's connection; never raises."""
    with contextlib.suppress(rex.RequestException, uex.HTTPError, OSError):
        response.close()
