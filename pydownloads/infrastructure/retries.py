"""The lower retry layer: urllib3's Retry on the pooled session, built from RetryConfig.

Retries happen in two layers (see docs/ARCHITECTURE.md).  This is the lower one: urllib3
retries connection failures and transient statuses before a body starts.  Its waits go
through :class:`RetryHooks`, so that they honour ``Retry-After`` capped at ``max_delay`` and
end at once when the manager shuts down (urllib3's own ``Retry.sleep`` would block the
thread).

A download's own requests carry its :class:`~.request_retry.RetryListener` explicitly
(``request_retry=``, see ``request_retry``): :class:`RetryingAdapter` gives each of them a
Retry of its own, whose ``total`` is what is left of the download's attempt budget (none
when mirrors take over), so that urllib3 itself ends the retries; each wait is counted and
reported to the listener, which may end it at the download's deadline.  Requests without
one (segment lanes, other callers) get the session's Retry as it is.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from pydownloads.domain.errors import DownloadCancelledError
from pydownloads.domain.retry import RetryConfig
from pydownloads.infrastructure.failures import describe
from pydownloads.infrastructure.origins import OriginAdapter
from pydownloads.infrastructure.request_retry import RequestRetry
from pydownloads.infrastructure.transport import parse_retry_after


class RetryHooks:
    """How the session's Retry waits: the delay from RetryConfig (or ``Retry-After``), on
    the manager's cancel event.

    Thread-safe: it holds no per-download state (that comes with each request).
    """

    def __init__(
        self,
        config: RetryConfig,
        cancel_event: threading.Event,
        *,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.cancel_event = cancel_event
        self._rng = rng

    def delay(self, retry_number: int, retry_after: float | None) -> float:
        """Seconds to wait before transport retry ``retry_number`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.config.max_delay)
        return self.config.backoff(retry_number, self._rng())

    def wait(self, delay: float) -> None:
        """Wait ``delay`` seconds unless shutdown comes first.

        :raises DownloadCancelledError: the manager is shutting down.
        """
        if self.cancel_event.wait(delay):
            raise DownloadCancelledError("cancelled while waiting to retry")


class _HookedRetry(Retry):
    """urllib3 Retry whose waits go through RetryHooks instead of ``time.sleep``.

    Only the policy's transient statuses are retried: urllib3 would also retry 413, 429
    and 503 whenever they carry Retry-After, whatever the policy says.  With a
    ``request`` (one download's request), each wait is reported to its listener, and when
    ``total`` was lowered to the download's budget, running out of it is noted in
    ``request.spent`` for the caller to raise once urllib3 has ended.
    """

    RETRY_AFTER_STATUS_CODES = frozenset()

    def __init__(self, *args: Any, hooks: RetryHooks | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hooks = hooks
        self.request: RequestRetry | None = None
        self.session_total = self.total  # each request's own limit, before any budget
        self.budgeted = False  # ``total`` is the download's budget, lower than the session's
        self.reason = "transport error"  # why the last increment happened, in words (see _reason)

    def new(self, **kw: Any) -> _HookedRetry:
        retry = super().new(**kw)
        assert isinstance(retry, _HookedRetry)  # Retry.new builds type(self); narrows for mypy
        retry.hooks, retry.request = self.hooks, self.request
        retry.session_total, retry.budgeted, retry.reason = self.session_total, self.budgeted, self.reason
        return retry

    def for_request(self, request: RequestRetry) -> _HookedRetry:
        """This Retry for one request of a download: no more retries than it has left."""
        # A copy of the fields as they are: Retry.new (~4 us) would check them all again.
        retry = object.__new__(type(self))
        retry.__dict__.update(self.__dict__)
        retry.request = request
        left, limit = request.listener.retries_left(), self.session_total
        retry.budgeted = isinstance(limit, int) and left < limit
        retry.total = left if retry.budgeted else limit
        return retry

    def increment(
        self, method: str | None = None, url: str | None = None, response: BaseHTTPResponse | None = None,
        error: Exception | None = None, *args: Any, **kwargs: Any,
    ) -> _HookedRetry:
        pool = kwargs.get("_pool", args[0] if args else None)  # names the proxy, if any
        try:
            retry = super().increment(method, url, response, error, *args, **kwargs)
        except MaxRetryError:
            request = self.request
            # Out of the download's budget rather than the request's own (nor an error
            # urllib3 never retries): the download's error says so.
            if request is not None and self.budgeted and self.total == 0 and not self._is_other(error):
                request.spent = request.listener.exhausted(
                    _reason(response, error, pool), response.status if response is not None else None)
            raise
        assert isinstance(retry, _HookedRetry)  # Retry.increment builds it with new()
        if self.request is not None:  # only a download's requests report their retries
            retry.reason = _reason(response, error, pool)
        return retry

    def _is_other(self, error: Exception | None) -> bool:
        """True for an error urllib3 counts as "other" (never retried here: ``other=0``)."""
        return error is not None and not (self._is_connection_error(error) or self._is_read_error(error))

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        hooks = self.hooks
        if hooks is None:
            super().sleep(response)
            return
        # Our own lenient parser: urllib3's raises on a malformed header, inside the request.
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
        delay = hooks.delay(len(self.history), retry_after)
        if self.request is not None:
            ended = self.request.listener.retrying(delay, self.reason)
            if ended is not None:  # the wait would pass the download's deadline
                raise ended
        hooks.wait(delay)


def _reason(response: BaseHTTPResponse | None, error: Exception | None, pool: object) -> str:
    """Why a request is retried, in the words its final error would use: the status and its
    reason phrase, or the failure as ``failures.describe`` says it (without the URL)."""
    if response is not None:
        return f"HTTP {response.status} {response.reason or ''}".rstrip()
    if error is not None:
        return describe(error, pool=pool)
    return "transport error"


def build_retry(config: RetryConfig, hooks: RetryHooks | None) -> Retry:
    """The urllib3 Retry for idempotent GET/HEAD requests, from ``config``."""
    return _HookedRetry(
        total=config.max_retries,
        redirect=False,
        other=0,
        allowed_methods=frozenset({"GET", "HEAD"}),
        status_forcelist=config.policy.transient_status_codes,
        backoff_factor=config.base_delay,
        backoff_max=config.max_delay,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
        hooks=hooks,
    )


class RetryingAdapter(OriginAdapter):
    """An HTTPAdapter (an OriginAdapter: its lookups once per origin) that takes a
    download's retry context with each request (``request_retry=``): that request gets a
    Retry of its own (:meth:`_HookedRetry.for_request`).

    Thread-safe like HTTPAdapter: the per-request Retry never touches the shared adapter.
    """

    def send(
        self, request: requests.PreparedRequest, *args: Any, request_retry: RequestRetry | None = None, **kwargs: Any
    ) -> requests.Response:
        shared = self.max_retries
        if request_retry is None or not isinstance(shared, _HookedRetry) or shared.hooks is None:
            return super().send(request, *args, **kwargs)
        # HTTPAdapter.send passes ``self.max_retries`` to urllib3, and this adapter serves
        # every thread: the request goes through a shallow view of it (same pools, same
        # settings) whose Retry is the request's own.
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.max_retries = shared.for_request(request_retry)
        return HTTPAdapter.send(view, request, *args, **kwargs)
