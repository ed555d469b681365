"""ChunkCopy: the one loop that moves a body into a part file, with fakes for both ends."""

from __future__ import annotations

import hashlib
import threading
from typing import Any, cast

import pytest

from pydownloads.domain.errors import DownloadCancelledError
from pydownloads.downloads.chunks import FILL_SECONDS, LIMITED_CHUNK, UNBOUNDED, ChunkCopy
from pydownloads.downloads.pace import Pace


class _Reader:
    """Serves ``body`` in reads of at most ``most`` bytes, recording each buffer asked with."""

    def __init__(self, body: bytes, most: int) -> None:
        self._body, self._most, self._at = body, most, 0
        self.asked: list[memoryview] = []
        self.fills: list[float] = []

    def read_into(self, buffer: memoryview, *, fill: float = 0.0) -> memoryview:
        self.asked.append(buffer)
        self.fills.append(fill)
        got = min(len(buffer), self._most, len(self._body) - self._at)
        buffer[:got] = self._body[self._at:self._at + got]
        self._at += got
        return buffer[:got]


class _Part:
    def __init__(self) -> None:
        self.data = bytearray()

    def write_at(self, pos: int, data: memoryview) -> None:
        self.data[pos:pos + len(data)] = data


class _Pace:
    def __init__(self) -> None:
        self.checks: list[tuple[int, float]] = []

    def check(self, count: int, *, paused: float = 0.0) -> None:
        self.checks.append((count, paused))


class _Bucket:
    def __init__(self, wait: float, burst: float = 1e9) -> None:
        self.wait, self.consumed, self.burst = wait, 0, burst

    def consume(self, count: int, cancel_event: threading.Event) -> float:
        self.consumed += count
        return self.wait


BODY = bytes(range(256)) * 40  # 10,240 bytes


def _copy(part: _Part, counts: list[int], buckets: tuple[_Bucket, ...] = (),
          cancel: threading.Event | None = None) -> ChunkCopy:
    return ChunkCopy(part=cast(Any, part), count=counts.append, buckets=cast(Any, buckets),
                     cancel_event=cancel or threading.Event(), url="http://host/file")


def _run(copy: ChunkCopy, reader: _Reader, buffer: memoryview, pos: int, end: int, **options: Any) -> int:
    pace = options.pop("pace", _Pace())
    return copy.run(cast(Any, reader), buffer, pos, end, pace=cast(Pace, pace), **options)


def test_a_body_to_its_end_is_written_in_place_counted_and_hashed_in_order() -> None:
    part, counts, pace, hasher = _Part(), [], _Pace(), hashlib.sha256()
    reader = _Reader(BODY, most=700)
    assert _run(_copy(part, counts), reader, memoryview(bytearray(1000)), 0, UNBOUNDED,
                pace=pace, hasher=hasher) == len(BODY)
    assert bytes(part.data) == BODY and hasher.hexdigest() == hashlib.sha256(BODY).hexdigest()
    assert sum(counts) == len(BODY) and [c for c, _ in pace.checks] == counts


def test_reads_use_the_buffer_itself_and_slice_it_only_for_a_short_last_read() -> None:
    buffer = memoryview(bytearray(1000))
    reader = _Reader(BODY, most=1000)
    assert _run(_copy(_Part(), []), reader, buffer, 100, 2600) == 2600
    assert [len(b) for b in reader.asked] == [1000, 1000, 500]
    assert reader.asked[0] is buffer and reader.asked[1] is buffer  # no new view per chunk


def test_a_body_that_ends_early_returns_where_it_stopped() -> None:
    part = _Part()
    assert _run(_copy(part, []), _Reader(BODY[:300], most=100), memoryview(bytearray(64)), 0, 1000) == 300
    assert bytes(part.data) == BODY[:300]


def test_the_step_learns_every_position_and_can_move_the_end() -> None:
    seen: list[int] = []

    def step(pos: int) -> int:
        seen.append(pos)
        return 250 if pos >= 200 else 10_000  # a split cut the range at 250

    part = _Part()
    assert _run(_copy(part, []), _Reader(BODY, most=100), memoryview(bytearray(100)), 0, 10_000, step=step) == 250
    assert seen == [100, 200, 250] and bytes(part.data) == BODY[:250]


def test_a_step_that_answers_the_position_stops_the_loop() -> None:
    reader = _Reader(BODY, most=100)
    assert _run(_copy(_Part(), []), reader, memoryview(bytearray(100)), 0, UNBOUNDED, step=lambda pos: pos) == 100
    assert len(reader.asked) == 1


def test_rate_limit_waits_are_summed_and_do_not_count_against_the_speed() -> None:
    buckets, pace = (_Bucket(0.25), _Bucket(0.5)), _Pace()
    _run(_copy(_Part(), [], buckets), _Reader(BODY[:200], most=100), memoryview(bytearray(100)), 0, UNBOUNDED,
         pace=pace)
    assert pace.checks == [(100, 0.75), (100, 0.75)]
    assert [b.consumed for b in buckets] == [200, 200]


def test_cancel_stops_after_the_chunk_in_hand() -> None:
    cancel, part, counts = threading.Event(), _Part(), []
    copy = _copy(part, counts, cancel=cancel)
    cancel.set()
    with pytest.raises(DownloadCancelledError):
        _run(copy, _Reader(BODY, most=100), memoryview(bytearray(100)), 0, UNBOUNDED)
    assert counts == [100] and bytes(part.data) == BODY[:100]  # what was written is counted


def test_every_read_may_fill_the_buffer_for_a_bounded_time() -> None:
    reader = _Reader(BODY, most=1000)
    _run(_copy(_Part(), []), reader, memoryview(bytearray(1000)), 0, 3000)
    assert reader.fills == [FILL_SECONDS] * 3 and 0 < FILL_SECONDS <= 0.1


def test_under_a_rate_limit_no_chunk_is_larger_than_the_smallest_burst() -> None:
    body = bytes(200_000)
    buckets, counts = (_Bucket(0.0, burst=50_000), _Bucket(0.0, burst=30_000)), []
    reader = _Reader(body, most=1 << 20)
    _run(_copy(_Part(), counts, buckets), reader, memoryview(bytearray(1 << 20)), 0, UNBOUNDED)
    assert max(counts) == 30_000 and sum(counts) == len(body)
    tiny, counts = (_Bucket(0.0, burst=100),), []
    _run(_copy(_Part(), counts, tiny), _Reader(body, most=1 << 20), memoryview(bytearray(1 << 20)), 0, UNBOUNDED)
    assert max(counts) == LIMITED_CHUNK  # a floor: chunks of a few bytes would cost more than the limit saves


def test_bytes_past_a_cut_made_while_the_chunk_was_in_flight_are_not_counted() -> None:
    counts: list[int] = []

    def step(pos: int) -> int:
        return 150 if pos >= 200 else 10_000  # another lane took [150, ...) during the second chunk

    part = _Part()
    assert _run(_copy(part, counts), _Reader(BODY, most=100), memoryview(bytearray(100)), 0, 10_000,
                step=step) == 200
    assert counts == [100, 50] and bytes(part.data) == BODY[:200]  # written (the same bytes), counted once
