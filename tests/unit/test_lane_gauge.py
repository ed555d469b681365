"""LaneGauge: when a file's first connection gets company, on a fake clock.

Lanes join a connection that is slow while the lane keeps up with it; a fast connection,
or one whose bytes pile up unread (a busy machine), runs alone; a marginal one needs two
looks that agree; a lane that waited for a core is judged over the time it could run.
"""

from __future__ import annotations

import pytest

from pydownloads.downloads.segment_table import BEHIND, PLAINLY_SLOW, STARVED, LaneGauge

FAST = 300e6
PROBE, RECHECK = 0.02, 0.5


class _Lane:
    """A first lane on a fake clock: ``run(seconds, rate, waiting)`` moves it on."""

    def __init__(self, fast: float = FAST) -> None:
        self.gauge = LaneGauge(fast, window=PROBE, recheck=RECHECK)
        self.now, self.fetched, self.queued = 100.0, 0, 0.0

    def run(self, seconds: float, rate: float, waiting: int | None = 0, queued: float = 0.0) -> bool:
        """Let ``seconds`` pass at ``rate`` bytes/s, its thread waiting for a core ``queued``
        of the time, then look once, ``waiting`` bytes unread."""
        self.now += seconds
        self.fetched += int(rate * seconds)
        self.queued += queued * seconds
        return self.gauge.slow(self.now, self.fetched, waiting, self.queued)

    def looks_until_lanes(self, rate: float, waiting: int | None, looks: int = 40, queued: float = 0.0) -> int | None:
        for look in range(looks):
            if self.run(self.gauge.window, rate, waiting, queued):
                return look
        return None


def test_nothing_is_judged_at_the_first_look_nor_within_the_first_window() -> None:
    lane = _Lane()
    assert not lane.run(1.0, 20e6)  # the first look opens the window
    assert not lane.run(PROBE / 2, 20e6)  # too short yet
    assert lane.run(PROBE / 2, 20e6)  # plainly slow and keeping up: lanes at once


def test_a_lane_whose_bytes_have_not_come_yet_is_slow() -> None:
    lane = _Lane()
    lane.run(0.0, 0)
    assert lane.run(PROBE, 0, waiting=0)


def test_a_connection_capped_per_connection_gets_its_lanes_on_the_first_full_look() -> None:
    lane = _Lane()
    lane.run(0.013, 20e6)  # its first chunk (20 MB/s per connection, as the W4 server)
    assert lane.looks_until_lanes(20e6, waiting=30_000) == 0


def test_a_fast_connection_runs_alone_look_after_look() -> None:
    lane = _Lane()
    lane.run(0.002, 1e9)
    assert lane.looks_until_lanes(1e9, waiting=4 << 20) is None
    assert lane.gauge.window == RECHECK  # a fast lane is looked at seldom


@pytest.mark.parametrize("rate", [0.0, 50e6, 200e6, 290e6])
def test_a_lane_behind_its_connection_runs_alone_and_never_flips(rate: float) -> None:
    """The busy machine of the issue: the lane copies slower than its connection would
    deliver, bytes wait unread look after look, and 16 ranges would only share the same
    cores."""
    lane = _Lane()
    lane.run(0.002, 1e9)
    assert lane.looks_until_lanes(rate, waiting=8 << 20) is None
    assert lane.gauge.window == PROBE  # whether it catches up shows soon


def test_what_waits_unread_counts_as_arrived() -> None:
    """A lane descheduled for a window copies nothing, but its connection kept delivering."""
    lane = _Lane()
    lane.run(0.002, 1e9, waiting=0)
    assert not lane.run(PROBE, 0, waiting=8 << 20)  # 8 MiB in 20 ms arrived: fast


def test_a_plainly_slow_connection_gets_lanes_when_its_lane_catches_up() -> None:
    """A server capping each connection, on a busy machine: a backlog of a short window's
    worth is not being behind, and once the lane catches up, lanes join."""
    lane = _Lane()
    lane.run(0.002, 20e6, waiting=BEHIND * 4)
    assert not lane.run(PROBE, 20e6, waiting=BEHIND * 4)  # 1 MiB waiting twice at 20 MB/s: behind
    assert lane.run(PROBE, 20e6, waiting=BEHIND // 2)  # 128 KiB: caught up (20 MB/s * 20 ms = 400 KB)


def test_one_look_with_a_backlog_is_not_being_behind() -> None:
    lane = _Lane()
    lane.run(0.002, 200e6, waiting=0)
    assert not lane.run(PROBE, 200e6, waiting=BEHIND)  # marginal: doubt
    assert lane.run(lane.gauge.window, 200e6, waiting=0)  # the backlog went, the rate stayed: lanes


def test_a_marginal_rate_needs_a_second_look_that_agrees() -> None:
    marginal = FAST * (PLAINLY_SLOW + 0.25)
    lane = _Lane()
    lane.run(0.002, marginal)
    assert lane.looks_until_lanes(marginal, waiting=0) == 1  # the first look doubts, the second decides
    assert lane.now - 100.0 < 0.002 + 2 * PROBE + 1e-9  # and comes soon


def test_fast_and_marginal_looks_in_turn_do_not_add_lanes() -> None:
    lane = _Lane()
    lane.run(0.002, 1e9)
    for _ in range(10):  # never two slow looks in a row
        assert not lane.run(lane.gauge.window, 1e9)
        assert not lane.run(lane.gauge.window, FAST * 0.5)


def test_a_connection_that_slows_down_later_gets_lanes_within_two_rechecks() -> None:
    lane = _Lane(fast=4e6)
    lane.run(0.002, 16e6)
    assert lane.looks_until_lanes(16e6, waiting=0, looks=5) is None
    assert lane.looks_until_lanes(2e6, waiting=0, looks=3) == 1  # half of fast: the second look decides


def test_without_figures_from_the_system_the_rate_alone_decides() -> None:
    gauge = LaneGauge(FAST, window=PROBE, recheck=RECHECK)
    assert not gauge.slow(1.0, 1 << 20, None, None)
    assert gauge.slow(1.0 + PROBE, (1 << 20) + 100_000, None, None)


def test_a_lane_starved_of_cpu_is_judged_over_the_time_it_could_run() -> None:
    """The loaded machine: the lane's thread waited for a core most of the time, and the
    server, starved too, sent little; over the time the lane ran, the link was fast enough."""
    lane = _Lane()
    lane.run(0.002, 1e9)
    assert lane.looks_until_lanes(100e6, waiting=0, queued=0.8) is None  # 100 MB/s in 20 % of the time
    assert lane.gauge.window == PROBE


def test_a_link_plainly_slow_even_over_the_time_the_lane_ran_gets_lanes() -> None:
    """A server capping each connection, on a busy machine: 20 MB/s over the 40 % of the time
    the lane ran is still plainly slow, and more connections bring more."""
    lane = _Lane()
    lane.run(0.002, 20e6)
    assert lane.looks_until_lanes(20e6, waiting=0, queued=STARVED + 0.35) == 0
