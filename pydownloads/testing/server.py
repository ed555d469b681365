"""The :class:`LocalServer`: its lifecycle, what it serves, and what it saw."""

from __future__ import annotations

import hashlib
import ssl
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from pydownloads.testing.auth import AuthRequired
from pydownloads.testing.faults import AUTO, Auto, Fault
from pydownloads.testing.handler import HTTPServer
from pydownloads.testing.records import RequestRecord
from pydownloads.testing.responses import FileRoute, RedirectRoute
from pydownloads.testing.state import POLL, ServerState

if TYPE_CHECKING:  # typing.Self is Python 3.11+ (python_requires says 3.10); only annotations use it
    from typing_extensions import Self

DEFAULT_LAST_MODIFIED: Final = 1_700_000_000.0  # 2023-11-14T22:13:20Z
_STOP_TIMEOUT: Final = 1.5


def _poll(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


class LocalServer:
    """Threaded HTTP/1.1 server bound to ``127.0.0.1`` on an ephemeral port (HTTPS with ``tls``)."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        """:param tls: serve HTTPS with this server-side context (``base_url`` says https)."""
        self._state = ServerState()
        self._httpd = HTTPServer(self._state)
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.base_url = f"{'http' if tls is None else 'https'}://127.0.0.1:{self._httpd.server_port}"

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> Self:
        """Start serving in a background daemon thread."""
        if self._thread is not None or self._stopped:
            raise RuntimeError("LocalServer can only be started once")
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": POLL}, daemon=True, name="LocalServer"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, abort every connection and wait (bounded) for handler threads."""
        if self._stopped:
            return
        self._stopped = True
        deadline = time.monotonic() + _STOP_TIMEOUT
        self._state.stop()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(max(0.0, deadline - time.monotonic()))
        self._httpd.server_close()
        self._httpd.close_all(deadline)

    def __enter__(self) -> Self:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (which must start with ``/``)."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        return self.base_url + path

    # -- configuration -----------------------------------------------------------
    def add_file(
        self,
        path: str,
        data: bytes,
        *,
        etag: str | Auto | None = AUTO,
        last_modified: float | None = DEFAULT_LAST_MODIFIED,
        content_type: str = "application/octet-stream",
        content_disposition: str | None = None,
        accept_ranges: bool = True,
        send_length: bool = True,
        rate: int | None = None,
        auth: AuthRequired | None = None,
    ) -> str:
        """Serve ``data`` at ``path`` (replacing what was there) and return its URL.

        ``etag`` is the exact header value (include the quotes, e.g. ``'"v1"'``);
        ``None`` sends no ETag. ``last_modified`` is a POSIX timestamp or ``None``.
        ``send_length=False`` omits Content-Length and closes the connection after
        the body. ``rate`` throttles the body to that many bytes per second.
        ``auth`` serves it only to requests with those credentials (a 401 challenge else).
        """
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        if etag is AUTO:
            etag = f'"{hashlib.sha256(data).hexdigest()}"'
        entry = FileRoute(
            bytes(data), etag, last_modified, content_type, content_disposition, accept_ranges, send_length, rate,
            auth,
        )
        self._state.set_route(path, entry)
        return self.url(path)

    def replace_file(self, path: str, data: bytes, **options: Any) -> str:
        """Like :meth:`add_file`, but ``path`` must already be a file (``KeyError`` otherwise)."""
        if not isinstance(self._state.route(path), FileRoute):
            raise KeyError(path)
        return self.add_file(path, data, **options)

    def add_redirect(self, path: str, location: str, status: int = 302) -> str:
        """Redirect ``path`` to ``location`` (absolute URL or path); returns the URL of ``path``."""
        self._state.set_route(path, RedirectRoute(location, status))
        return self.url(path)

    def add_faults(self, path: str, *faults: Fault) -> None:
        """Queue faults for ``path``; each request consumes the next one (FIFO)."""
        self._state.add_faults(path, faults)

    def hold(self, path: str) -> None:
        """Make requests to ``path`` block before any byte is sent, until :meth:`release`."""
        self._state.hold(path)

    def release(self, path: str) -> None:
        """Let held (and future) requests to ``path`` proceed."""
        self._state.release(path)

    # -- observation -------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        """Copies of all request records since start or the last :meth:`reset_stats`."""
        return self._state.records()

    def request_count(self, path: str) -> int:
        return self._state.request_count(path)

    def bytes_sent(self, path: str) -> int:
        """Body bytes actually written for ``path``."""
        return self._state.bytes_sent(path)

    @property
    def max_concurrency(self) -> int:
        """Maximum number of requests handled at the same time since start/reset."""
        return self._state.max_concurrency()

    @property
    def errors(self) -> list[str]:
        """Tracebacks of unexpected server-side exceptions (client disconnects excluded)."""
        return self._state.errors()

    def reset_stats(self) -> None:
        """Forget records and counters; max_concurrency restarts at the current load."""
        self._state.reset_stats()

    def wait_for_requests(self, path: str, count: int, timeout: float = 2.0) -> bool:
        """Poll until ``request_count(path) >= count``; ``False`` on timeout."""
        return _poll(lambda: self.request_count(path) >= count, timeout)

    def wait_idle(self, timeout: float = 2.0) -> bool:
        """Poll until no request is being handled; ``False`` on timeout.

        A client may see a whole response slightly before the server is done with
        the request: call this before asserting on ``max_concurrency`` or records'
        ``finished_at``, or before :meth:`reset_stats`.
        """
        return _poll(self._state.idle, timeout)
