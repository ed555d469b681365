"""The test server's HTTP rules, without a socket (pydownloads/testing/responses.py)."""

from __future__ import annotations

import pytest

from pydownloads.testing import IgnoreRange, Slow, Status, WrongRange
from pydownloads.testing.records import Headers
from pydownloads.testing.responses import (
    FileRoute,
    RedirectRoute,
    http_date,
    parse_range,
    response_for,
)

DATA = bytes(range(100))
ROUTE = FileRoute(DATA, '"v1"', 1_700_000_000.0, "application/octet-stream", None, True, True, None)


@pytest.mark.parametrize(("value", "expected"), [
    ("bytes=0-9", (0, 9)), ("bytes=90-", (90, 99)), ("bytes=-10", (90, 99)), ("bytes=95-200", (95, 99)),
    ("bytes=100-", False), ("bytes=-0", False), ("bytes=5-1", None), ("bytes=0-1,3-4", None),
    ("items=0-1", None), ("bytes=x-1", None),
])
def test_ranges_are_read_as_rfc_9110_says(value: str, expected: tuple[int, int] | bool | None) -> None:
    assert parse_range(value, len(DATA)) == expected


def test_a_range_with_a_matching_if_range_is_served_partially() -> None:
    response = response_for(ROUTE, Headers({"range": "bytes=10-19", "If-Range": '"v1"'}), None)
    assert response.status == 206 and bytes(response.body) == DATA[10:20]
    assert ("Content-Range", "bytes 10-19/100") in response.headers
    stale = response_for(ROUTE, Headers({"Range": "bytes=10-19", "If-Range": '"v0"'}), None)
    assert stale.status == 200 and bytes(stale.body) == DATA


def test_conditional_requests_get_304_and_impossible_ranges_416() -> None:
    assert response_for(ROUTE, Headers({"If-None-Match": 'W/"v1"'}), None).status == 304
    assert response_for(ROUTE, Headers({"If-Modified-Since": http_date(1_700_000_000.0)}), None).status == 304
    assert response_for(ROUTE, Headers({"Range": "bytes=100-"}), None).status == 416


def test_faults_shape_the_response() -> None:
    status = response_for(ROUTE, Headers(), Status(503, {"Retry-After": "1", "Connection": "close"}, b"busy"))
    assert (status.status, status.close, bytes(status.body)) == (503, True, b"busy")
    assert ("Content-Length", "4") in status.headers
    assert response_for(ROUTE, Headers({"Range": "bytes=0-9"}), IgnoreRange()).status == 200
    shifted = response_for(ROUTE, Headers({"Range": "bytes=10-19"}), WrongRange(3))
    assert ("Content-Range", "bytes 13-19/100") in shifted.headers
    assert response_for(ROUTE, Headers(), Slow(1000)).rate == 1000


def test_redirects_and_missing_paths() -> None:
    redirect = response_for(RedirectRoute("/b", 307), Headers(), None)
    assert redirect.status == 307 and ("Location", "/b") in redirect.headers
    assert response_for(None, Headers(), None).status == 404
