"""Test support: a real, threaded HTTP/1.1 server on 127.0.0.1 that misbehaves on request.

It serves pydownloads' integration tests, its benchmarks and ``pydownloads demo``, and it is
there for your own tests of code that downloads: no network needed.  Its public path is
:mod:`pydownloads.localserver`; nothing of the download machinery imports it.

Only the standard library is used. The server serves registered in-memory
files (with ``Range``/``If-Range`` support, keep-alive, ETag and
Last-Modified), redirects, and scripted faults::

    with LocalServer() as server:
        url = server.add_file("/a.bin", b"data")
        server.add_faults("/a.bin", Status(503, {"Retry-After": "1"}), ResetAfter(2))
        ...  # 1st request: 503, 2nd: reset after 2 body bytes, then normal service

Every wait inside the server (stalls, holds, throttling) waits on an internal
stop event, so :meth:`LocalServer.stop` returns quickly whatever the clients do.

The rooms: ``faults`` (what a request may suffer), ``records`` (what the server saw),
``responses`` (HTTP's rules, pure), ``state`` (shared state behind one lock, and the
interface a handler uses), ``handler`` (sockets and threads), ``server`` (``LocalServer``).
"""

from pydownloads.testing.auth import AuthRequired
from pydownloads.testing.faults import (
    AUTO,
    Fault,
    IgnoreRange,
    ResetAfter,
    ShortBody,
    Slow,
    Stall,
    StallHeaders,
    Status,
    WrongRange,
)
from pydownloads.testing.records import Headers, RequestRecord
from pydownloads.testing.server import DEFAULT_LAST_MODIFIED, LocalServer

__all__ = [
    "AUTO",
    "DEFAULT_LAST_MODIFIED",
    "AuthRequired",
    "Fault",
    "Headers",
    "IgnoreRange",
    "LocalServer",
    "RequestRecord",
    "ResetAfter",
    "ShortBody",
    "Slow",
    "Stall",
    "StallHeaders",
    "Status",
    "WrongRange",
]
