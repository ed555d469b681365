"""SegmentTable: which bytes are left and who fetches them, without threads or clocks."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from pydownloads.domain.errors import InvalidArgumentError
from pydownloads.downloads.segment_table import (
    STEAL_MIN_BYTES,
    STEAL_MIN_SECONDS,
    YOUNG,
    Segment,
    SegmentTable,
    hole_ranges,
    merge,
)
from pydownloads.downloads.segments import hole_ranges as old_hole_ranges
from pydownloads.downloads.segments import merge as old_merge
from pydownloads.downloads.settings import FAST_LANE, TransferSettings

MIB = 1 << 20
CHUNK = 256 << 10


def _table(total: int, done: list[tuple[int, int]] | None = None, chunk: int = CHUNK) -> SegmentTable:
    return SegmentTable(done or [], total, chunk_size=chunk)


def _spans(table: SegmentTable) -> list[tuple[int, int, int]]:
    return [(s.start, s.pos, s.end) for s in table.segments]


# -- ranges --------------------------------------------------------------------------------


def test_merge_sorts_joins_touching_and_drops_empty_ranges() -> None:
    assert merge([(5, 9), (0, 3), (3, 4), (7, 12), (20, 20), (15, 14)]) == [(0, 4), (5, 12)]


def test_holes_are_what_done_ranges_leave_of_the_file() -> None:
    assert hole_ranges([(2, 4), (3, 6), (8, 10)], 12) == [(0, 2), (6, 8), (10, 12)]
    assert hole_ranges([(0, 12)], 12) == []
    assert hole_ranges([], 0) == []


def test_merge_and_hole_ranges_stay_importable_from_segments() -> None:
    assert old_merge is merge and old_hole_ranges is hole_ranges


def test_a_table_holds_a_segment_per_hole() -> None:
    table = _table(100, [(10, 20), (50, 60)])
    assert _spans(table) == [(0, 0, 10), (20, 20, 50), (60, 60, 100)]
    assert table.missing() == 80 and table.fetched() == 0
    assert table.done_ranges() == [(10, 20), (50, 60)]
    assert table.remaining_ranges() == [(0, 10), (20, 50), (60, 100)]


# -- taking work ---------------------------------------------------------------------------


def test_the_first_response_takes_the_first_hole_and_others_take_free_ones_in_order() -> None:
    table = _table(100, [(10, 20)])
    first = table.claim_first(1.0, to_end=True)
    assert (first.start, first.end, first.active, first.began, first.began_at) == (0, 10, True, 1.0, 0)
    second = table.next_segment(2.0)
    assert second is not None and (second.start, second.end, second.began) == (20, 100, 2.0)
    assert table.next_segment(3.0) is None  # nothing free, nothing big enough to split


def test_advance_moves_forward_only_and_never_past_the_end() -> None:
    table = _table(10 * MIB)
    segment = table.claim_first(0.0, to_end=True)
    assert table.advance(segment, 100) == 10 * MIB and segment.pos == 100
    table.advance(segment, 50)
    assert segment.pos == 100
    segment.end = 200  # a split cut the tail while a read was in flight
    assert table.advance(segment, 300) == 200 and segment.pos == 200
    assert table.done_ranges() == [(0, 200)] and table.fetched() == 200


def _running(total: int, *, done: int, chunk: int = CHUNK) -> tuple[SegmentTable, Segment]:
    """A table whose only segment has run since time 0 and fetched ``done`` bytes."""
    table = _table(total, chunk=chunk)
    segment = table.claim_first(0.0, to_end=True)
    table.advance(segment, done)
    return table, segment


def test_an_idle_lane_steals_the_second_half_of_a_slow_range() -> None:
    table, running = _running(10 * MIB, done=2 * MIB)  # 2 MiB/s: 4 s left
    stolen = table.next_segment(1.0)
    assert stolen is not None and stolen.active
    assert (running.pos, running.end) == (2 * MIB, 6 * MIB)
    assert (stolen.start, stolen.pos, stolen.end, stolen.began, stolen.began_at) == (6 * MIB, 6 * MIB, 10 * MIB,
                                                                                       1.0, 6 * MIB)


def test_no_steal_from_a_young_response_nor_one_about_to_finish() -> None:
    table, _ = _running(10 * MIB, done=0)
    assert table.next_segment(YOUNG / 2) is None  # too young to know its speed
    table, running = _running(10 * MIB, done=9 * MIB)  # 1 MiB left at 9 MiB/s
    assert running.seconds_left(1.0) < STEAL_MIN_SECONDS and table.next_segment(1.0) is None
    table, _ = _running(10 * MIB, done=0)
    assert table.next_segment(1.0) is not None  # nothing came for a second: infinitely slow


def test_a_steal_leaves_no_piece_under_the_minimum() -> None:
    left = 2 * STEAL_MIN_BYTES - 1
    table, _ = _running(left + 10, done=10)  # very slow, but too small to cut in two
    assert table.next_segment(10.0) is None and not table.may_split_later()
    table, _ = _running(4 * MIB + 10, done=10, chunk=3 * MIB)  # reads bigger than STEAL_MIN_BYTES
    assert table.next_segment(10.0) is None


def test_the_slowest_range_is_stolen_from() -> None:
    table = _table(40 * MIB)
    fast = table.claim_first(0.0, to_end=True)
    slow = table.split(fast, 20 * MIB, 0.0)
    table.advance(fast, 8 * MIB)  # 8 MiB/s: 1.5 s left
    table.advance(slow, 21 * MIB)  # 1 MiB/s: 19 s left
    stolen = table.next_segment(1.0)
    assert stolen is not None and stolen.start == 21 * MIB + 19 * MIB // 2 and slow.end == stolen.start


def test_free_work_comes_before_stealing_and_no_steal_once_ranges_are_refused() -> None:
    table, running = _running(40 * MIB, done=MIB)
    table.presplit(2, MIB, 1.0)
    free = table.next_segment(1.0)
    assert free is not None and free.start == running.end and len(table.segments) == 2  # taken, not split
    table.release(free)
    table.take_over(free)
    assert table.ranges_unsupported and not table.may_split_later()
    assert table.next_segment(5.0) is None


def test_presplit_cuts_what_is_left_into_near_equal_pieces() -> None:
    table, _ = _running(10 * MIB, done=0)
    table.presplit(4, MIB, 0.5)
    size = -(-10 * MIB // 4)
    assert [s.remaining for s in table.segments] == [10 * MIB - 3 * size, size, size, size]
    assert [s.active for s in table.segments] == [True, False, False, False]
    assert table.remaining_ranges() == [(0, 10 * MIB)]


def test_presplit_makes_no_piece_much_smaller_than_the_minimum() -> None:
    table, _ = _running(3 * MIB, done=0)
    table.presplit(8, 2 * MIB, 0.0)
    assert len(table.segments) == 2  # round(3 / 2) pieces, whatever the lanes
    table = _table(4 * MIB, [(MIB, 2 * MIB)])
    table.presplit(8, 4 * MIB, 0.0)
    assert len(table.segments) == 2  # two holes stay two pieces


# -- a server that ignores ranges ----------------------------------------------------------


def test_the_first_response_takes_over_when_a_range_gets_the_whole_file() -> None:
    table = _table(10 * MIB)
    first = table.claim_first(0.0, to_end=True)
    table.presplit(3, MIB, 0.0)
    other, idle = table.next_segment(0.0), table.segments[2]
    assert other is not None
    table.advance(first, MIB)
    table.advance(other, other.pos + 10)
    assert table.take_over(other)
    assert first.end == 10 * MIB and other.remaining == 0 and idle.remaining == 0 and not other.active
    assert table.remaining_ranges() == [(MIB, 10 * MIB)] and table.missing() == 9 * MIB


@pytest.mark.parametrize("case", ["not to the end", "first finished", "first itself"])
def test_without_a_first_body_to_the_end_a_refused_range_fails_the_attempt(case: str) -> None:
    table = _table(10 * MIB)
    first = table.claim_first(0.0, to_end=case != "not to the end")
    table.presplit(2, MIB, 0.0)
    other = table.next_segment(0.0)
    assert other is not None
    if case == "first finished":
        table.release(first)
    assert not table.take_over(first if case == "first itself" else other)
    assert table.ranges_unsupported and other.end == 10 * MIB  # nothing was handed over


def test_the_fast_lane_threshold_is_a_rate() -> None:
    assert TransferSettings().fast_lane == FAST_LANE
    for bad in (0, -1.0, float("inf"), True):
        with pytest.raises(InvalidArgumentError):
            TransferSettings(fast_lane=bad)


# -- properties ----------------------------------------------------------------------------


@st.composite
def _files(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    # Sizes around whole MiB, so that files big enough to split come up often.
    total = max(1, draw(st.integers(0, 24)) * MIB + draw(st.integers(-CHUNK, CHUNK)))
    cut = st.integers(0, total)
    done = draw(st.lists(st.tuples(cut, cut).map(sorted).map(tuple), max_size=4))
    return total, done  # type: ignore[return-value]


def _check(table: SegmentTable, written: list[tuple[int, int]], history: dict[int, tuple[int, int]],
           took_over: bool) -> None:
    total, remaining = table.total, table.remaining_ranges()
    pieces = sorted((s.pos, s.end) for s in table.segments if s.remaining)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(pieces)), "ranges to fetch overlap"
    assert merge([*table.done_ranges(), *remaining]) == [(0, total)], "a byte is lost or out of the file"
    if not took_over:  # only a takeover fetches again bytes another lane wrote
        done = sum(b - a for a, b in table.done_ranges())
        assert done + table.missing() == total
    assert merge([*table.done_ranges(), *written]) == merge(written), "done but never written"
    for segment in table.segments:
        assert segment.start <= segment.pos <= segment.end <= total
        start, pos = history.get(id(segment), (segment.start, segment.start))
        assert segment.start == start and segment.pos >= pos, "a position moved back"
        history[id(segment)] = (segment.start, segment.pos)


#: Weighted: time passing and idle lanes asking for work make steals; a refused range ends them.
_ACTIONS = [*["time", "next", "advance"] * 3, "started", "release", "presplit", "refused"]


@settings(max_examples=300, deadline=None, database=None, derandomize=True)  # the same examples every run
@given(file=_files(), chunk=st.sampled_from([CHUNK, MIB, 2 * MIB]), data=st.data())
def test_random_work_never_overlaps_loses_bytes_or_moves_back(
        file: tuple[int, list[tuple[int, int]]], chunk: int, data: st.DataObject) -> None:
    total, done = file
    table = SegmentTable(done, total, chunk_size=chunk)
    written, history, smallest = merge(done), {}, max(STEAL_MIN_BYTES, chunk)
    if not table.segments:
        assert table.done_ranges() == [(0, total)]
        return
    lanes, now, took_over = [table.claim_first(0.0, to_end=data.draw(st.booleans()))], 0.0, False
    for _ in range(data.draw(st.integers(1, 40))):
        action = data.draw(st.sampled_from(_ACTIONS))
        if action == "time":
            now += data.draw(st.floats(0.0, 2.0))
        elif action == "next":
            ends = {id(s): s.end for s in table.segments}
            segment = table.next_segment(now)
            if segment is not None:
                lanes.append(segment)
            cut = [s for s in table.segments if id(s) in ends and s.end != ends[id(s)]]
            if cut:  # a steal: both pieces at least the minimum
                event("steal")
                assert segment is not None and cut[0].end == segment.start and len(cut) == 1
                assert cut[0].remaining >= smallest and segment.remaining >= smallest
        elif action == "advance" and lanes:
            segment = data.draw(st.sampled_from(lanes))
            before = segment.pos
            end = table.advance(segment, before + data.draw(st.integers(0, chunk)))  # may overrun a cut tail
            assert end == segment.end
            written = merge([*written, (before, segment.pos)])
        elif action == "started" and lanes:  # a lane opened a new response for its segment
            table.started(data.draw(st.sampled_from(lanes)), now)
        elif action == "release" and lanes:
            segment = data.draw(st.sampled_from(lanes))
            lanes.remove(segment)
            table.release(segment)
        elif action == "presplit":
            count, missing = len(table.segments), table.missing()
            lanes_wanted, minimum = data.draw(st.integers(1, 8)), data.draw(st.sampled_from([MIB, 4 * MIB]))
            table.presplit(lanes_wanted, minimum, now)
            pieces = min(lanes_wanted, max(1, round(missing / minimum)))
            assert len(table.segments) <= max(count, pieces)
            size = -(-missing // pieces)  # the new pieces: equal, and the others no bigger unless none was cut
            assert all(s.remaining == size and not s.active for s in table.segments[count:])
        elif action == "refused" and lanes:
            segment = data.draw(st.sampled_from(lanes))
            if table.take_over(segment):
                took_over = True
                event("takeover")
                lanes.remove(segment)  # that lane stops; the first response goes on
        _check(table, written, history, took_over)
