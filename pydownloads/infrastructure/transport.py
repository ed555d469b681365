"""The one boundary where requests and urllib3 meet pydownloads.

Every exception requests or urllib3 can raise is translated here into the DownloadError
tree, with the URL and the original as ``cause``.  No other module catches them.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import ssl
import time
from collections.abc import Callable, Mapping

import requests
import requests.exceptions as rex
import urllib3
import urllib3.exceptions as uex

from pydownloads.domain.errors import (
    DownloadError,
    DownloadTimeoutError,
    HTTPStatusError,
    IncompleteDownloadError,
    RedirectError,
    ResumeMismatchError,
    TLSError,
    TransferError,
)
from pydownloads.infrastructure.auth import offered_schemes
from pydownloads.infrastructure.failures import answered, describe
from pydownloads.infrastructure.headers import accepts_ranges as accepts_ranges  # these re-exported: their
from pydownloads.infrastructure.headers import content_length as content_length  # callers know them here
from pydownloads.infrastructure.headers import content_range as content_range
from pydownloads.infrastructure.headers import host_of as host_of
from pydownloads.infrastructure.headers import parse_retry_after as parse_retry_after
from pydownloads.infrastructure.headers import validators as validators
from pydownloads.infrastructure.request_retry import RequestRetry, RetryListener
from pydownloads.infrastructure.sockets import abort as abort  # re-exported: its callers know it here
from pydownloads.infrastructure.sockets import direct_reader
from pydownloads.infrastructure.sockets import waiting as waiting

Timeout = float | tuple[float, float]
#: One read of a body: (view, at most this many bytes) -> the count read, as ``socket.recv_into``.
_Recv = Callable[[memoryview, int], "int | None"]


def translate(error: BaseException, url: str) -> DownloadError:
    """The DownloadError that says what ``error`` (from requests/urllib3/sockets) means.

    Its message is the reason in words (``failures.describe``), then the URL that answered
    (after redirects, the last one): "TLS: certificate verify failed: self-signed
    certificate in certificate chain (https://host/path)".  ``url`` stays the download's.
    """
    if isinstance(error, DownloadError):
        return error
    if isinstance(error, rex.TooManyRedirects):
        return RedirectError(f"too many redirects from {url}", url=url, cause=error)
    if isinstance(error, (rex.InvalidSchema, rex.InvalidURL, rex.MissingSchema)):
        return RedirectError(f"{url} led to a URL that cannot be downloaded: {_short(error)}", url=url,
                             cause=error)
    if not isinstance(error, (rex.RequestException, uex.HTTPError, OSError)):
        raise TypeError(f"not a transport error: {error!r}") from error
    message = f"{describe(error)} ({answered(error, url)})"
    # urllib3 out of retries wraps the last failure: a timeout is still a timeout.
    reason = getattr(error.args[0], "reason", None) if error.args else None
    if isinstance(error, rex.ConnectionError) and isinstance(reason, uex.ReadTimeoutError):
        return DownloadTimeoutError(message, url=url, cause=error)
    if isinstance(error, rex.ConnectionError) and isinstance(reason, uex.ConnectTimeoutError) and not isinstance(
            reason, uex.NewConnectionError):  # NewConnectionError subclasses ConnectTimeoutError: refused isn't slow
        return DownloadTimeoutError(message, url=url, cause=error)
    if isinstance(error, (rex.ConnectTimeout, rex.ReadTimeout, uex.ReadTimeoutError, socket.timeout)):
        return DownloadTimeoutError(message, url=url, cause=error)
    if isinstance(error, (rex.SSLError, uex.SSLError)):
        return TLSError(message, url=url, cause=error)
    return TransferError(message, url=url, cause=error)


def _short(error: BaseException) -> str:
    """The error's text, kept short (the DownloadError quoting it redacts its URLs)."""
    text = str(error) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def send_get(
    session: requests.Session, url: str, *, headers: Mapping[str, str], timeout: Timeout,
    retries: RetryListener | None = None,
) -> requests.Response:
    """GET ``url`` with a streamed body, following redirects; translate failures.

    :param retries: the download's side of the transport retries, for a session whose
        adapters take it (``http.takes_request_retry``): its budget, deadline and reports
        then apply to this request and its redirects.
    :raises DownloadError: the request could not be sent or no response came, or the
        download's retries ran out on it.
    """
    request = None if retries is None else RequestRetry(retries)
    try:
        if request is None:
            response = session.get(url, headers=headers, timeout=timeout, stream=True, allow_redirects=True)
        else:  # Session.send hands the keyword on to the adapter, redirects included
            response = session.get(url, headers=headers, timeout=timeout, stream=True,  # type: ignore[call-arg]
                                   allow_redirects=True, request_retry=request)
    except DownloadError:
        raise
    except (rex.RequestException, uex.HTTPError, OSError) as error:
        if request is not None and request.spent is not None:
            raise request.spent from error
        raise translate(error, url) from error
    except ValueError as error:  # requests parsing a hostile Location (a bad port, IPv6 literal)
        raise RedirectError(f"{url} led to a URL that cannot be parsed: {_short(error)}", url=url,
                            cause=error) from error
    if request is not None and request.spent is not None:  # the last transient status urllib3 gave up on
        close(response)
        raise request.spent
    return response


def check_status(response: requests.Response, url: str, *, ranged: bool = False) -> None:
    """Raise unless the response is a success: 2xx, and 206 only when a range was asked.

    The message names the URL that answered: after redirects, the last one (the error's
    ``url`` stays ``url``).

    :raises ResumeMismatchError: a 416 to a ranged request, or a 206 nobody asked for.
    :raises HTTPStatusError: any other error status.
    """
    status = response.status_code
    if 200 <= status < 300 and (status != 206 or ranged):
        return
    reason = response.reason or ""
    close(response)
    where = response.url if response.history and response.url else url
    if (status == 416 and ranged) or status == 206:
        raise ResumeMismatchError(f"HTTP {status} to a range request for {where}", url=url)
    schemes = tuple(offered_schemes(response.headers.get("WWW-Authenticate"))) if status == 401 else ()
    offers = f" (the server offers: {', '.join(schemes)})" if schemes else ""
    raise HTTPStatusError(
        f"HTTP {status} {reason} from {where}".rstrip() + offers,
        status=status,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        url=url,
        auth_schemes=schemes,
    )


class BodyReader:
    """Reads a streamed body as the server sent it (no decoding), counting the bytes.

    :meth:`read_into` fills a caller's reused buffer straight from the connection when the
    body is framed by Content-Length alone (no copy through a fresh ``bytes`` per read):
    through http.client's buffered socket file until a read has emptied its buffer, then
    from the socket itself (``sockets.direct_reader``), so that over TLS, where a read
    returns one 16 KiB record, no Python layer but the ssl module's runs per record.  Chunked
    bodies and anything unusual go through urllib3's ``read1`` and are copied into it.  It
    may gather several reads into one call for a bounded time (``fill``) and keeps urllib3's
    and http.client's counts once per call.  Either way a read returns what has arrived, the
    length is checked, and a body read to its end hands its connection back to the pool.

    One thread at a time; :func:`abort` may be called from another thread to end it.
    """

    __slots__ = ("_buffered", "_ended", "_failed", "_file", "_left", "_raw", "_read", "_recv", "_response", "_url",
                 "expected", "received")

    def __init__(self, response: requests.Response, url: str, expected: int | None) -> None:
        # read1: return what has arrived instead of waiting for a full buffer, so that a
        # server dripping bytes still lets the caller check speed, deadline and cancel.
        self._raw = response.raw
        self._read = response.raw.read1
        self._response, self._url = response, url
        self.expected = expected
        self.received = 0
        self._file = _socket_file(response.raw, expected)
        #: One read of the direct path, (view, at most) -> count: through the socket file,
        #: then the socket's own ``recv_into``.
        self._recv: _Recv | None = None if self._file is None else _through(self._file)
        self._buffered = self._file is not None  # http.client's file may still hold body bytes
        self._left = expected or 0
        self._failed: DownloadError | None = None  # raised by the next read_into
        self._ended = False  # read to its length straight from the socket: nothing more to ask

    @property
    def direct(self) -> bool:
        """True while reads go straight from the connection into the caller's buffer
        (False: through urllib3's ``read1``, then copied into it)."""
        return self._file is not None

    @property
    def on_socket(self) -> bool:
        """True while reads go to the socket itself, past http.client's socket file."""
        return isinstance(getattr(self._recv, "__self__", None), socket.socket)

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end of the body.

        :raises IncompleteDownloadError: the body ended before its announced length.
        :raises TransferError: the connection broke or timed out.
        """
        try:
            data = self._read(size, decode_content=False)
        except (uex.ProtocolError, rex.ChunkedEncodingError, uex.IncompleteRead) as error:
            raise self._short(error) from error
        except (rex.RequestException, uex.HTTPError, OSError) as error:
            raise translate(error, self._url) from error
        self.received += len(data)
        if self._file is not None:  # keep the direct path's count true if both are used
            self._left -= len(data)
        if not data and self.expected is not None and self.received != self.expected:
            raise self._short(None)
        return data

    def read_into(self, buffer: memoryview, *, fill: float = 0.0) -> memoryview:
        """Up to ``len(buffer)`` bytes, empty at the end of the body.

        The result is a view of ``buffer``, valid until the next call: write or hash it, do
        not keep it.

        :param fill: seconds to keep reading into the rest of ``buffer`` after a read that
            left it short (checked after each read), so that the caller handles one large
            chunk rather than one per TLS record or per socket read.  Zero: one read.  A
            failure after some bytes of a call returns those bytes first and is raised by
            the next call, so nothing that arrived is lost.
        :raises IncompleteDownloadError: the body ended before its announced length.
        :raises TransferError: the connection broke or timed out.
        """
        failed, recv = self._failed, self._recv
        if failed is not None:
            self._failed = None
            raise failed
        if self._ended:
            return buffer[:0]
        if recv is None:
            return self._read_through(buffer, fill)
        want = min(len(buffer), self._left)
        if want <= 0:
            return buffer[:0]
        got, ended, error = 0, False, None
        try:
            got = recv(buffer, want) or 0
            ended = not got
            if self._buffered and want > io.DEFAULT_BUFFER_SIZE:  # that read emptied the file's buffer
                recv = self._unbuffer(recv)
            if 0 < got < want and fill > 0:
                until = time.monotonic() + fill
                while got < want:  # the hot loop: one call per TLS record or socket read
                    more = recv(buffer[got:], want - got)
                    if not more:
                        ended = True
                        break
                    got += more
                    if time.monotonic() >= until:
                        break
        except (OSError, ValueError) as caught:  # ValueError: the file was closed under us
            error = caught
        if got:
            self._advance(got)
        if error is not None or ended:
            failure = self._broken(error)
            if not got:
                raise failure from error
            self._failed = failure  # the bytes already here go to the caller first
        return buffer[:got]

    def _read_through(self, buffer: memoryview, fill: float) -> memoryview:
        """:meth:`read_into` through urllib3's ``read1``, each read copied into ``buffer``."""
        size = len(buffer)
        data = self.read(size)
        got = len(data)
        buffer[:got] = data
        if got and fill > 0:
            until = time.monotonic() + fill
            while got < size:
                try:
                    data = self.read(size - got)
                except DownloadError as error:
                    self._failed = error  # the bytes already here go to the caller first
                    break
                if not data:
                    break
                buffer[got:got + len(data)] = data
                got += len(data)
                if time.monotonic() >= until:
                    break
        return buffer[:got]

    def _unbuffer(self, recv: _Recv) -> _Recv:
        """Read the socket itself from now on, where it can be found (else go on with
        ``recv``).  Only after a read asking for more than the file's buffer: CPython's
        ``readinto1`` then hands over what the buffer held and leaves it empty."""
        self._buffered, file = False, self._file
        if type(file) is io.BufferedReader:
            recv = self._recv = direct_reader(self._response, file) or recv
        return recv

    def _advance(self, count: int) -> None:
        """Count ``count`` bytes read past urllib3 and http.client, in their books too;
        at the end of the body, close http.client's response and release the connection
        (what urllib3's own read does)."""
        raw, response = self._raw, self._raw._fp
        self.received += count
        self._left -= count
        raw._fp_bytes_read += count
        if raw.length_remaining is not None:
            raw.length_remaining -= count
        if response is not None and response.length is not None:
            response.length -= count
        if not self._left:
            self._file = self._recv = None  # anything after this goes through urllib3, which sees the end
            self._ended = True  # ... and says so: read_into says it without asking
            if response is not None:
                response.close()
            raw.release_conn()

    def _broken(self, error: BaseException | None) -> DownloadError:
        """The error a failed read of the direct path means (``None``: the body ended
        early); the connection is closed, so the pool never reuses it."""
        self._drop()
        if isinstance(error, socket.timeout):
            failure = translate(error, self._url)
        elif isinstance(error, ssl.SSLError):
            failure = TLSError(f"{describe(error)} ({self._url})", url=self._url, cause=error)
        else:
            failure = self._short(error)
        failure.__cause__ = error
        return failure

    def _drop(self) -> None:
        """The connection is in an unknown state: close it so the pool never reuses it."""
        self._file = self._recv = None
        with contextlib.suppress(OSError, AttributeError):
            if self._raw._fp is not None:
                self._raw._fp.close()
            if self._raw.connection is not None:
                self._raw.connection.close()

    def _short(self, error: BaseException | None) -> DownloadError:
        if self.expected is None:
            return TransferError(f"connection to {self._url} broke after {self.received} bytes", url=self._url,
                                 cause=error)
        return IncompleteDownloadError(
            f"{self._url} sent {self.received} of {self.expected} bytes",
            expected=self.expected, received=self.received, url=self._url, cause=error,
        )


def _through(file: io.BufferedReader) -> _Recv:
    """A read through ``file``, called as a socket's ``recv_into`` is."""
    return lambda view, size: file.readinto1(view[:size])


def _socket_file(raw: object, expected: int | None) -> io.BufferedReader | None:
    """The buffered socket file under ``raw`` when its body can be read from it directly:
    an untouched identity body framed by a Content-Length that urllib3, http.client and we
    all agree on.  None means: go through urllib3."""
    if not expected or not isinstance(raw, urllib3.HTTPResponse):
        return None
    # getattr throughout: a urllib3 or http.client keeping these books elsewhere means urllib3.
    response = getattr(raw, "_fp", None)
    if (
        not isinstance(response, http.client.HTTPResponse)
        or response.chunked
        or getattr(response, "length", None) != expected
        or getattr(raw, "length_remaining", None) != expected
        or getattr(raw, "_fp_bytes_read", None) != 0  # read already, or a urllib3 without this count
        or getattr(raw, "_has_decoded_content", True)
        or len(getattr(raw, "_decoded_buffer", b"x"))
    ):
        return None
    file = response.fp
    return file if isinstance(file, io.BufferedReader) else None


def close(response: requests.Response) -> None:
    """Release the response's connection; never raises."""
    with contextlib.suppress(rex.RequestException, uex.HTTPError, OSError):
        response.close()
