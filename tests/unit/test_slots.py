"""How many worker threads transfer at once: the gauge (pure) and the slots (threads)."""

from __future__ import annotations

import threading

import pytest

from pydownloads.downloads.slots import HOLD, LOSS, SlotGauge, WorkerSlots

W = 0.1  # the window of every gauge here


class Run:
    """A process seen window by window: how much of a core it used, how many bytes came."""

    def __init__(self, most: int = 16) -> None:
        self.now, self.cpu, self.received = 0.0, 0.0, 0
        self.gauge = SlotGauge(most, 0.0, 0.0, 0, window=W)

    def window(self, share: float, speed: float, *, taken: int | None = None, seconds: float = W) -> int | None:
        self.now += seconds
        self.cpu += share * seconds
        self.received += int(speed * seconds)
        return self.gauge.look(self.now, self.cpu, self.received, self.gauge.limit if taken is None else taken)


def test_a_process_bound_by_its_interpreter_halves_down_to_one_thread() -> None:
    run = Run()
    limits = [run.window(1.0, 30e6) for _ in range(6)]
    assert limits == [8, 4, 2, 1, None, None]  # never below one


def test_nothing_moves_before_a_window_has_passed() -> None:
    run = Run()
    assert run.window(1.0, 30e6, seconds=W / 2) is None
    assert run.gauge.limit == 16
    assert run.window(1.0, 30e6, seconds=W / 2) == 8


def test_between_idle_and_busy_the_limit_stays() -> None:
    run = Run()
    assert [run.window(0.7, 30e6) for _ in range(5)] == [None] * 5
    assert run.gauge.limit == 16


def test_a_process_waiting_on_the_network_doubles_back_up_to_every_thread() -> None:
    run = Run()
    for _ in range(4):
        run.window(1.0, 30e6)
    assert run.gauge.limit == 1
    assert [run.window(0.2, 1e6) for _ in range(5)] == [2, 4, 8, 16, None]


def test_a_cut_is_judged_only_once_the_threads_above_it_have_let_go() -> None:
    run = Run()
    assert run.window(1.0, 30e6) == 8
    # Sixteen still hold a slot (long jobs): no judgement, and no further cut, however slow.
    assert run.window(1.0, 1e6, taken=16) is None
    assert run.window(1.0, 1e6, taken=9) is None
    assert run.gauge.limit == 8
    assert run.window(1.0, 30e6, taken=8) == 4  # as fast as before: the cut stands, the next is tried


def test_a_cut_that_costs_bytes_goes_back_and_holds_a_while_longer_each_time() -> None:
    run = Run()
    assert run.window(1.0, 100e6) == 8
    assert run.window(1.0, LOSS * 100e6 * 0.9) == 16  # fewer threads, fewer bytes: back
    held = [run.window(1.0, 100e6) for _ in range(int(HOLD / W) - 1)]
    assert held == [None] * len(held) and run.gauge.limit == 16
    run.window(1.0, 100e6)
    assert run.gauge.limit == 8  # the hold is over: tried again
    assert run.window(1.0, 10e6) == 16  # failed again: held twice as long
    assert all(run.window(1.0, 100e6) is None for _ in range(int(2 * HOLD / W) - 1))
    run.window(1.0, 100e6)
    assert run.gauge.limit == 8


def test_a_failed_cut_does_not_stop_cuts_to_what_already_paid() -> None:
    run = Run()
    assert run.window(1.0, 100e6) == 8
    assert run.window(1.0, 100e6) == 4  # accepted, then cut again
    assert run.window(1.0, 50e6) == 8  # that one cost bytes: back to 8, not to 16
    assert run.gauge.limit == 8


class Clock:
    """A clock and a CPU counter the test moves: the process uses a whole core while ``busy``."""

    def __init__(self) -> None:
        self.now = self.spent = 0.0
        self.busy = True

    def advance(self, seconds: float = 1.0) -> None:
        self.now += seconds
        self.spent += seconds if self.busy else 0.0

    def clock(self) -> float:
        return self.now

    def cpu(self) -> float:
        return self.spent


def _slots(most: int, clock: Clock, *, adaptive: bool = True) -> WorkerSlots:
    return WorkerSlots(most, lambda: 0, adaptive=adaptive, window=0.01, clock=clock.clock, cpu=clock.cpu)


def _in_thread(call: object) -> tuple[threading.Thread, threading.Event]:
    """Run ``call`` in a daemon thread; the event is set once it returned."""
    done = threading.Event()

    def run() -> None:
        call()  # type: ignore[operator]
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def test_a_thread_above_a_lower_limit_gives_its_slot_back_after_its_job_and_waits() -> None:
    clock = Clock()
    slots = _slots(4, clock)
    for _ in range(4):
        slots.take()  # four threads on long jobs
    clock.advance()
    thread, through = _in_thread(slots.keep)  # one of them ends its job: busy, 4 -> 2
    assert not through.wait(0.1)  # it gave its slot back (3 held) and waits: 3 >= 2
    assert slots.limit == 2
    slots.give()
    assert not through.wait(0.05)  # 2 held: still at the limit
    slots.give()
    assert through.wait(5)  # 1 held: it takes the second slot
    thread.join(5)


def test_a_parked_thread_raises_the_limit_while_no_job_ends() -> None:
    clock = Clock()
    slots = _slots(2, clock)
    slots.take()
    slots.take()
    clock.advance()
    thread, through = _in_thread(slots.keep)  # 2 -> 1: it parks, the other job goes on and on
    assert not through.wait(0.1)
    assert slots.limit == 1
    clock.busy = False  # the process now waits on the network: the parked thread looks, and goes
    clock.advance()
    assert through.wait(5)
    assert slots.limit == 2
    thread.join(5)


def test_closed_slots_let_every_parked_thread_go() -> None:
    clock = Clock()
    slots = _slots(3, clock)
    for _ in range(3):
        slots.take()
    clock.advance()
    parked = [_in_thread(slots.keep)]  # 3 -> 1: gives back, parks
    assert not parked[0][1].wait(0.05)
    parked += [_in_thread(slots.take) for _ in range(2)]
    assert not any(done.wait(0.05) for _, done in parked)
    slots.close()
    assert all(done.wait(5) for _, done in parked)


@pytest.mark.parametrize("most", [1, 4])
def test_fixed_slots_never_park_a_thread(most: int) -> None:
    clock = Clock()
    slots = _slots(most, clock, adaptive=False)
    for _ in range(most):
        slots.take()
    clock.advance()
    slots.keep()
    assert slots.limit == most and not slots.history
