"""A real, threaded HTTP/1.1 server on 127.0.0.1 that misbehaves on request.

It serves pydownloads' integration tests and ``pydownloads demo``, and it is there for your
own tests of code that downloads: no network needed.

Only the standard library is used. The server serves registered in-memory
files (with ``Range``/``If-Range`` support, keep-alive, ETag and
Last-Modified), redirects, and scripted faults::

    with LocalServer() as server:
        url = server.add_file("/a.bin", b"data")
        server.add_faults("/a.bin", Status(503, {"Retry-After": "1"}), ResetAfter(2))
        ...  # 1st request: 503, 2nd: reset after 2 body bytes, then normal service

Every wait inside the server (stalls, holds, throttling) waits on an internal
stop event, so :meth:`LocalServer.stop` returns quickly whatever the clients do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import enum
import hashlib
import http
import http.server
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:  # typing.Self is Python 3.11+ (python_requires says 3.10); only annotations use it
    from typing_extensions import Self

__all__ = [
    "AUTO",
    "DEFAULT_LAST_MODIFIED",
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

CHUNK_SIZE: Final = 64 * 1024
DEFAULT_LAST_MODIFIED: Final = 1_700_000_000.0  # 2023-11-14T22:13:20Z
_POLL: Final = 0.05  # upper bound of any single wait, as a safety net
_STOP_TIMEOUT: Final = 1.5


class _Auto(enum.Enum):
    AUTO = enum.auto()


AUTO: Final = _Auto.AUTO
"""Default for ``etag``: a strong ETag computed from the sha256 of the data."""


# --------------------------------------------------------------------------- faults
@dataclass(frozen=True)
class Status:
    """Answer with ``code``, extra ``headers`` and ``body`` (Content-Length added)."""

    code: int
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    body: bytes = b""


@dataclass(frozen=True)
class ResetAfter:
    """Normal headers, ``nbytes`` of the body, then abort the connection with a TCP RST."""

    nbytes: int


@dataclass(frozen=True)
class ShortBody:
    """Normal headers, ``nbytes`` of the body, then a clean close (FIN)."""

    nbytes: int


@dataclass(frozen=True)
class Stall:
    """Normal headers, ``after_bytes`` of the body, wait ``seconds``, then close."""

    seconds: float
    after_bytes: int = 0


@dataclass(frozen=True)
class StallHeaders:
    """Wait ``seconds`` before sending anything, then close without answering."""

    seconds: float


@dataclass(frozen=True)
class IgnoreRange:
    """Answer this request with the whole file (200), as if ``Range`` had not been sent."""


@dataclass(frozen=True)
class WrongRange:
    """Answer a ``Range`` request with a 206 that starts ``shift`` bytes off (a server bug)."""

    shift: int


@dataclass(frozen=True)
class Slow:
    """Send this response's body at ``rate`` bytes per second."""

    rate: int


Fault = Status | ResetAfter | ShortBody | Stall | StallHeaders | IgnoreRange | WrongRange | Slow


# --------------------------------------------------------------------------- records
class Headers(dict[str, str]):
    """A ``dict`` of request headers whose lookups ignore case (keys as received)."""

    def _key(self, name: str) -> str | None:
        lowered = name.lower()
        return next((k for k in self if k.lower() == lowered), None)

    def __getitem__(self, name: str) -> str:
        key = self._key(name)
        if key is None:
            raise KeyError(name)
        return super().__getitem__(key)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) is not None

    def get(self, name: str, default: Any = None) -> Any:
        key = self._key(name)
        return default if key is None else super().__getitem__(key)


@dataclass(frozen=True)
class RequestRecord:
    """One request as seen by the server.

    ``path`` excludes the query string (``target`` is the raw request target);
    times are :func:`time.monotonic` values; ``client_port`` identifies the TCP
    connection (equal ports = keep-alive reuse); ``status`` is set just before
    the response head is written (``None`` if nothing was answered);
    ``finished_at`` is set when the server is done with the request; ``fault``
    is the fault this request consumed; ``seq`` numbers requests from 0.
    """

    method: str
    path: str
    headers: Headers
    range: str | None
    started_at: float
    target: str
    client_port: int
    fault: Fault | None = None
    status: int | None = None
    finished_at: float | None = None
    seq: int = 0


# --------------------------------------------------------------------------- routes
@dataclass(frozen=True)
class _File:
    data: bytes
    etag: str | None
    last_modified: float | None
    content_type: str
    content_disposition: str | None
    accept_ranges: bool
    send_length: bool
    rate: int | None


@dataclass(frozen=True)
class _Redirect:
    location: str
    status: int


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: memoryview
    rate: int | None = None
    close: bool = False


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


def _poll(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def _head_bytes(response: _Response) -> bytes:
    try:
        reason = http.HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Date: {_http_date(time.time())}",
        f"Server: {_Handler.server_version}",
        *(f"{name}: {value}" for name, value in response.headers),
    ]
    if response.close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _parse_range(value: str, total: int) -> tuple[int, int] | bool | None:
    """Return ``(first, last)``, ``False`` if unsatisfiable, ``None`` to ignore it."""
    unit, _, spec = value.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_s, dash, last_s = spec.strip().partition("-")
    first_s, last_s = first_s.strip(), last_s.strip()
    if not dash or not (first_s.isdigit() or first_s == "") or not (last_s.isdigit() or last_s == ""):
        return None
    if first_s == "":  # suffix range: the last N bytes
        if last_s == "":
            return None
        length = int(last_s)
        return (max(0, total - length), total - 1) if length > 0 and total > 0 else False
    first = int(first_s)
    if last_s and int(last_s) < first:
        return None
    if first >= total:
        return False
    last = min(int(last_s), total - 1) if last_s else total - 1
    return first, last


def _not_modified(entry: _File, headers: Headers) -> bool:
    """RFC 9110: If-None-Match wins; else If-Modified-Since against Last-Modified."""
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return entry.etag is not None and (entry.etag.removeprefix("W/") in tags or "*" in tags)
    since = headers.get("If-Modified-Since")
    if since is None or entry.last_modified is None:
        return False
    try:
        return int(entry.last_modified) <= int(email.utils.parsedate_to_datetime(since).timestamp())
    except (TypeError, ValueError):
        return False


def _if_range_matches(value: str, entry: _File) -> bool:
    value = value.strip()
    if value.startswith(('"', "W/")):
        etag = entry.etag
        return etag is not None and not etag.startswith("W/") and value == etag
    if entry.last_modified is None:
        return False
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return int(parsed.timestamp()) == int(entry.last_modified)


# --------------------------------------------------------------------------- handler
class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pydownloads-test"
    disable_nagle_algorithm = True
    timeout = 60  # idle keep-alive connections eventually go away
    server: _HTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines."""

    # -- main flow -------------------------------------------------------------
    def _serve(self) -> None:
        owner = self.server.owner
        path = urlsplit(self.path).path or "/"
        fault, seq, headers = owner._begin(self, path)
        try:
            if not owner._wait_hold(path):
                self.close_connection = True
                return
            if isinstance(fault, StallHeaders):
                owner._stop.wait(fault.seconds)
                self.close_connection = True
                return
            response = owner._response_for(path, headers, fault)
            if self.command == "HEAD":
                response.body = memoryview(b"")
            limit = len(response.body)
            if isinstance(fault, ResetAfter | ShortBody):
                limit = min(limit, fault.nbytes)
            elif isinstance(fault, Stall):
                limit = min(limit, fault.after_bytes)
            if fault is not None and not isinstance(fault, Status):
                response.close = True
            if response.close or self.close_connection:
                response.close = self.close_connection = True
            owner._update(seq, status=response.status)
            completed = self._send(response, limit, path)
            if not completed:
                self.close_connection = True
            elif isinstance(fault, Stall):
                owner._stop.wait(fault.seconds)
            elif isinstance(fault, ResetAfter):
                self._reset()
        except OSError:  # client went away (BrokenPipe, ConnectionReset, timeout...)
            self.close_connection = True
        finally:
            owner._end(seq)

    def _send(self, response: _Response, limit: int, path: str) -> bool:
        """Write the head and ``limit`` body bytes; ``False`` if interrupted by stop."""
        owner, body, rate = self.server.owner, response.body, response.rate
        # Unthrottled: the head and the first chunk go out in one write (fewer packets).
        first = min(limit, CHUNK_SIZE) if rate is None else 0
        self._write(path, _head_bytes(response) + body[:first], first)
        piece = CHUNK_SIZE if rate is None else max(1, min(CHUNK_SIZE, rate // 50))
        sent, started = first, time.monotonic()
        while sent < limit:
            if rate is not None:
                owner._stop.wait(max(0.0, started + sent / rate - time.monotonic()))
            if owner._stop.is_set():
                return False
            end = min(limit, sent + piece)
            self._write(path, body[sent:end], end - sent)
            sent = end
        return True

    def _write(self, path: str, data: bytes | memoryview, body_bytes: int) -> None:
        # Count first so that a client never sees bytes that bytes_sent() misses.
        self.server.owner._count_bytes(path, body_bytes)
        try:
            self.connection.sendall(data)
        except OSError:
            self.server.owner._count_bytes(path, -body_bytes)
            raise

    def _reset(self) -> None:
        """Abort the connection: SO_LINGER with a zero timeout makes close() send an RST."""
        self.close_connection = True
        sock = self.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drop the makefile() reference so close() is immediate
        sock.close()


class _HTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """HTTPServer with tracked daemon threads and connections, and silent errors."""

    request_queue_size = 128
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: LocalServer) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()
        self.closing = False
        self.track_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls getfqdn(), which may hit DNS: skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        # Like ThreadingMixIn.process_request, but remembers the thread and socket
        # so that LocalServer.stop() can abort connections and join (bounded).
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True)
        with self.track_lock:
            if self.closing:
                self.shutdown_request(request)
                return
            self.connections.add(request)
            self.threads.add(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self.track_lock:
            self.connections.discard(request)
            self.threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Swallow client disconnects; keep anything else in ``LocalServer.errors``."""
        if not isinstance(sys.exc_info()[1], OSError):
            self.owner._record_error(traceback.format_exc())


# --------------------------------------------------------------------------- server
class LocalServer:
    """Threaded HTTP/1.1 server bound to ``127.0.0.1`` on an ephemeral port."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._routes: dict[str, _File | _Redirect] = {}
        self._faults: defaultdict[str, deque[Fault]] = defaultdict(deque)
        self._holds: dict[str, threading.Event] = {}
        self._records: dict[int, RequestRecord] = {}  # by seq, in arrival order
        self._seq = -1
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._bytes: defaultdict[str, int] = defaultdict(int)
        self._errors: list[str] = []
        self._active = 0
        self._max_active = 0
        self._httpd = _HTTPServer(self)
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.base_url = f"http://127.0.0.1:{self._httpd.server_port}"

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> Self:
        """Start serving in a background daemon thread."""
        if self._thread is not None or self._stopped:
            raise RuntimeError("LocalServer can only be started once")
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": _POLL}, daemon=True, name="LocalServer"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, abort every connection and wait (bounded) for handler threads."""
        if self._stopped:
            return
        self._stopped = True
        deadline = time.monotonic() + _STOP_TIMEOUT
        self._stop.set()
        with self._lock:
            for event in self._holds.values():
                event.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(max(0.0, deadline - time.monotonic()))
        self._httpd.server_close()
        with self._httpd.track_lock:
            self._httpd.closing = True
            connections, threads = (list(self._httpd.connections), list(self._httpd.threads))
        for conn in connections:
            with contextlib.suppress(OSError):  # wakes handlers blocked in recv/send
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

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
        etag: str | _Auto | None = AUTO,
        last_modified: float | None = DEFAULT_LAST_MODIFIED,
        content_type: str = "application/octet-stream",
        content_disposition: str | None = None,
        accept_ranges: bool = True,
        send_length: bool = True,
        rate: int | None = None,
    ) -> str:
        """Serve ``data`` at ``path`` (replacing what was there) and return its URL.

        ``etag`` is the exact header value (include the quotes, e.g. ``'"v1"'``);
        ``None`` sends no ETag. ``last_modified`` is a POSIX timestamp or ``None``.
        ``send_length=False`` omits Content-Length and closes the connection after
        the body. ``rate`` throttles the body to that many bytes per second.
        """
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        if etag is AUTO:
            etag = f'"{hashlib.sha256(data).hexdigest()}"'
        entry = _File(
            bytes(data), etag, last_modified, content_type, content_disposition, accept_ranges, send_length, rate
        )
        with self._lock:
            self._routes[path] = entry
        return self.url(path)

    def replace_file(self, path: str, data: bytes, **options: Any) -> str:
        """Like :meth:`add_file`, but ``path`` must already be a file (``KeyError`` otherwise)."""
        with self._lock:
            if not isinstance(self._routes.get(path), _File):
                raise KeyError(path)
        return self.add_file(path, data, **options)

    def add_redirect(self, path: str, location: str, status: int = 302) -> str:
        """Redirect ``path`` to ``location`` (absolute URL or path); returns the URL of ``path``."""
        with self._lock:
            self._routes[path] = _Redirect(location, status)
        return self.url(path)

    def add_faults(self, path: str, *faults: Fault) -> None:
        """Queue faults for ``path``; each request consumes the next one (FIFO)."""
        with self._lock:
            self._faults[path].extend(faults)

    def hold(self, path: str) -> None:
        """Make requests to ``path`` block before any byte is sent, until :meth:`release`."""
        with self._lock:
            self._holds.setdefault(path, threading.Event())

    def release(self, path: str) -> None:
        """Let held (and future) requests to ``path`` proceed."""
        with self._lock:
            event = self._holds.pop(path, None)
        if event is not None:
            event.set()

    # -- observation -------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        """Copies of all request records since start or the last :meth:`reset_stats`."""
        with self._lock:
            return [dataclasses.replace(r, headers=Headers(r.headers)) for r in self._records.values()]

    def request_count(self, path: str) -> int:
        with self._lock:
            return self._counts[path]

    def bytes_sent(self, path: str) -> int:
        """Body bytes actually written for ``path``."""
        with self._lock:
            return self._bytes[path]

    @property
    def max_concurrency(self) -> int:
        """Maximum number of requests handled at the same time since start/reset."""
        with self._lock:
            return self._max_active

    @property
    def errors(self) -> list[str]:
        """Tracebacks of unexpected server-side exceptions (client disconnects excluded)."""
        with self._lock:
            return list(self._errors)

    def reset_stats(self) -> None:
        """Forget records and counters; max_concurrency restarts at the current load."""
        with self._lock:
            self._records.clear()
            self._counts.clear()
            self._bytes.clear()
            self._max_active = self._active

    def wait_for_requests(self, path: str, count: int, timeout: float = 2.0) -> bool:
        """Poll until ``request_count(path) >= count``; ``False`` on timeout."""
        return _poll(lambda: self.request_count(path) >= count, timeout)

    def wait_idle(self, timeout: float = 2.0) -> bool:
        """Poll until no request is being handled; ``False`` on timeout.

        A client may see a whole response slightly before the server is done with
        the request: call this before asserting on ``max_concurrency`` or records'
        ``finished_at``, or before :meth:`reset_stats`.
        """

        def idle() -> bool:
            with self._lock:
                return self._active == 0

        return _poll(idle, timeout)

    # -- internals used by the handler -------------------------------------------------
    def _begin(self, handler: _Handler, path: str) -> tuple[Fault | None, int, Headers]:
        headers = Headers(handler.headers.items())
        with self._lock:
            queue = self._faults.get(path)
            fault = queue.popleft() if queue else None
            seq = self._seq = self._seq + 1
            self._records[seq] = RequestRecord(
                handler.command, path, headers, headers.get("Range"), time.monotonic(),
                handler.path, handler.client_address[1], fault, seq=seq,
            )  # fmt: skip
            self._counts[path] += 1
            self._active += 1
            self._max_active = max(self._max_active, self._active)
            return fault, seq, headers

    def _update(self, seq: int, **changes: Any) -> None:
        with self._lock:
            record = self._records.get(seq)  # None after reset_stats()
            if record is not None:
                self._records[seq] = dataclasses.replace(record, **changes)

    def _end(self, seq: int) -> None:
        with self._lock:
            self._active -= 1
        self._update(seq, finished_at=time.monotonic())

    def _wait_hold(self, path: str) -> bool:
        """Block while ``path`` is held; ``False`` if the server is stopping."""
        with self._lock:
            event = self._holds.get(path)
        while event is not None and not event.is_set() and not self._stop.is_set():
            event.wait(_POLL)
        return not self._stop.is_set()

    def _count_bytes(self, path: str, nbytes: int) -> None:
        with self._lock:
            self._bytes[path] += nbytes

    def _record_error(self, error: str) -> None:
        with self._lock:
            self._errors.append(error)

    def _response_for(self, path: str, headers: Headers, fault: Fault | None) -> _Response:
        if isinstance(fault, Status):
            given = Headers(fault.headers)
            out = [(k, v) for k, v in given.items() if k.lower() != "connection"]
            if "Content-Length" not in given:
                out.append(("Content-Length", str(len(fault.body))))
            close = given.get("Connection", "").lower() == "close"
            return _Response(fault.code, out, memoryview(fault.body), close=close)
        with self._lock:
            route = self._routes.get(path)
        if isinstance(route, _Redirect):
            return _Response(route.status, [("Location", route.location), ("Content-Length", "0")], memoryview(b""))
        if route is None:
            body = b"not found\n"
            hdrs = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            return _Response(404, hdrs, memoryview(body))
        if isinstance(fault, IgnoreRange):
            headers = Headers((k, v) for k, v in headers.items() if k.lower() != "range")
        elif isinstance(fault, WrongRange) and headers.get("Range"):
            parsed = _parse_range(headers["Range"], len(route.data))
            if isinstance(parsed, tuple):
                first = min(max(0, parsed[0] + fault.shift), parsed[1])
                rest = {k: v for k, v in headers.items() if k.lower() not in ("range", "if-range")}
                headers = Headers([*rest.items(), ("Range", f"bytes={first}-{parsed[1]}")])
        response = self._file_response(route, headers)
        if isinstance(fault, Slow):
            response.rate = fault.rate
        return response

    def _file_response(self, entry: _File, headers: Headers) -> _Response:
        total = len(entry.data)
        body = memoryview(entry.data)
        status = 200
        out: list[tuple[str, str]] = [("Content-Type", entry.content_type)]
        if entry.etag is not None:
            out.append(("ETag", entry.etag))
        if entry.last_modified is not None:
            out.append(("Last-Modified", _http_date(entry.last_modified)))
        if entry.content_disposition is not None:
            out.append(("Content-Disposition", entry.content_disposition))
        if _not_modified(entry, headers):
            return _Response(304, [h for h in out if h[0] in ("ETag", "Last-Modified")], memoryview(b""))
        range_header = headers.get("Range")
        if entry.accept_ranges:
            out.append(("Accept-Ranges", "bytes"))
            if_range = headers.get("If-Range")
            if range_header is not None and (if_range is None or _if_range_matches(if_range, entry)):
                parsed = _parse_range(range_header, total)
                if parsed is False:
                    out.append(("Content-Range", f"bytes */{total}"))
                    return _Response(416, [*out, ("Content-Length", "0")], memoryview(b""))
                if isinstance(parsed, tuple):
                    first, last = parsed
                    status, body = 206, body[first : last + 1]
                    out.append(("Content-Range", f"bytes {first}-{last}/{total}"))
        if entry.send_length:
            out.append(("Content-Length", str(len(body))))
        return _Response(status, out, body, entry.rate, close=not entry.send_length)
