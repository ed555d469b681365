"""A real, threaded HTTP/1.1 server on 127.0.0.1 that misbehaves on request::

    from pydownloads.localserver import LocalServer, ResetAfter, Status

    with LocalServer() as server:
        url = server.add_file("/a.bin", b"data")
        server.add_faults("/a.bin", Status(503, {"Retry-After": "1"}), ResetAfter(2))

The implementation lives in :mod:`pydownloads.testing` (test support, apart from the
library's modules); this is its public path.
"""

from pydownloads.testing import (
    AUTO,
    DEFAULT_LAST_MODIFIED,
    AuthRequired,
    Fault,
    Headers,
    IgnoreRange,
    LocalServer,
    RequestRecord,
    ResetAfter,
    ShortBody,
    Slow,
    Stall,
    StallHeaders,
    Status,
    WrongRange,
)
from pydownloads.testing.handler import CHUNK_SIZE as CHUNK_SIZE

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
