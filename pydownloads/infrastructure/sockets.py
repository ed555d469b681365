"""The socket under a streamed response: to unblock its reader, see what waits on it, or
read it without the layers above.

urllib3 does not expose the socket publicly, so these look for it (best effort).  ``abort``
and ``waiting`` may be called from another thread than the one reading the response.
"""

from __future__ import annotations

import array
import contextlib
import io
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

try:
    import fcntl
    import termios
    _FIONREAD: int | None = termios.FIONREAD
except ImportError:  # Windows: how much is waiting stays unknown
    _FIONREAD = None


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket under ``response``: urllib3 does not expose it publicly, so look for it."""
    raw = response.raw
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def abort(response: requests.Response) -> None:
    """Unblock a thread reading ``response`` from another thread, by shutting its socket
    (best effort)."""
    sock = _socket_of(response)
    if sock is not None:
        with contextlib.suppress(OSError):
            # socket.socket's own shutdown, for an ssl socket too: SSLSocket.shutdown drops its
            # TLS state, and the reader's next read would return the records still queued on
            # the socket, undecrypted, as body bytes (then written, counted, kept for a resume).
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def waiting(response: requests.Response) -> int | None:
    """Bytes of ``response`` that have arrived and wait in the kernel's receive queue (over
    TLS, still encrypted); None where the system cannot say.  It does not touch the TLS
    object, which its reader may be using in another thread."""
    sock = _socket_of(response)
    if sock is None or _FIONREAD is None:
        return None
    count = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), _FIONREAD, count)
    except (OSError, ValueError):  # closed meanwhile
        return None
    return count[0]


def direct_reader(response: requests.Response, file: io.BufferedReader) -> Callable[[memoryview, int], int] | None:
    """The ``recv_into`` of the socket that ``file`` (http.client's socket file of
    ``response``) reads, to read the body without the file and ``socket.SocketIO`` around
    it; None unless that socket is found and is the file's own (a plain or an ``ssl``
    socket, under CPython's ``io``).  Only for a file whose buffer is empty: bytes it holds
    would be skipped."""
    sock, raw = _socket_of(response), file.raw
    if sock is None or not isinstance(raw, socket.SocketIO) or sys.implementation.name != "cpython":
        return None
    try:
        if raw.fileno() != sock.fileno():
            return None
    except (OSError, ValueError):  # closed meanwhile
        return None
    return sock.recv_into
