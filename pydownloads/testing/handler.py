"""The socket side of a :class:`~pydownloads.testing.LocalServer`: one thread per
connection, each request taken through the :class:`RequestHost` interface only."""

from __future__ import annotations

import contextlib
import http.server
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from pydownloads.testing.faults import Fault, ResetAfter, ShortBody, Stall, StallHeaders, Status
from pydownloads.testing.records import Headers
from pydownloads.testing.responses import SERVER_VERSION, Response, head_bytes

CHUNK_SIZE: Final = 64 * 1024


class RequestHost(Protocol):
    """What a handler needs of its server (:class:`~pydownloads.testing.state.ServerState`)."""

    def begin(self, method: str, path: str, headers: Headers, target: str,
              client_port: int) -> tuple[Fault | None, int]: ...

    def wait_hold(self, path: str) -> bool: ...

    def pause(self, seconds: float) -> None: ...

    @property
    def stopping(self) -> bool: ...

    def respond(self, method: str, target: str, path: str, headers: Headers, fault: Fault | None) -> Response: ...

    def set_status(self, seq: int, status: int) -> None: ...

    def count_bytes(self, path: str, nbytes: int) -> None: ...

    def end(self, seq: int) -> None: ...

    def record_error(self, error: str) -> None: ...


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = SERVER_VERSION
    disable_nagle_algorithm = True
    timeout = 60  # idle keep-alive connections eventually go away
    server: HTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines."""

    # -- main flow -------------------------------------------------------------
    def _serve(self) -> None:
        host = self.server.host
        path = urlsplit(self.path).path or "/"
        headers = Headers(self.headers.items())
        fault, seq = host.begin(self.command, path, headers, self.path, self.client_address[1])
        try:
            if not host.wait_hold(path):
                self.close_connection = True
                return
            if isinstance(fault, StallHeaders):
                host.pause(fault.seconds)
                self.close_connection = True
                return
            response = host.respond(self.command, self.path, path, headers, fault)
            if self.command == "HEAD":
                response.body = memoryview(b"")
            limit = self._limit(response, fault)
            host.set_status(seq, response.status)
            completed = self._send(response, limit, path)
            if not completed:
                self.close_connection = True
            elif isinstance(fault, Stall):
                host.pause(fault.seconds)
            elif isinstance(fault, ResetAfter):
                self._reset()
        except OSError:  # client went away (BrokenPipe, ConnectionReset, timeout...)
            self.close_connection = True
        finally:
            host.end(seq)

    def _limit(self, response: Response, fault: Fault | None) -> int:
        """The body bytes to send, and whether to close after them (set on ``response``)."""
        limit = len(response.body)
        if isinstance(fault, ResetAfter | ShortBody):
            limit = min(limit, fault.nbytes)
        elif isinstance(fault, Stall):
            limit = min(limit, fault.after_bytes)
        if fault is not None and not isinstance(fault, Status):
            response.close = True
        if response.close or self.close_connection:
            response.close = self.close_connection = True
        return limit

    def _send(self, response: Response, limit: int, path: str) -> bool:
        """Write the head and ``limit`` body bytes; ``False`` if interrupted by stop."""
        host, body, rate = self.server.host, response.body, response.rate
        # Unthrottled: the head and the first chunk go out in one write (fewer packets).
        first = min(limit, CHUNK_SIZE) if rate is None else 0
        self._write(path, head_bytes(response) + body[:first], first)
        piece = CHUNK_SIZE if rate is None else max(1, min(CHUNK_SIZE, rate // 50))
        sent, started = first, time.monotonic()
        while sent < limit:
            if rate is not None:
                host.pause(max(0.0, started + sent / rate - time.monotonic()))
            if host.stopping:
                return False
            end = min(limit, sent + piece)
            self._write(path, body[sent:end], end - sent)
            sent = end
        return True

    def _write(self, path: str, data: bytes | memoryview, body_bytes: int) -> None:
        # Count first so that a client never sees bytes that bytes_sent() misses.
        self.server.host.count_bytes(path, body_bytes)
        try:
            self.connection.sendall(data)
        except OSError:
            self.server.host.count_bytes(path, -body_bytes)
            raise

    def _reset(self) -> None:
        """Abort the connection: SO_LINGER with a zero timeout makes close() send an RST."""
        self.close_connection = True
        sock = self.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drop the makefile() reference so close() is immediate
        sock.close()


class HTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """HTTPServer on 127.0.0.1 with tracked daemon threads and connections, and silent errors."""

    request_queue_size = 128
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(self, host: RequestHost) -> None:
        self.host = host
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
        # so that close_all() can abort connections and join (bounded).
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
            self.host.record_error(traceback.format_exc())

    def close_all(self, deadline: float) -> None:
        """Refuse new connections, abort the open ones and join their threads by
        ``deadline`` (a monotonic time)."""
        with self.track_lock:
            self.closing = True
            connections, threads = list(self.connections), list(self.threads)
        for conn in connections:
            with contextlib.suppress(OSError):  # wakes handlers blocked in recv/send
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
