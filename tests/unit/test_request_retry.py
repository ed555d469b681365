"""A download's retry context goes with its requests: a Retry of their own within the
download's budget, waits reported to the download, the budget's end noted, never raised from
inside urllib3's loop.  No sockets: urllib3's Retry and the adapter are driven directly."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, ProtocolError, SSLError

from pydownloads.domain.errors import (
    DeadlineExceededError,
    DownloadCancelledError,
    DownloadError,
    HTTPStatusError,
    TransferError,
)
from pydownloads.domain.retry import RetryConfig
from pydownloads.infrastructure import transport
from pydownloads.infrastructure.http import build_session, takes_request_retry
from pydownloads.infrastructure.request_retry import RequestRetry
from pydownloads.infrastructure.retries import RetryHooks, RetryingAdapter, _HookedRetry, build_retry
from pydownloads.infrastructure.watch import ConnectionWatch

URL = "http://files.test/a.bin"


class _Listener:
    """A download as the transport retries see it, recording what they tell it."""

    def __init__(self, left: int, *, deadline_at: float | None = None) -> None:
        self.left, self.deadline_at = left, deadline_at
        self.waits: list[tuple[float, str]] = []
        self.stop: DownloadError | None = None

    def retries_left(self) -> int:
        return self.left

    def retrying(self, delay: float, reason: str) -> DownloadError | None:
        self.waits.append((delay, reason))
        return self.stop

    def exhausted(self, reason: str, status: int | None) -> DownloadError:
        if status is not None:
            return HTTPStatusError(f"HTTP {status}, retries exhausted", status=status)
        return TransferError(f"{reason}, retries exhausted")


def _retry(max_retries: int = 3, cancel: threading.Event | None = None) -> _HookedRetry:
    config = RetryConfig(max_retries=max_retries, base_delay=0.0, max_delay=0.0)
    retry = build_retry(config, RetryHooks(config, cancel or threading.Event(), rng=lambda: 0.0))
    assert isinstance(retry, _HookedRetry)
    return retry


def _status(code: int) -> urllib3.HTTPResponse:
    return urllib3.HTTPResponse(body=b"", status=code, headers={}, preload_content=False)


def _fail(retry: _HookedRetry, **failure: Any) -> _HookedRetry:
    return retry.increment("GET", URL, **failure)


def test_a_request_gets_no_more_retries_than_the_download_has_left() -> None:
    shared = _retry(3)
    lowered = shared.for_request(RequestRetry(_Listener(1)))
    assert (lowered.total, lowered.budgeted) == (1, True)
    assert (shared.total, shared.budgeted, shared.request) == (3, False, None)  # the session's is untouched
    plenty = shared.for_request(RequestRetry(_Listener(5)))
    assert (plenty.total, plenty.budgeted) == (3, False)  # never more than the request's own
    again = lowered.for_request(RequestRetry(_Listener(3)))  # a request re-sent by an auth hook
    assert (again.total, again.budgeted) == (3, False)


def test_the_download_budget_running_out_is_noted_not_raised_by_us() -> None:
    request = RequestRetry(_Listener(1))
    retry = _fail(_retry(3).for_request(request), response=_status(503))
    assert request.spent is None
    with pytest.raises(MaxRetryError):  # urllib3's own end of the retries
        _fail(retry, response=_status(503))
    assert isinstance(request.spent, HTTPStatusError) and request.spent.status == 503


@pytest.mark.parametrize(("error", "words"), [(ConnectTimeoutError("slow"), "timed out connecting"),
                                              (ProtocolError("reset"), "connection failed: reset")])
def test_the_budget_running_out_on_an_error_names_the_error(error: Exception, words: str) -> None:
    request = RequestRetry(_Listener(0))
    with pytest.raises(MaxRetryError):
        _fail(_retry(3).for_request(request), error=error)
    assert isinstance(request.spent, TransferError)
    assert str(request.spent) == f"{words}, retries exhausted"


def test_the_request_running_out_of_its_own_retries_is_not_the_budget() -> None:
    request = RequestRetry(_Listener(3))
    retry = _retry(1).for_request(request)
    with pytest.raises(MaxRetryError):
        _fail(_fail(retry, response=_status(503)), response=_status(503))
    assert request.spent is None  # the error says what the server said, as without a budget


def test_an_error_never_retried_is_not_the_budget() -> None:
    request = RequestRetry(_Listener(0))
    with pytest.raises(MaxRetryError):
        _fail(_retry(3).for_request(request), error=SSLError("bad certificate"))
    assert request.spent is None


def test_each_wait_is_reported_to_the_download() -> None:
    listener = _Listener(3)
    retry = _fail(_retry(3).for_request(RequestRetry(listener)), response=_status(503))
    retry.sleep(_status(503))
    retry = _fail(retry, error=ConnectTimeoutError("slow"))
    retry.sleep()
    assert listener.waits == [(0.0, "HTTP 503"), (0.0, "timed out connecting")]


def test_a_wait_past_the_deadline_ends_with_the_download_s_error() -> None:
    listener = _Listener(3)
    listener.stop = DeadlineExceededError("would pass its deadline")
    retry = _fail(_retry(3).for_request(RequestRetry(listener)), response=_status(503))
    with pytest.raises(DeadlineExceededError):
        retry.sleep(_status(503))


def test_a_wait_ends_at_shutdown_with_or_without_a_download() -> None:
    cancel = threading.Event()
    cancel.set()
    for retry in (_retry(3, cancel), _retry(3, cancel).for_request(RequestRetry(_Listener(3)))):
        with pytest.raises(DownloadCancelledError):
            _fail(retry, response=_status(503)).sleep(_status(503))


def test_the_adapter_gives_the_request_its_own_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    answer = requests.Response()

    def send(self: HTTPAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        seen.append((self.max_retries, kwargs))
        return answer

    monkeypatch.setattr(HTTPAdapter, "send", send)
    adapter = RetryingAdapter(max_retries=_retry(3))
    shared = adapter.max_retries
    prepared = requests.Request("GET", URL).prepare()
    listener = _Listener(2)
    assert adapter.send(prepared, timeout=5, request_retry=RequestRetry(listener)) is answer
    assert adapter.send(prepared, timeout=5) is answer
    (own, own_kwargs), (plain, plain_kwargs) = seen
    assert isinstance(own, _HookedRetry) and own.total == 2 and own.request is not None
    assert own.request.listener is listener and own_kwargs == plain_kwargs == {"timeout": 5}
    assert plain is shared and adapter.max_retries is shared


def test_only_our_own_session_takes_a_retry_context() -> None:
    config = RetryConfig()
    watch = ConnectionWatch(header_timeout=1.0)
    try:
        ours = build_session(pool_size=2, config=config, hooks=RetryHooks(config, threading.Event()), watch=watch)
        assert takes_request_retry(ours)
        ours.mount("http://other.test/", HTTPAdapter())
        assert not takes_request_retry(ours)  # that adapter would not take the keyword
        assert not takes_request_retry(requests.Session())
        assert not takes_request_retry(build_session(pool_size=2, config=config, hooks=None))
    finally:
        watch.close()


class _FakeSession(requests.Session):
    """Records what send_get asks; ``spend`` plays urllib3 running out of the budget."""

    def __init__(self, *, spend: bool = False) -> None:
        super().__init__()
        self.spend, self.closed = spend, False
        self.kwargs: dict[str, Any] = {}

    def get(self, url: Any, params: Any = None, **kwargs: Any) -> requests.Response:
        self.kwargs = kwargs
        request = kwargs.get("request_retry")
        if self.spend and isinstance(request, RequestRetry):
            request.spent = request.listener.exhausted("HTTP 503", 503)
        response = requests.Response()
        response.status_code = 503 if self.spend else 200
        response.close = lambda: setattr(self, "closed", True)  # type: ignore[method-assign]
        return response


def test_send_get_passes_the_context_only_when_given() -> None:
    plain = _FakeSession()
    transport.send_get(plain, URL, headers={}, timeout=1)
    assert "request_retry" not in plain.kwargs
    listener = _Listener(3)
    ours = _FakeSession()
    transport.send_get(ours, URL, headers={}, timeout=1, retries=listener)
    assert isinstance(ours.kwargs["request_retry"], RequestRetry)
    assert ours.kwargs["request_retry"].listener is listener


def test_send_get_raises_the_download_s_error_once_urllib3_gave_up() -> None:
    session = _FakeSession(spend=True)
    with pytest.raises(HTTPStatusError, match="retries exhausted"):
        transport.send_get(session, URL, headers={}, timeout=1, retries=_Listener(0))
    assert session.closed


def test_our_session_hands_the_context_to_the_adapter_redirects_included() -> None:
    config = RetryConfig()
    session = build_session(pool_size=2, config=config, hooks=RetryHooks(config, threading.Event()))
    sent: list[tuple[str | None, Any]] = []

    class Recorder(HTTPAdapter):
        def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
            sent.append((request.url, kwargs.get("request_retry")))
            response = requests.Response()
            response.request, response.url = request, request.url or ""
            if request.url == URL:
                response.status_code, response.headers["Location"] = 302, "http://files.test/b.bin"
            else:
                response.status_code = 200
            return response

    session.mount("http://", Recorder())
    context = RequestRetry(_Listener(3))
    session.get(URL, headers={}, timeout=1, stream=True, allow_redirects=True,  # type: ignore[call-arg]
                request_retry=context)
    assert sent == [(URL, context), ("http://files.test/b.bin", context)]
