"""A raw-socket HTTP server that misbehaves in ways ``http.server`` cannot.

Each path maps to a handler that writes raw bytes on the connection: lying framing,
endless or huge headers, redirect tricks, silence, dripping, bombs.  Every request is
recorded (method, target, headers) so tests can check what a client sent where.

Bounded by design: one request per connection; every wait is on the server's stop
``Event`` or a short socket poll; :meth:`RawServer.stop` closes every connection and
returns within about two seconds whatever the clients do::

    with RawServer() as server:
        server.route("/short", lying_length(declared=100, body=b"x" * 10))
        url = server.url("/short")
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

_POLL = 0.05
_STOP_TIMEOUT = 2.0
_MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Request:
    """One request as the server read it."""

    method: str
    target: str
    path: str
    headers: tuple[tuple[str, str], ...]
    port: int

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    def has(self, name: str) -> bool:
        return self.header(name) is not None


class Conn:
    """The server side of one client connection, with stop-aware helpers."""

    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock = sock
        self.stop = stop
        sock.settimeout(_POLL)

    def send(self, data: bytes) -> bool:
        """Write all of ``data``; False once the client is gone or the server stops."""
        view = memoryview(data)
        while view:
            if self.stop.is_set():
                return False
            try:
                sent = self.sock.send(view)
            except TimeoutError:
                continue
            except OSError:
                return False
            view = view[sent:]
        return True

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the server stops first; True if still running."""
        return not self.stop.wait(seconds)

    def client_gone(self) -> bool:
        """True when the client closed its side (EOF or error) or the server stops."""
        if self.stop.is_set():
            return True
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            if not readable:
                return False
            return self.sock.recv(65536, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def hold(self, limit: float = 60.0) -> None:
        """Keep the connection open, saying nothing, until the client goes or we stop."""
        deadline = time.monotonic() + limit
        while not self.client_gone() and time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                readable, _, _ = select.select([self.sock], [], [], _POLL)
                if readable:
                    self.sock.recv(65536)  # discard whatever the client sends; EOF shows next turn

    def reset(self) -> None:
        """Abort with a TCP RST."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


Handler = Callable[[Conn, Request], None]


@dataclass
class _Tracked:
    threads: set[threading.Thread] = field(default_factory=set)
    socks: set[socket.socket] = field(default_factory=set)


class RawServer:
    """Threaded raw-socket server on ``host``:0; one thread per connection."""

    def __init__(self, host: str = "127.0.0.1", *, tls: ssl.SSLContext | None = None) -> None:
        self.host = host
        self._tls = tls
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(_POLL)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._routes: dict[str, Handler] = {}
        self._records: list[Request] = []
        self._tracked = _Tracked()
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._accept_loop, name=f"rawserver-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection, join (bounded by ~2 s in all)."""
        deadline = time.monotonic() + _STOP_TIMEOUT
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            socks, threads = list(self._tracked.socks), list(self._tracked.threads)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- configuration and observation -----------------------------------------------------

    @property
    def origin(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def url(self, path: str, *, host: str | None = None, userinfo: str = "") -> str:
        """Absolute URL of ``path``, optionally through another host name for this server."""
        scheme = "https" if self._tls is not None else "http"
        at = f"{userinfo}@" if userinfo else ""
        return f"{scheme}://{at}{host or self.host}:{self.port}{path}"

    def route(self, path: str, handler: Handler) -> str:
        """Serve ``path`` with ``handler`` (``"*"``: any path without its own route); returns its URL."""
        with self._lock:
            self._routes[path] = handler
        return self.url(path)

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._records)

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self._records if r.path == path)

    # -- internals ---------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            with self._lock:
                self._tracked.socks.add(sock)
                self._tracked.threads.add(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            if self._tls is not None:
                sock.settimeout(1.0)
                try:
                    sock = self._tls.wrap_socket(sock, server_side=True)
                except (OSError, ssl.SSLError):
                    return  # the client refused our certificate: nothing more to see
            conn = Conn(sock, self._stop)
            request = self._read_request(conn)
            if request is None:
                return
            with self._lock:
                self._records.append(request)
                handler = self._routes.get(request.path, self._routes.get("*"))
            (handler or not_found)(conn, request)
        except Exception as error:  # recorded for the test to see; the thread must end
            self.errors.append(error)
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._tracked.threads.discard(threading.current_thread())

    def _read_request(self, conn: Conn) -> Request | None:
        data = b""
        deadline = time.monotonic() + 5.0
        while b"\r\n\r\n" not in data:
            if self._stop.is_set() or time.monotonic() > deadline or len(data) > _MAX_HEAD:
                return None
            try:
                chunk = conn.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        request_line, *lines = head.split("\r\n")
        method, target, _version = [*request_line.split(" "), "", ""][:3]
        headers = tuple((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines))
        return Request(method, target, urlsplit(target).path or "/", headers, self.port)


# -- handlers -----------------------------------------------------------------------------------


def head(status: int = 200, headers: Iterable[tuple[str, str]] = (), *, close: bool = True,
         reason: str = "X") -> bytes:
    """A response head; ``Connection: close`` unless told otherwise (one request a connection)."""
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers)]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def not_found(conn: Conn, request: Request) -> None:
    conn.send(head(404, [("Content-Length", "0")]))


def raw(data: bytes) -> Handler:
    """Write exactly ``data``, then close."""
    return lambda conn, request: (conn.send(data), None)[1]


def body(data: bytes, headers: Iterable[tuple[str, str]] = (), status: int = 200) -> Handler:
    """A well-formed response (Content-Length added)."""
    extra = list(headers)
    return raw(head(status, [*extra, ("Content-Length", str(len(data)))]) + data)


def lying_length(declared: str | Iterable[str], data: bytes, headers: Iterable[tuple[str, str]] = ()) -> Handler:
    """``Content-Length`` header(s) as given (each string one header line), then ``data``, then close."""
    values = [declared] if isinstance(declared, str) else list(declared)
    return raw(head(200, [*headers, *(("Content-Length", v) for v in values)]) + data)


def redirect(location: str, status: int = 302) -> Handler:
    return raw(head(status, [("Location", location), ("Content-Length", "0")]))


def endless_headers(line: bytes = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n") -> Handler:
    """A status line, then header lines for as long as the client listens (capped at 60 s)."""
    def handle(conn: Conn, request: Request) -> None:
        if not conn.send(b"HTTP/1.1 200 OK\r\n"):
            return
        deadline = time.monotonic() + 60
        batch = line * 64
        while time.monotonic() < deadline and conn.send(batch):
            pass
    return handle


def endless_continue() -> Handler:
    """``100 Continue`` interim responses, one after another, never a final one."""
    def handle(conn: Conn, request: Request) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and conn.send(b"HTTP/1.1 100 Continue\r\n\r\n" * 16):
            if not conn.wait(0.01):
                return
    return handle


def silent() -> Handler:
    """Read the request and never answer."""
    return lambda conn, request: conn.hold()


def drip(data: bytes, interval: float, headers: Iterable[tuple[str, str]] = ()) -> Handler:
    """Proper headers, then the body one byte every ``interval`` seconds."""
    def handle(conn: Conn, request: Request) -> None:
        if not conn.send(head(200, [*headers, ("Content-Length", str(len(data)))])):
            return
        for i in range(len(data)):
            if not conn.wait(interval) or not conn.send(data[i:i + 1]):
                return
    return handle


def drip_head(interval: float, limit: float = 60.0) -> Handler:
    """The response head itself one byte every ``interval`` seconds, never ending."""
    def handle(conn: Conn, request: Request) -> None:
        stream = _endless_head()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if not conn.send(next(stream)) or not conn.wait(interval):
                return
    return handle


def _endless_head() -> Iterator[bytes]:
    yield from (bytes([b]) for b in b"HTTP/1.1 200 OK\r\n")
    while True:
        yield from (bytes([b]) for b in b"X-Slow: " + b"s" * 40 + b"\r\n")


def chunked(framing: bytes, headers: Iterable[tuple[str, str]] = ()) -> Handler:
    """``Transfer-Encoding: chunked`` and then ``framing`` verbatim, then close."""
    return raw(head(200, [*headers, ("Transfer-Encoding", "chunked")]) + framing)


def recorder(data: bytes = b"recorded") -> Handler:
    """A plain 200 (every request is recorded by the server anyway)."""
    return body(data)
