"""ConnectionWatch: each thread's waiting request is its own slot; only late ones are ended."""

from __future__ import annotations

import gc
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from pydownloads.infrastructure.watch import ConnectionWatch


class _Connection:
    """What the watchdog needs of a urllib3 connection: its socket."""

    def __init__(self) -> None:
        self.sock, self.peer = socket.socketpair()

    def shut(self) -> bool:
        """True when the watchdog shut this connection down (the peer reads end of stream)."""
        self.peer.settimeout(0.5)
        try:
            return self.peer.recv(1) == b""
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()
        self.peer.close()


def _in_thread(work: Callable[[], Any]) -> Any:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    return result[0]


def test_only_the_late_request_is_ended_and_told_so() -> None:
    watch = ConnectionWatch(header_timeout=30.0)
    early, late = _Connection(), _Connection()
    registered, decided = threading.Event(), threading.Event()
    answers: dict[str, bool] = {}

    def request(name: str, connection: _Connection, own_deadline: float | None) -> None:
        watch.expect(own_deadline)  # what WatchedAdapter.send does with the download's deadline
        watch.waiting(connection)
        registered.set()
        decided.wait(5)
        answers[name] = watch.answered()

    first = threading.Thread(target=request, args=("early", early, time.monotonic() + 1.0))
    first.start()
    registered.wait(5)
    cut = time.monotonic() + 10.0  # after the first request's deadline (1 s), before the second's (30 s)
    registered.clear()
    second = threading.Thread(target=request, args=("late", late, None))
    second.start()
    registered.wait(5)
    try:
        watch._end(cut)
        decided.set()
        first.join(5)
        second.join(5)
        assert answers == {"early": True, "late": False}
        assert early.shut() and not late.shut()
        assert _in_thread(watch.answered) is False  # a thread that never waited: nothing to say
    finally:
        watch.close()
        early.close()
        late.close()


def test_an_answered_request_is_not_ended_later() -> None:
    watch = ConnectionWatch(header_timeout=0.0)
    connection = _Connection()
    try:
        def ask() -> bool:
            watch.waiting(connection)
            return watch.answered()

        assert _in_thread(ask) is False
        watch.abort_all()
        assert not connection.shut()
    finally:
        watch.close()
        connection.close()


def test_slots_go_with_their_threads() -> None:
    watch = ConnectionWatch(header_timeout=30.0)
    try:
        for _ in range(20):
            connection = _Connection()

            def ask(c: _Connection = connection) -> bool:
                watch.waiting(c)
                return watch.answered()

            _in_thread(ask)
            connection.close()
        gc.collect()
        assert len(watch._slots) == 0  # segment lanes come and go: the registry must not grow
    finally:
        watch.close()
