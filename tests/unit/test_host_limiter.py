"""HostLimiter: connections per host, waiters served by priority then arrival, no sockets.

Each test lines the waiters up one at a time (``waiting`` says when a thread is queued)
before the first slot is freed, so the order seen is the limiter's, not the scheduler's.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest

from pydownloads.domain.errors import DownloadCancelledError
from pydownloads.infrastructure.limits import HostLimiter
from tests.support import wait_until

HOST = "example.com:443"


def _start(target: Callable[[], object]) -> tuple[threading.Thread, dict[str, object]]:
    """Run ``target`` in a daemon thread; its result or exception lands in the dict."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = target()
        except BaseException as error:  # handed to the test to assert on
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _queue_up(limiter: HostLimiter, priority: int, order: list[str], name: str, *,
              cancel: threading.Event | None = None,
              leave: threading.Event | None = None) -> tuple[threading.Thread, dict[str, object]]:
    """A thread that waits for a slot, notes ``name`` in ``order`` and gives the slot back
    (once ``leave`` is set, if given); returns once the thread is queued."""
    queued = limiter.waiting(HOST)

    def take_note_and_leave() -> None:
        limiter.acquire(HOST, cancel or threading.Event(), priority=priority)
        order.append(name)
        if leave is not None:
            leave.wait(5)
        limiter.release(HOST)

    started = _start(take_note_and_leave)
    assert wait_until(lambda: limiter.waiting(HOST) == queued + 1)
    return started


def _join(*threads: threading.Thread) -> None:
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()


def test_a_free_slot_is_taken_at_once_and_a_full_host_refuses_without_waiting() -> None:
    limiter = HostLimiter(2)
    never = threading.Event()
    assert limiter.acquire(HOST, never) and limiter.acquire(HOST, never, wait=False)
    assert not limiter.acquire(HOST, never, wait=False)
    assert (limiter.in_use(HOST), limiter.waiting(HOST)) == (2, 0)
    assert limiter.acquire("other:80", never, wait=False)  # hosts do not share slots
    for host in (HOST, HOST, "other:80"):
        limiter.release(host)
    assert (limiter.in_use(HOST), limiter.in_use("other:80")) == (0, 0)


def test_waiters_are_served_by_priority_then_in_order_of_arrival() -> None:
    limiter = HostLimiter(1)
    limiter.acquire(HOST, threading.Event())
    order: list[str] = []
    arrivals = [("low-1", 0), ("high-1", 5), ("low-2", 0), ("top", 9), ("high-2", 5), ("negative", -1)]
    threads = [_queue_up(limiter, priority, order, name)[0] for name, priority in arrivals]
    limiter.release(HOST)
    _join(*threads)
    assert order == ["top", "high-1", "high-2", "low-1", "low-2", "negative"]
    assert (limiter.in_use(HOST), limiter.waiting(HOST)) == (0, 0)


def test_a_freed_slot_goes_to_the_waiter_not_to_a_newcomer_or_a_lane() -> None:
    limiter = HostLimiter(1)
    never = threading.Event()
    limiter.acquire(HOST, never)
    order: list[str] = []
    leave = threading.Event()  # keeps the waiter on its slot until the checks are done
    waiter, outcome = _queue_up(limiter, 0, order, "waiter", leave=leave)
    limiter.release(HOST)
    # The slot changed hands inside release: a lane asking right after finds none free.
    assert not limiter.acquire(HOST, never, wait=False, priority=100)
    assert limiter.in_use(HOST) == 1 and wait_until(lambda: order == ["waiter"])
    leave.set()
    _join(waiter)
    assert order == ["waiter"] and outcome == {"result": None}
    assert limiter.in_use(HOST) == 0


def test_cancelling_a_wait_ends_it_at_once_and_takes_no_slot() -> None:
    limiter = HostLimiter(1)
    limiter.acquire(HOST, threading.Event())
    cancel = threading.Event()
    order: list[str] = []
    thread, outcome = _queue_up(limiter, 0, order, "cancelled", cancel=cancel)
    started = time.monotonic()
    cancel.set()
    _join(thread)
    assert time.monotonic() - started < 1.0
    assert isinstance(outcome.get("error"), DownloadCancelledError) and order == []
    assert limiter.waiting(HOST) == 0
    limiter.release(HOST)
    assert limiter.in_use(HOST) == 0  # nobody was handed the slot


def test_a_cancelled_waiter_is_skipped_and_the_next_one_served() -> None:
    limiter = HostLimiter(1)
    limiter.acquire(HOST, threading.Event())
    cancel = threading.Event()
    order: list[str] = []
    first, first_outcome = _queue_up(limiter, 9, order, "cancelled", cancel=cancel)
    second, _ = _queue_up(limiter, 0, order, "served")
    cancel.set()
    _join(first)
    assert isinstance(first_outcome.get("error"), DownloadCancelledError)
    limiter.release(HOST)
    _join(second)
    assert order == ["served"] and (limiter.in_use(HOST), limiter.waiting(HOST)) == (0, 0)


class _CancelledAsTheSlotArrives(threading.Event):
    """A cancel event that, once armed, hands the waiter its slot just before it reads as set:
    the slot and the cancel arrive together."""

    def __init__(self, limiter: HostLimiter) -> None:
        super().__init__()
        self.limiter = limiter
        self.armed = False

    def is_set(self) -> bool:
        if self.armed and not super().is_set():
            self.limiter.release(HOST)  # the test's own slot, handed to the waiter
            self.set()
        return super().is_set()


def test_a_waiter_cancelled_as_its_slot_arrives_passes_the_slot_on() -> None:
    limiter = HostLimiter(1)
    limiter.acquire(HOST, threading.Event())
    cancel = _CancelledAsTheSlotArrives(limiter)
    order: list[str] = []
    first, first_outcome = _queue_up(limiter, 9, order, "cancelled", cancel=cancel)
    second, _ = _queue_up(limiter, 0, order, "next")
    cancel.armed = True
    _join(first, second)
    assert isinstance(first_outcome.get("error"), DownloadCancelledError)
    assert order == ["next"] and (limiter.in_use(HOST), limiter.waiting(HOST)) == (0, 0)


def test_many_threads_never_exceed_the_limit_and_leave_no_books_behind() -> None:
    limiter = HostLimiter(3)
    lock = threading.Lock()
    held, peak = 0, 0
    chooser = random.Random(4)
    plan = [(chooser.choice(["a", "b"]), chooser.randint(-2, 2)) for _ in range(60)]

    def use(host: str, priority: int) -> None:
        nonlocal held, peak
        for _ in range(20):
            limiter.acquire(host, threading.Event(), priority=priority)
            with lock:
                held += host == "a"
                peak = max(peak, held)
            with lock:
                held -= host == "a"
            limiter.release(host)

    threads = [_start(lambda h=host, p=priority: use(h, p))[0] for host, priority in plan]
    _join(*threads)
    assert 0 < peak <= 3
    for host in ("a", "b"):
        assert (limiter.in_use(host), limiter.waiting(host)) == (0, 0)
    assert not limiter._queues  # no host's queue outlives its waiters


def test_a_slot_is_held_for_a_block_and_given_back() -> None:
    limiter = HostLimiter(1)
    with limiter.slot(HOST, threading.Event(), priority=3):
        assert limiter.in_use(HOST) == 1
        assert not limiter.acquire(HOST, threading.Event(), wait=False)
    assert limiter.in_use(HOST) == 0
    assert limiter.acquire(HOST, threading.Event(), wait=False)


def test_a_raised_limit_hands_the_new_slots_to_the_waiters_in_their_order() -> None:
    limiter = HostLimiter(1)
    cancel = threading.Event()
    assert limiter.acquire("h", cancel)
    got: list[int] = []
    lock = threading.Lock()

    def wait(priority: int) -> None:
        limiter.acquire("h", cancel, priority=priority)
        with lock:
            got.append(priority)

    threads = [threading.Thread(target=wait, args=(p,), daemon=True) for p in (1, 5, 3)]
    for number, thread in enumerate(threads, start=1):
        thread.start()
        assert wait_until(lambda n=number: limiter.waiting("h") == n)
    limiter.raise_limit(3)  # two new slots: the two highest priorities, without a release
    assert wait_until(lambda: len(got) == 2)
    assert sorted(got) == [3, 5] and limiter.in_use("h") == 3 and limiter.waiting("h") == 1
    limiter.raise_limit(2)  # lower: ignored
    limiter.release("h")
    assert wait_until(lambda: len(got) == 3)
    cancel.set()
    for thread in threads:
        thread.join(timeout=5)


def test_waits_counts_each_acquisition_that_had_to_wait_per_host() -> None:
    limiter = HostLimiter(1)
    cancel = threading.Event()
    assert limiter.acquire("a", cancel) and limiter.acquire("b", cancel)
    assert not limiter.acquire("a", cancel, wait=False)  # not a wait: it gave up at once
    assert limiter.waits() == {}
    threads = [threading.Thread(target=limiter.acquire, args=("a", cancel), daemon=True) for _ in range(2)]
    for number, thread in enumerate(threads, start=1):
        thread.start()
        assert wait_until(lambda n=number: limiter.waiting("a") == n)
    assert limiter.waits() == {"a": 2}
    limiter.release("a")
    limiter.release("a")  # both served: the count stays, it is a total
    for thread in threads:
        thread.join(timeout=5)
    assert limiter.waits() == {"a": 2} and limiter.waiting("a") == 0
    snapshot = limiter.waits()
    snapshot["a"] = 99  # a copy: the limiter's books are its own
    assert limiter.waits() == {"a": 2}


# -- a gate beyond the process: two limiters sharing one, as two processes share a cluster's --


class SharedGate:
    """An in-process HostGate: ``limit`` slots per host over every limiter holding it; notes
    the calls it gets and the most slots out at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.calls: list[str] = []
        self.most = 0
        self.refuse_error: BaseException | None = None
        self._out = 0
        self._free = threading.Condition()

    def acquire(self, host: str, cancel_event: threading.Event, *, wait: bool) -> bool:
        self.calls.append("acquire")
        if self.refuse_error is not None:
            raise self.refuse_error
        with self._free:
            while self._out >= self.limit:
                if not wait:
                    return False
                if cancel_event.is_set():
                    raise DownloadCancelledError("cancelled at the gate")
                self._free.wait(0.01)
            self._out += 1
            self.most = max(self.most, self._out)
            return True

    def release(self, host: str) -> None:
        self.calls.append("release")
        with self._free:
            self._out -= 1
            self._free.notify()

    def close(self) -> None:
        self.calls.append("close")


def test_limiters_sharing_a_gate_never_hold_more_than_its_cap_together() -> None:
    gate = SharedGate(3)
    limiters = [HostLimiter(3, gate=gate), HostLimiter(3, gate=gate)]  # two processes' worth
    cancel = threading.Event()
    lock = threading.Lock()
    holding = {"now": 0, "most": 0}

    def download(limiter: HostLimiter) -> None:
        for _ in range(20):
            with limiter.slot(HOST, cancel):
                with lock:
                    holding["now"] += 1
                    holding["most"] = max(holding["most"], holding["now"])
                time.sleep(random.random() / 1000)
                with lock:
                    holding["now"] -= 1

    threads = [threading.Thread(target=download, args=(limiters[n % 2],), daemon=True) for n in range(16)]
    for thread in threads:
        thread.start()
    _join(*threads)
    assert holding["most"] == 3 and gate.most == 3  # reached, never passed
    assert all(limiter.in_use(HOST) == 0 for limiter in limiters)
    assert gate.calls.count("acquire") == gate.calls.count("release") == 16 * 20


def test_a_gate_that_refuses_or_fails_gets_the_local_slot_back() -> None:
    gate = SharedGate(1)
    limiter = HostLimiter(2, gate=gate)
    cancel = threading.Event()
    assert limiter.acquire(HOST, cancel)
    assert not limiter.acquire(HOST, cancel, wait=False)  # the gate is full: a lane fewer
    assert limiter.in_use(HOST) == 1
    gate.refuse_error = RuntimeError("scheduler gone")
    with pytest.raises(RuntimeError):
        limiter.acquire(HOST, cancel, wait=False)
    assert limiter.in_use(HOST) == 1
    gate.refuse_error = None
    limiter.release(HOST)
    assert limiter.in_use(HOST) == 0 and gate.calls[-1] == "release"


def test_a_wait_at_the_gate_ends_on_cancel_and_the_next_waiter_gets_the_local_slot() -> None:
    gate = SharedGate(1)
    holder = HostLimiter(1, gate=gate)  # another process holds the cluster's only slot
    limiter = HostLimiter(1, gate=gate)
    assert holder.acquire(HOST, threading.Event())
    cancel = threading.Event()
    waiting, outcome = _start(lambda: limiter.acquire(HOST, cancel))
    assert wait_until(lambda: limiter.in_use(HOST) == 1)  # it holds the local slot, waits at the gate
    queued, second = _start(lambda: limiter.acquire(HOST, threading.Event()))
    assert wait_until(lambda: limiter.waiting(HOST) == 1)
    cancel.set()
    _join(waiting)
    assert isinstance(outcome["error"], DownloadCancelledError)
    holder.release(HOST)  # the cluster's slot comes back: the second waiter takes both
    _join(queued)
    assert second == {"result": True} and limiter.in_use(HOST) == 1
    limiter.release(HOST)
    assert limiter.in_use(HOST) == 0
