"""The shared state of a :class:`~pydownloads.testing.LocalServer`, behind one lock.

The server configures it and reads its counters; each handler thread takes one request
through it (:meth:`ServerState.begin` … :meth:`ServerState.end`).  Those methods are the
whole of what a handler may touch: it never reaches into the server.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import defaultdict, deque
from typing import Any, Final

from pydownloads.testing.auth import AuthGate
from pydownloads.testing.faults import Fault, Status
from pydownloads.testing.records import Headers, RequestRecord
from pydownloads.testing.responses import FileRoute, Response, Route, response_for, unauthorized

#: Upper bound of any single wait, as a safety net.
POLL: Final = 0.05


class ServerState:
    """Routes, scripted faults, holds, request records and counters of one server.

    Thread-safe: one lock, held for O(1) work (copies of the records aside), never while a
    handler waits or writes to its socket.  ``stop`` ends every wait at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._routes: dict[str, Route] = {}
        self._faults: defaultdict[str, deque[Fault]] = defaultdict(deque)
        self._holds: dict[str, threading.Event] = {}
        self._records: dict[int, RequestRecord] = {}  # by seq, in arrival order
        self._seq = -1
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._bytes: defaultdict[str, int] = defaultdict(int)
        self._errors: list[str] = []
        self._active = 0
        self._max_active = 0
        self._gate = AuthGate()

    # -- configuration (the server) -----------------------------------------------------
    def set_route(self, path: str, route: Route) -> None:
        """Serve ``route`` at ``path`` from now on."""
        with self._lock:
            self._routes[path] = route

    def route(self, path: str) -> Route | None:
        """What ``path`` serves, if anything."""
        with self._lock:
            return self._routes.get(path)

    def add_faults(self, path: str, faults: tuple[Fault, ...]) -> None:
        """Queue ``faults`` for the next requests to ``path``."""
        with self._lock:
            self._faults[path].extend(faults)

    def hold(self, path: str) -> None:
        """Requests to ``path`` wait before answering until :meth:`release`."""
        with self._lock:
            self._holds.setdefault(path, threading.Event())

    def release(self, path: str) -> None:
        """Let held (and future) requests to ``path`` go on."""
        with self._lock:
            event = self._holds.pop(path, None)
        if event is not None:
            event.set()

    def stop(self) -> None:
        """End every wait now, and every wait to come at once."""
        self._stop.set()
        with self._lock:
            for event in self._holds.values():
                event.set()

    # -- observation (the server) -------------------------------------------------------
    def records(self) -> list[RequestRecord]:
        """Copies of the request records, in arrival order."""
        with self._lock:
            return [dataclasses.replace(r, headers=Headers(r.headers)) for r in self._records.values()]

    def request_count(self, path: str) -> int:
        """Requests for ``path`` seen."""
        with self._lock:
            return self._counts[path]

    def bytes_sent(self, path: str) -> int:
        """Body bytes written for ``path``."""
        with self._lock:
            return self._bytes[path]

    def max_concurrency(self) -> int:
        """Most requests handled at once."""
        with self._lock:
            return self._max_active

    def errors(self) -> list[str]:
        """Tracebacks recorded by :meth:`record_error`."""
        with self._lock:
            return list(self._errors)

    def idle(self) -> bool:
        """Whether no request is being handled."""
        with self._lock:
            return self._active == 0

    def reset_stats(self) -> None:
        """Forget records and counters; max_concurrency restarts at the current load."""
        with self._lock:
            self._records.clear()
            self._counts.clear()
            self._bytes.clear()
            self._max_active = self._active

    # -- one request (a handler thread) -------------------------------------------------
    def begin(self, method: str, path: str, headers: Headers, target: str,
              client_port: int) -> tuple[Fault | None, int]:
        """Record a request and hand out its fault, if one is queued; returns the fault
        and the request's number for :meth:`set_status` and :meth:`end`."""
        with self._lock:
            queue = self._faults.get(path)
            fault = queue.popleft() if queue else None
            seq = self._seq = self._seq + 1
            self._records[seq] = RequestRecord(
                method, path, headers, headers.get("Range"), time.monotonic(), target, client_port, fault,
                seq=seq,
            )
            self._counts[path] += 1
            self._active += 1
            self._max_active = max(self._max_active, self._active)
            return fault, seq

    def wait_hold(self, path: str) -> bool:
        """Block while ``path`` is held; ``False`` if the server is stopping."""
        with self._lock:
            event = self._holds.get(path)
        while event is not None and not event.is_set() and not self._stop.is_set():
            event.wait(POLL)
        return not self._stop.is_set()

    def pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the server stops meanwhile."""
        self._stop.wait(seconds)

    @property
    def stopping(self) -> bool:
        """Whether the server is stopping: a handler gives up what it is sending."""
        return self._stop.is_set()

    def respond(self, method: str, target: str, path: str, headers: Headers, fault: Fault | None) -> Response:
        """The response to ``method`` ``target`` (for ``path``) with ``headers``, ``fault``
        applied; a 401 when the file asks for credentials the request does not carry (a
        ``Status`` fault goes first)."""
        route = self.route(path)
        if isinstance(route, FileRoute) and route.auth is not None and not isinstance(fault, Status):
            challenges = self._gate.check(route.auth, method, target, headers)
            if challenges is not None:
                return unauthorized(challenges)
        return response_for(route, headers, fault)

    def set_status(self, seq: int, status: int) -> None:
        """The status request ``seq`` is answered with (just before the head goes out)."""
        self._update(seq, status=status)

    def count_bytes(self, path: str, nbytes: int) -> None:
        """``nbytes`` more (or fewer, if negative) body bytes written for ``path``."""
        with self._lock:
            self._bytes[path] += nbytes

    def end(self, seq: int) -> None:
        """The server is done with request ``seq``."""
        with self._lock:
            self._active -= 1
        self._update(seq, finished_at=time.monotonic())

    def record_error(self, error: str) -> None:
        """Keep the traceback of an unexpected exception in a handler."""
        with self._lock:
            self._errors.append(error)

    def _update(self, seq: int, **changes: Any) -> None:
        with self._lock:
            record = self._records.get(seq)  # None after reset_stats()
            if record is not None:
                self._records[seq] = dataclasses.replace(record, **changes)
