"""Unit tests for the priority queue and the upper retry layer (ErrorCategoriser, RetryHandler)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from pydownloads.domain.errors import (
    DestinationConflictError,
    DownloadCancelledError,
    DownloadError,
    DownloadTimeoutError,
    FileSystemError,
    HTTPStatusError,
    IncompleteDownloadError,
    InvalidArgumentError,
    RedirectError,
    TLSError,
    TransferError,
)
from pydownloads.domain.retry import RetryConfig, RetryPolicy
from pydownloads.downloads.queue import PriorityDownloadQueue
from pydownloads.downloads.retry import AttemptCounter, ErrorCategoriser, ErrorCategory, RetryHandler
from pydownloads.events import DownloadRetrying, EventEmitter

URL = "https://example.com/file.bin"


# -- PriorityDownloadQueue ----------------------------------------------------------------------


def _get_all(q: PriorityDownloadQueue[Any], count: int) -> list[Any]:
    return [q.get(timeout=0.01) for _ in range(count)]


def test_queue_higher_priority_first_fifo_among_equals_stop_markers_last() -> None:
    q: PriorityDownloadQueue[str] = PriorityDownloadQueue()
    q.put_stop()
    q.put("low-1", -1)
    q.put("mid-1", 0)
    q.put("high-1", 10)
    q.put_stop()
    q.put("mid-2", 0)
    q.put("high-2", 10)
    q.put("mid-3", 0)
    q.put("low-2", -1)
    assert q.qsize() == 9
    assert _get_all(q, 9) == ["high-1", "high-2", "mid-1", "mid-2", "mid-3", "low-1", "low-2", None, None]
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)


def test_queue_very_high_priority_still_before_stop_marker() -> None:
    q: PriorityDownloadQueue[str] = PriorityDownloadQueue()
    q.put_stop()
    q.put("huge", 10**30)
    q.put("tiny", -(10**30))
    assert _get_all(q, 3) == ["huge", "tiny", None]


def test_queue_items_need_not_be_comparable() -> None:
    q: PriorityDownloadQueue[object] = PriorityDownloadQueue()
    first, second = object(), object()
    q.put(first, 1)
    q.put(second, 1)
    assert _get_all(q, 2) == [first, second]


def test_queue_drain_takes_waiting_items_and_drops_stop_markers() -> None:
    q: PriorityDownloadQueue[str] = PriorityDownloadQueue()
    q.put("a", 0)
    q.put_stop()
    q.put("b", 5)
    q.put_stop()
    assert q.qsize() == 4
    assert q.unfinished == 2  # stop markers are not tasks
    assert q.drain() == ["b", "a"]
    assert q.qsize() == 0
    assert q.unfinished == 2  # drained items are still the caller's to mark done
    q.task_done()
    q.task_done()
    assert q.unfinished == 0
    assert q.drain() == []


def _join_in_thread(q: PriorityDownloadQueue[Any]) -> threading.Thread:
    thread = threading.Thread(target=q.join, daemon=True)
    thread.start()
    return thread


def test_queue_join_returns_after_every_item_is_done() -> None:
    q: PriorityDownloadQueue[str] = PriorityDownloadQueue()
    q.put("a", 0)
    q.put("b", 0)
    joiner = _join_in_thread(q)
    assert q.get(timeout=0.01) == "a"
    q.task_done()
    joiner.join(timeout=0.05)
    assert joiner.is_alive()  # "b" is still unfinished
    assert q.unfinished == 1
    assert q.get(timeout=0.01) == "b"
    q.task_done()
    joiner.join(timeout=5)
    assert not joiner.is_alive()
    assert q.unfinished == 0


def test_queue_join_does_not_wait_for_stop_markers() -> None:
    q: PriorityDownloadQueue[str] = PriorityDownloadQueue()
    q.put("a", 0)
    q.put_stop()
    q.put_stop()
    assert q.get(timeout=0.01) == "a"
    q.task_done()
    joiner = _join_in_thread(q)
    joiner.join(timeout=5)
    assert not joiner.is_alive()
    assert q.qsize() == 2  # the markers are still waiting for the workers
    assert _get_all(q, 2) == [None, None]


def test_queue_join_on_empty_queue_returns_at_once() -> None:
    q: PriorityDownloadQueue[str] = PriorityDownloadQueue()
    joiner = _join_in_thread(q)
    joiner.join(timeout=5)
    assert not joiner.is_alive()


def test_queue_task_done_too_often_raises() -> None:
    q: PriorityDownloadQueue[str] = PriorityDownloadQueue()
    with pytest.raises(ValueError):
        q.task_done()


def test_queue_concurrent_puts_keep_fifo_per_priority() -> None:
    q: PriorityDownloadQueue[tuple[int, int]] = PriorityDownloadQueue()

    def producer(thread_id: int) -> None:
        for i in range(200):
            q.put((thread_id, i), 0)

    threads = [threading.Thread(target=producer, args=(n,), daemon=True) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    items = q.drain()
    assert len(items) == 800
    for thread_id in range(4):
        assert [i for t, i in items if t == thread_id] == list(range(200))


# -- ErrorCategoriser ---------------------------------------------------------------------------


def _http(status: int, retry_after: float | None = None) -> HTTPStatusError:
    return HTTPStatusError(f"HTTP {status}", status=status, retry_after=retry_after, url=URL)


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (_http(503), ErrorCategory.TRANSIENT),
        (_http(429), ErrorCategory.TRANSIENT),
        (_http(507), ErrorCategory.TRANSIENT),  # unlisted 5xx
        (_http(404), ErrorCategory.PERMANENT),
        (_http(418), ErrorCategory.PERMANENT),  # unlisted 4xx
        (TLSError("bad cert", url=URL), ErrorCategory.PERMANENT),
        (IncompleteDownloadError("short", expected=10, received=5), ErrorCategory.TRANSIENT),
        (TransferError("reset"), ErrorCategory.TRANSIENT),
        (DownloadTimeoutError("slow"), ErrorCategory.TRANSIENT),
        (RedirectError("loop"), ErrorCategory.PERMANENT),
        (FileSystemError("disk full"), ErrorCategory.PERMANENT),
        (DestinationConflictError("taken", path="p", other_url="o"), ErrorCategory.PERMANENT),
        (InvalidArgumentError("bad"), ErrorCategory.PERMANENT),
        (DownloadCancelledError("stop"), ErrorCategory.PERMANENT),
        (DownloadError("generic"), ErrorCategory.PERMANENT),
        (Exception("plain"), ErrorCategory.UNKNOWN),
        (ValueError("plain"), ErrorCategory.UNKNOWN),
        (ConnectionResetError("untranslated"), ErrorCategory.UNKNOWN),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value.name,
)
def test_categoriser_categories(error: BaseException, category: ErrorCategory) -> None:
    categoriser = ErrorCategoriser()
    assert categoriser.categorise(error) is category
    assert categoriser.is_transient(error) is (category is ErrorCategory.TRANSIENT)


def test_categoriser_follows_its_policy() -> None:
    categoriser = ErrorCategoriser(RetryPolicy(transient_status_codes={404}, permanent_status_codes={503}))
    assert categoriser.categorise(_http(404)) is ErrorCategory.TRANSIENT
    assert categoriser.categorise(_http(503)) is ErrorCategory.PERMANENT


def test_handler_categoriser_defaults_to_the_config_policy() -> None:
    handler = RetryHandler(RetryConfig(policy=RetryPolicy(transient_status_codes={404}, permanent_status_codes=set())))
    assert handler.categoriser.is_transient(_http(404)) is True


# -- RetryHandler.delay_for ---------------------------------------------------------------------


def _handler(
    *,
    max_retries: int = 3,
    base_delay: float = 0.001,
    max_delay: float = 0.01,
    rng: Callable[[], float] = lambda: 0.0,
    emitter: EventEmitter | None = None,
) -> RetryHandler:
    config = RetryConfig(max_retries=max_retries, base_delay=base_delay, max_delay=max_delay)
    return RetryHandler(config, rng=rng, emitter=emitter)


def test_delay_for_permanent_is_none() -> None:
    handler = _handler()
    assert handler.delay_for(_http(404), 0) is None
    assert handler.delay_for(TLSError("x"), 0) is None
    assert handler.delay_for(ValueError("x"), 0) is None


def test_delay_for_none_when_budget_spent() -> None:
    handler = _handler(max_retries=2, base_delay=1.0, max_delay=10.0)
    assert handler.delay_for(TransferError("x"), 1) is not None
    assert handler.delay_for(TransferError("x"), 2) is None
    assert handler.delay_for(_http(503, retry_after=1.0), 2) is None
    assert _handler(max_retries=0).delay_for(TransferError("x"), 0) is None


def test_delay_for_honours_retry_after_capped_at_max_delay() -> None:
    handler = _handler(base_delay=1.0, max_delay=10.0, rng=lambda: 0.9)
    assert handler.delay_for(_http(503, retry_after=3.0), 0) == 3.0
    assert handler.delay_for(_http(429, retry_after=0.0), 0) == 0.0
    assert handler.delay_for(_http(503, retry_after=120.0), 0) == 10.0


def test_delay_for_ignores_retry_after_of_permanent_status() -> None:
    handler = _handler(base_delay=1.0, max_delay=10.0)
    assert handler.delay_for(_http(404, retry_after=3.0), 0) is None


def test_delay_for_uses_backoff_with_injected_rng() -> None:
    draws = iter([0.0, 0.5, 0.999, 0.0])
    handler = _handler(base_delay=1.0, max_delay=5.0, rng=lambda: next(draws))
    assert handler.delay_for(TransferError("x"), 0) == 0.5  # step 1
    assert handler.delay_for(TransferError("x"), 1) == 1.5  # step 2: 1 + 1 * 0.5
    assert handler.delay_for(TransferError("x"), 2) == pytest.approx(3.998)  # step 4: 2 + 2 * 0.999
    handler = _handler(max_retries=10, base_delay=1.0, max_delay=5.0, rng=lambda: 0.0)
    assert handler.delay_for(TransferError("x"), 5) == 2.5  # capped step 5
    assert handler.delay_for(_http(503), 0) == 0.5  # no Retry-After: backoff


# -- RetryHandler.execute_with_retry ------------------------------------------------------------


class FlakyOperation:
    """Raises each error in turn, then returns ``result``."""

    def __init__(self, errors: list[BaseException], result: str = "done") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def test_execute_succeeds_at_once() -> None:
    counter = AttemptCounter()
    operation = FlakyOperation([])
    assert _handler().execute_with_retry(operation, URL, attempts=counter) == "done"
    assert operation.calls == 1
    assert counter.count == 1


def test_execute_succeeds_after_transient_failures() -> None:
    counter = AttemptCounter()
    operation = FlakyOperation(
        [TransferError("reset"), _http(503), IncompleteDownloadError("s", expected=2, received=1)]
    )
    result = _handler(max_retries=3).execute_with_retry(operation, URL, attempts=counter)
    assert result == "done"
    assert operation.calls == 4
    assert counter.count == 4


def test_execute_counts_on_top_of_a_shared_counter() -> None:
    counter = AttemptCounter()
    counter.count = 2  # the transport layer already retried twice
    operation = FlakyOperation([TransferError("reset")] * 5)
    with pytest.raises(TransferError):
        _handler(max_retries=3).execute_with_retry(operation, URL, attempts=counter)
    # the budget is shared: attempt 3 fails (2 retries done), attempt 4 fails (3 done) -> give up
    assert operation.calls == 2
    assert counter.count == 4


def test_execute_gives_up_after_max_retries_plus_one_calls_re_raising_the_last_error() -> None:
    errors: list[BaseException] = [TransferError(f"reset {i}") for i in range(10)]
    last = errors[3]
    operation = FlakyOperation(errors)
    counter = AttemptCounter()
    with pytest.raises(TransferError) as info:
        _handler(max_retries=3).execute_with_retry(operation, URL, attempts=counter)
    assert info.value is last
    assert operation.calls == 4
    assert counter.count == 4


@pytest.mark.parametrize("error", [_http(404), TLSError("cert"), ValueError("bug"), RedirectError("loop")])
def test_execute_permanent_raises_at_once(error: BaseException) -> None:
    operation = FlakyOperation([error])
    on_retry_calls: list[tuple[int, float, str]] = []
    with pytest.raises(type(error)) as info:
        _handler(max_retries=5).execute_with_retry(
            operation, URL, on_retry=lambda *args: on_retry_calls.append(args)
        )
    assert info.value is error
    assert operation.calls == 1
    assert on_retry_calls == []


def test_execute_cancelled_error_from_operation_is_not_retried() -> None:
    error = DownloadCancelledError("stop", url=URL)
    operation = FlakyOperation([error])
    with pytest.raises(DownloadCancelledError) as info:
        _handler().execute_with_retry(operation, URL)
    assert info.value is error
    assert operation.calls == 1


def test_execute_on_retry_receives_attempt_delay_reason() -> None:
    draws = iter([0.0, 1.0])
    handler = _handler(max_retries=3, base_delay=0.001, max_delay=0.01, rng=lambda: next(draws))
    calls: list[tuple[int, float, str]] = []
    emitted: list[DownloadRetrying] = []
    handler.emitter.on("worker.retrying", emitted.append)
    operation = FlakyOperation([TransferError("connection reset"), DownloadTimeoutError("")])
    assert handler.execute_with_retry(operation, URL, on_retry=lambda *args: calls.append(args)) == "done"
    assert calls == [(2, 0.0005, "connection reset"), (3, 0.002, "DownloadTimeoutError")]
    assert emitted == []  # a callback replaces the event


def test_execute_without_on_retry_emits_download_retrying() -> None:
    emitter = EventEmitter()
    events: list[DownloadRetrying] = []
    emitter.on("worker.retrying", events.append)
    handler = _handler(max_retries=2, base_delay=0.001, max_delay=0.01, emitter=emitter)
    assert handler.emitter is emitter
    operation = FlakyOperation([_http(503), TransferError("reset")])
    assert handler.execute_with_retry(operation, URL) == "done"
    assert [(e.url, e.attempt, e.delay, e.reason) for e in events] == [
        (URL, 2, 0.0005, "HTTP 503"),
        (URL, 3, 0.001, "reset"),
    ]
    assert all(isinstance(e, DownloadRetrying) for e in events)


def test_execute_logs_each_retry(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.unit.retry")
    handler = RetryHandler(RetryConfig(base_delay=0.0, max_delay=0.0), logger=logger)
    with caplog.at_level(logging.INFO, logger="tests.unit.retry"):
        handler.execute_with_retry(FlakyOperation([TransferError("reset")]), URL)
    messages = [record.getMessage() for record in caplog.records if record.name == "tests.unit.retry"]
    assert messages == [f"retrying {URL} in 0.00s (attempt 2): reset"]


def test_execute_cancel_event_set_during_wait_raises_promptly() -> None:
    handler = _handler(max_retries=3, base_delay=30.0, max_delay=60.0, rng=lambda: 0.0)  # a 15 s wait
    cancel = threading.Event()
    error = TransferError("reset")
    operation = FlakyOperation([error] * 3)
    timer = threading.Timer(0.05, cancel.set)
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(DownloadCancelledError, match="cancelled while waiting to retry") as info:
            handler.execute_with_retry(operation, URL, cancel_event=cancel, on_retry=lambda *args: None)
    finally:
        timer.cancel()
    elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert operation.calls == 1
    assert info.value.url == URL
    assert info.value.__cause__ is error


def test_execute_cancel_event_already_set_turns_failure_into_cancellation() -> None:
    cancel = threading.Event()
    cancel.set()
    error = TransferError("reset")
    operation = FlakyOperation([error])
    with pytest.raises(DownloadCancelledError) as info:
        _handler().execute_with_retry(operation, URL, cancel_event=cancel)
    assert operation.calls == 1
    assert info.value.cause is error
    assert info.value.url == URL


def test_execute_cancel_event_does_not_stop_a_succeeding_operation() -> None:
    cancel = threading.Event()
    cancel.set()
    assert _handler().execute_with_retry(FlakyOperation([]), URL, cancel_event=cancel) == "done"


def test_attempt_counter_starts_at_zero() -> None:
    counter = AttemptCounter()
    assert counter.count == 0
    with pytest.raises(AttributeError):
        counter.other = 1  # type: ignore[attr-defined]
