"""A watchdog over the wait for response headers, which no socket timeout bounds.

A read timeout bounds each wait for the next bytes, not their sum: a server that drips its
status line and headers a byte at a time, or sends ``100 Continue`` for ever, holds a request
as long as it likes.  Every connection a request takes from the pool is registered here with
a deadline (connect + read timeout, or the download's own deadline if sooner: it comes with
the request, ``request_retry=``); one thread
shuts the socket down when the deadline passes before the headers are in, which ends the
request with an ordinary transport error.  A hard shutdown uses the same registry to unblock
requests still waiting for their headers.
"""

from __future__ import annotations

import math
import socket
import threading
import time
import weakref
from contextlib import suppress
from typing import Any

import requests
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from pydownloads.domain.errors import DownloadTimeoutError
from pydownloads.infrastructure.connections import Connection, TLSConnection
from pydownloads.infrastructure.request_retry import RequestRetry
from pydownloads.infrastructure.retries import RetryingAdapter

#: How often the watchdog looks at the deadlines.
_TICK = 0.1


class _Slot:
    """One thread's request waiting for its headers: guarded by its own lock, which only
    that thread and the watchdog (every tick) take, so requests never contend for one."""

    __slots__ = ("__weakref__", "connection", "deadline", "ended", "limit", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connection: Any = None  # None: not waiting
        self.deadline = math.inf
        self.ended = False  # the watchdog shut this request's connection
        #: The deadline of the download the thread's current request serves (inf: none);
        #: only that thread reads and writes it.
        self.limit = math.inf


class ConnectionWatch:
    """Registry of connections waiting for response headers, and the thread that ends them.

    Thread-safe.  Each thread has a slot of its own (dropped with the thread); the watchdog
    thread starts with the first request and ends with :meth:`close`; it only ever shuts
    sockets down.
    """

    def __init__(self, header_timeout: float) -> None:
        self.header_timeout = header_timeout
        self._lock = threading.Lock()  # guards the registry and the watchdog's start
        self._slots: weakref.WeakSet[_Slot] = weakref.WeakSet()
        self._local = threading.local()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def expect(self, limit: float | None) -> None:
        """This thread sends a request that must also end by ``limit`` (monotonic; None:
        its header timeout alone), the deadline of the download it serves.  The pool hands
        out its connections (:meth:`waiting`) with no word of the request: the thread's
        slot carries the deadline from the adapter to them."""
        self._slot().limit = math.inf if limit is None else limit

    def _slot(self) -> _Slot:
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is None:  # once per thread: the thread-local keeps it alive as long as the thread
            slot = self._local.slot = _Slot()
            with self._lock:
                self._slots.add(slot)
                if self._thread is None and not self._closed.is_set():
                    self._thread = threading.Thread(target=self._run, name="pydownloads-watch", daemon=True)
                    self._thread.start()
        return slot

    def waiting(self, connection: Any) -> None:
        """``connection`` was taken from the pool for this thread's request."""
        slot = self._slot()
        deadline = min(time.monotonic() + self.header_timeout, slot.limit)
        with slot.lock:
            slot.connection, slot.deadline = connection, deadline

    def answered(self) -> bool:
        """This thread's request has its response headers (or failed); True if the watchdog
        had to end it, in which case the headers read may be cut short and worthless."""
        slot = self._slot()
        with slot.lock:
            slot.connection = None
            ended, slot.ended = slot.ended, False
        return ended

    def abort_all(self) -> None:
        """Unblock every request still waiting for its headers (hard shutdown)."""
        self._end(math.inf)

    def _end(self, now: float) -> None:
        """Shut the connections whose deadline is ``now`` or earlier."""
        with self._lock:
            slots = list(self._slots)
        for slot in slots:
            with slot.lock:
                connection = slot.connection
                if connection is None or slot.deadline > now:
                    continue
                slot.ended = True
            _shut(connection)

    def close(self) -> None:
        """Stop the watchdog thread (idempotent)."""
        self._closed.set()

    def _run(self) -> None:
        while not self._closed.wait(_TICK):
            self._end(time.monotonic())


def _shut(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class WatchedAdapter(RetryingAdapter):
    """An HTTPAdapter whose pools report the connections they hand out to ``watch``; a
    request's ``request_retry`` (see RetryingAdapter) also brings its download's deadline.
    Its pools' connections parse plain header blocks cheaply (``connections``)."""

    def __init__(self, watch: ConnectionWatch, **kwargs: Any) -> None:
        self.watch = watch
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        watch = self.watch
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("WatchedHTTPConnectionPool", (_Watched, HTTPConnectionPool),
                         {"watch": watch, "ConnectionCls": Connection}),
            "https": type("WatchedHTTPSConnectionPool", (_Watched, HTTPSConnectionPool),
                          {"watch": watch, "ConnectionCls": TLSConnection}),
        }

    def send(
        self, request: requests.PreparedRequest, *args: Any, request_retry: RequestRetry | None = None, **kwargs: Any
    ) -> requests.Response:
        self.watch.expect(None if request_retry is None else request_retry.listener.deadline_at)
        try:
            response = super().send(request, *args, request_retry=request_retry, **kwargs)
        except BaseException:
            self.watch.answered()
            raise
        if self.watch.answered():  # headers cut short by the watchdog: not a response at all
            response.close()
            url = str(response.url)
            raise DownloadTimeoutError(
                f"no complete response headers from {url} within {self.watch.header_timeout:g} s "
                "(or the download's deadline)", url=url)
        return response


class _Watched:
    watch: ConnectionWatch

    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)  # type: ignore[misc]
        self.watch.waiting(connection)
        return connection
