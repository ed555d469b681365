"""Unit tests for the typed events and the EventEmitter."""

from __future__ import annotations

import dataclasses
import gc
import logging
import pickle
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from pydownloads.domain.errors import InvalidArgumentError
from pydownloads.events import (
    EVENT_NAMES,
    SIGNALS,
    ChunkDownloaded,
    DownloadCancelled,
    DownloadCompleted,
    DownloadEvent,
    DownloadFailed,
    DownloadQueued,
    DownloadRetrying,
    DownloadStarted,
    EventEmitter,
)

URL = "https://example.com/file.bin"

EVENTS: list[DownloadEvent] = [
    DownloadQueued(url=URL, timestamp=1.0, priority=3),
    DownloadStarted(url=URL, timestamp=2.0, path=Path("/d/file.bin"), total_bytes=100, attempt=1),
    ChunkDownloaded(url=URL, timestamp=3.0, bytes_downloaded=10, total_downloaded=50, total_bytes=100),
    DownloadCompleted(url=URL, timestamp=4.0, path=Path("/d/file.bin"), bytes_downloaded=100, elapsed=3.0, attempts=1),
    DownloadFailed(url=URL, timestamp=5.0, error="HTTP 404", error_type="HTTPStatusError", attempts=1),
    DownloadRetrying(url=URL, timestamp=6.0, attempt=2, delay=0.5, reason="reset"),
    DownloadCancelled(url=URL, timestamp=7.0, bytes_downloaded=20),
]

EXPECTED_NAMES = {
    DownloadQueued: "worker.queued",
    DownloadStarted: "worker.started",
    ChunkDownloaded: "worker.chunk_downloaded",
    DownloadCompleted: "worker.completed",
    DownloadFailed: "worker.failed",
    DownloadRetrying: "worker.retrying",
    DownloadCancelled: "worker.cancelled",
}


def _ids(event: DownloadEvent) -> str:
    return type(event).__name__


# -- names --------------------------------------------------------------------------------------


def test_names_lists_every_signal() -> None:
    emitter = EventEmitter()
    assert emitter.names == list(EXPECTED_NAMES.values())
    assert EVENT_NAMES == EXPECTED_NAMES
    assert set(SIGNALS) == set(EXPECTED_NAMES.values())


def test_names_returns_a_copy() -> None:
    emitter = EventEmitter()
    emitter.names.append("worker.bogus")
    assert "worker.bogus" not in emitter.names


# -- on / off / emit ----------------------------------------------------------------------------


@pytest.mark.parametrize("event", EVENTS, ids=_ids)
def test_emit_reaches_the_handler_of_its_name_only(event: DownloadEvent) -> None:
    emitter = EventEmitter()
    received: dict[str, list[DownloadEvent]] = {name: [] for name in emitter.names}
    for name in emitter.names:
        emitter.on(name, received[name].append)
    emitter.emit(event)
    for name, events in received.items():
        assert events == ([event] if name == EXPECTED_NAMES[type(event)] else [])
    assert received[EXPECTED_NAMES[type(event)]][0] is event


def test_on_returns_the_handler_so_it_can_decorate() -> None:
    emitter = EventEmitter()
    seen: list[DownloadEvent] = []

    def handler(event: DownloadEvent) -> None:
        seen.append(event)

    assert emitter.on("worker.queued", handler) is handler
    emitter.emit(EVENTS[0])
    assert seen == [EVENTS[0]]


def test_off_stops_delivery_and_tolerates_unknown_handlers() -> None:
    emitter = EventEmitter()
    seen: list[DownloadEvent] = []

    def handler(event: DownloadEvent) -> None:
        seen.append(event)

    emitter.on("worker.failed", handler)
    emitter.emit(EVENTS[4])
    emitter.off("worker.failed", handler)
    emitter.emit(EVENTS[4])
    assert seen == [EVENTS[4]]
    assert not emitter.is_listening(DownloadFailed)
    emitter.off("worker.failed", handler)  # already removed: no error
    emitter.off("worker.completed", print)  # never registered: no error


class _Collector:
    def __init__(self) -> None:
        self.events: list[DownloadEvent] = []

    def handle(self, event: DownloadEvent) -> None:
        self.events.append(event)


def test_off_with_a_fresh_bound_method_of_the_same_object() -> None:
    emitter = EventEmitter()
    collector = _Collector()
    emitter.on("worker.failed", collector.handle)
    emitter.off("worker.failed", collector.handle)  # a new bound-method object, equal to the first
    emitter.emit(EVENTS[4])
    assert collector.events == []
    assert not emitter.is_listening(DownloadFailed)


def test_off_with_a_builtin_bound_method() -> None:
    emitter = EventEmitter()
    seen: list[DownloadEvent] = []
    emitter.on("worker.failed", seen.append)
    emitter.off("worker.failed", seen.append)
    emitter.emit(EVENTS[4])
    assert seen == []


def test_registering_the_same_handler_twice_calls_it_once() -> None:
    emitter = EventEmitter()
    calls: list[DownloadEvent] = []

    def handler(event: DownloadEvent) -> None:
        calls.append(event)

    emitter.on("worker.queued", handler)
    emitter.on("worker.queued", handler)
    emitter.emit(EVENTS[0])
    assert calls == [EVENTS[0]]


def test_several_handlers_all_run() -> None:
    emitter = EventEmitter()
    order: list[str] = []
    emitter.on("worker.completed", lambda event: order.append("first"))
    emitter.on("worker.completed", lambda event: order.append("second"))
    emitter.emit(EVENTS[3])
    assert sorted(order) == ["first", "second"]


def test_emit_without_handlers_does_nothing() -> None:
    emitter = EventEmitter()
    for event in EVENTS:
        emitter.emit(event)


# -- rejected registrations ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["worker.bogus", "queued", "", "WORKER.QUEUED"])
def test_unknown_name_is_rejected(name: str) -> None:
    emitter = EventEmitter()
    with pytest.raises(InvalidArgumentError, match="unknown event name"):
        emitter.on(name, print)
    with pytest.raises(InvalidArgumentError, match="unknown event name"):
        emitter.off(name, print)


@pytest.mark.parametrize("handler", [None, 42, "print", object()])
def test_non_callable_handler_is_rejected(handler: object) -> None:
    emitter = EventEmitter()
    with pytest.raises(InvalidArgumentError, match="not callable"):
        emitter.on("worker.queued", handler)  # type: ignore[arg-type]
    assert not emitter.is_listening(DownloadQueued)


async def _async_handler(event: DownloadEvent) -> None:
    return None


def test_coroutine_function_rejected_without_runner() -> None:
    emitter = EventEmitter()
    with pytest.raises(InvalidArgumentError, match="async handlers"):
        emitter.on("worker.queued", _async_handler)
    assert not emitter.is_listening(DownloadQueued)


def test_coroutine_function_accepted_with_runner_which_receives_the_coroutine() -> None:
    scheduled: list[Coroutine[Any, Any, Any]] = []
    emitter = EventEmitter(coroutine_runner=scheduled.append)
    emitter.on("worker.queued", _async_handler)
    assert emitter.is_listening(DownloadQueued)
    emitter.emit(EVENTS[0])
    try:
        assert len(scheduled) == 1
        assert scheduled[0].cr_code is _async_handler.__code__  # type: ignore[attr-defined]
    finally:
        for coroutine in scheduled:
            coroutine.close()


def test_plain_handler_returning_a_coroutine_without_runner_is_closed_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emitter = EventEmitter()
    made: list[Coroutine[Any, Any, Any]] = []

    def sneaky(event: DownloadEvent) -> Coroutine[Any, Any, Any]:
        coroutine = _async_handler(event)
        made.append(coroutine)
        return coroutine

    emitter.on("worker.queued", sneaky)
    with caplog.at_level(logging.ERROR, logger="pydownloads.events.emitter"):
        emitter.emit(EVENTS[0])
    assert len(made) == 1
    assert made[0].cr_frame is None  # closed
    assert "no event loop is attached" in caplog.text


# -- registration lifetime and failures ---------------------------------------------------------


def test_lambdas_stay_registered_after_garbage_collection() -> None:
    emitter = EventEmitter()
    calls: list[int] = []
    emitter.on("worker.started", lambda event: calls.append(event.attempt))
    gc.collect()
    emitter.emit(EVENTS[1])
    assert calls == [1]


def test_local_function_stays_registered_after_its_name_is_gone() -> None:
    emitter = EventEmitter()
    calls: list[str] = []

    def register() -> None:
        def local(event: DownloadEvent) -> None:
            calls.append(event.url)

        emitter.on("worker.cancelled", local)

    register()
    gc.collect()
    emitter.emit(EVENTS[6])
    assert calls == [URL]


def test_raising_handler_is_logged_and_next_handler_still_runs(caplog: pytest.LogCaptureFixture) -> None:
    emitter = EventEmitter()
    calls: list[str] = []

    def bad(event: DownloadEvent) -> None:
        calls.append("bad")
        raise RuntimeError("handler exploded")

    def good(event: DownloadEvent) -> None:
        calls.append("good")

    emitter.on("worker.failed", bad)
    emitter.on("worker.failed", good)
    with caplog.at_level(logging.ERROR, logger="pydownloads.events.emitter"):
        emitter.emit(EVENTS[4])  # must not raise
    assert sorted(calls) == ["bad", "good"]
    failures = [record for record in caplog.records if record.name == "pydownloads.events.emitter"]
    assert len(failures) == 1
    assert failures[0].levelno == logging.ERROR
    assert "DownloadFailed" in failures[0].getMessage()
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], RuntimeError)


# -- is_listening and isolation -----------------------------------------------------------------


@pytest.mark.parametrize("event_type", list(EXPECTED_NAMES), ids=lambda cls: cls.__name__)
def test_is_listening(event_type: type[DownloadEvent]) -> None:
    emitter = EventEmitter()
    assert emitter.is_listening(event_type) is False

    def handler(event: DownloadEvent) -> None:
        pass

    emitter.on(EXPECTED_NAMES[event_type], handler)
    assert emitter.is_listening(event_type) is True
    others = [other for other in EXPECTED_NAMES if other is not event_type]
    assert not any(emitter.is_listening(other) for other in others)
    emitter.off(EXPECTED_NAMES[event_type], handler)
    assert emitter.is_listening(event_type) is False


def test_two_emitters_are_isolated() -> None:
    first, second = EventEmitter(), EventEmitter()
    seen_first: list[DownloadEvent] = []
    seen_second: list[DownloadEvent] = []
    first.on("worker.completed", seen_first.append)
    second.on("worker.completed", seen_second.append)
    first.emit(EVENTS[3])
    assert seen_first == [EVENTS[3]]
    assert seen_second == []
    assert not EventEmitter().is_listening(DownloadCompleted)


# -- the events themselves ----------------------------------------------------------------------


@pytest.mark.parametrize("event", EVENTS, ids=_ids)
def test_events_are_frozen(event: DownloadEvent) -> None:
    assert dataclasses.is_dataclass(event)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.url = "https://example.com/other"  # type: ignore[misc]
    assert event.url == URL


@pytest.mark.parametrize("event", EVENTS, ids=_ids)
def test_events_pickle(event: DownloadEvent) -> None:
    restored = pickle.loads(pickle.dumps(event))
    assert restored == event
    assert type(restored) is type(event)
    assert restored is not event


def test_events_are_keyword_only_and_timestamped_by_default() -> None:
    with pytest.raises(TypeError):
        DownloadQueued(URL, 1)  # type: ignore[misc]
    event = DownloadQueued(url=URL, priority=1)
    assert isinstance(event.timestamp, float)
    assert event.timestamp > 1_600_000_000
