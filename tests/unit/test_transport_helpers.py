"""Unit tests for the pure helpers of the transport boundary: parse_retry_after, content_length, translate."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import requests.exceptions as rex
import urllib3.exceptions as uex

from pydownloads.domain.errors import (
    DownloadError,
    DownloadTimeoutError,
    HTTPStatusError,
    RedirectError,
    TLSError,
    TransferError,
)
from pydownloads.infrastructure.transport import content_length, parse_retry_after, translate

DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
DATE_TS = datetime(2015, 10, 21, 7, 28, 0, tzinfo=timezone.utc).timestamp()

URL = "https://example.com/files/a.bin"
SECRET_URL = "http://user:secret@host.example/x"


# -- parse_retry_after --------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("0", 0.0), ("5", 5.0), ("120", 120.0), (" 30 ", 30.0)])
def test_parse_retry_after_delta_seconds(value: str, expected: float) -> None:
    result = parse_retry_after(value)
    assert result == expected
    assert isinstance(result, float)


def test_parse_retry_after_http_date_in_the_future() -> None:
    assert parse_retry_after(DATE, now=DATE_TS - 30) == 30.0
    assert parse_retry_after(DATE, now=DATE_TS - 0.5) == 0.5


def test_parse_retry_after_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after(DATE, now=DATE_TS + 3600) == 0.0
    assert parse_retry_after(DATE, now=DATE_TS) == 0.0


def test_parse_retry_after_http_date_with_offset() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 09:28:00 +0200", now=DATE_TS - 10) == 10.0


def test_parse_retry_after_http_date_uses_the_wall_clock_by_default() -> None:
    assert parse_retry_after(DATE) == 0.0  # 2015 is in the past
    assert parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT")  # far future: positive


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "soon", "-5", "1.5", "5s", "Wed, 99 Foo 2015", "Wed, 21 Oct 2015 07:28:00 -0000", "0x10"],
)
def test_parse_retry_after_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, now=DATE_TS) is None


@pytest.mark.parametrize("value", ["\u00b2", "\u00b9\u00b3", "\u0663", "\uff15"])
def test_parse_retry_after_non_ascii_digits_are_none(value: str) -> None:
    # Latin-1 superscripts arrive in headers decoded as ISO-8859-1; str.isdigit accepts them.
    assert parse_retry_after(value) is None


# -- content_length -----------------------------------------------------------------------------


class FakeResponse:
    """The one attribute content_length reads."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


def _length(headers: dict[str, str]) -> int | None:
    response: Any = FakeResponse(headers)
    return content_length(response)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Content-Length": "0"}, 0),
        ({"Content-Length": "10"}, 10),
        ({"Content-Length": " 42 "}, 42),
        ({"Content-Length": "10, 10"}, 10),
        ({"Content-Length": "10,10,10"}, 10),
        ({"Content-Length": "10, 20"}, None),
        ({"Content-Length": "-1"}, None),
        ({"Content-Length": "abc"}, None),
        ({"Content-Length": ""}, None),
        ({"Content-Length": "1e3"}, None),
        ({"Content-Length": "10.0"}, None),
        ({"Content-Length": "+10"}, None),
        ({"Content-Length": "10, abc"}, None),
        ({"Other": "10"}, None),
    ],
)
def test_content_length(headers: dict[str, str], expected: int | None) -> None:
    assert _length(headers) == expected


def test_content_length_large_value() -> None:
    assert _length({"Content-Length": "10737418240"}) == 10 * 1024**3


@pytest.mark.parametrize("value", ["\u00b2", "1\u00b2", "\u0663", "\uff15"])
def test_content_length_non_ascii_digits_are_none(value: str) -> None:
    assert _length({"Content-Length": value}) is None


# -- translate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected_type"),
    [
        (rex.ConnectTimeout("connect timed out"), DownloadTimeoutError),
        (rex.ReadTimeout("read timed out"), DownloadTimeoutError),
        (uex.ReadTimeoutError(None, URL, "read timed out"), DownloadTimeoutError),  # type: ignore[arg-type]
        (TimeoutError("timed out"), DownloadTimeoutError),  # socket.timeout
        (rex.SSLError("certificate verify failed"), TLSError),
        (uex.SSLError("handshake failure"), TLSError),
        (rex.TooManyRedirects("Exceeded 30 redirects."), RedirectError),
        (rex.InvalidSchema("unsupported scheme"), RedirectError),
        (rex.InvalidURL("bad url"), RedirectError),
        (rex.MissingSchema("no scheme"), RedirectError),
        (rex.ConnectionError("connection refused"), TransferError),
        (rex.ChunkedEncodingError("broken chunk"), TransferError),
        (rex.RequestException("generic"), TransferError),
        (uex.ProtocolError("Connection aborted."), TransferError),
        (OSError(104, "Connection reset by peer"), TransferError),
        (ConnectionResetError(104, "reset"), TransferError),
    ],
    ids=lambda value: type(value).__module__.split(".")[0] + "." + type(value).__name__
    if isinstance(value, BaseException)
    else value.__name__,
)
def test_translate_maps_to_documented_leaves(error: BaseException, expected_type: type[DownloadError]) -> None:
    result = translate(error, URL)
    assert type(result) is expected_type
    assert result.cause is error
    assert result.url == URL
    assert URL in str(result)


def test_translate_plain_transfer_error_is_not_a_more_specific_leaf() -> None:
    result = translate(rex.ConnectionError("refused"), URL)
    assert not isinstance(result, (DownloadTimeoutError, TLSError))
    assert "refused" in str(result)


def test_translate_keeps_a_reason_whole_up_to_a_bound() -> None:
    assert str(translate(OSError("x" * 999), URL)) == f"connection failed: {'x' * 999} ({URL})"
    result = translate(OSError("x" * 3000), URL)
    assert "x" * 997 + "..." in str(result)
    assert "x" * 998 not in str(result)


def test_translate_empty_cause_message_uses_its_type_name() -> None:
    result = translate(rex.ChunkedEncodingError(), URL)
    assert str(result) == f"connection failed: ChunkedEncodingError ({URL})"


def test_translate_passes_download_errors_through() -> None:
    error = HTTPStatusError("HTTP 500", status=500, url=URL)
    assert translate(error, URL) is error


@pytest.mark.parametrize(
    "error",
    [
        rex.ConnectTimeout(),
        rex.ReadTimeout(),
        rex.SSLError(),
        rex.TooManyRedirects(),
        rex.InvalidSchema(),
        rex.ConnectionError(),
        rex.ChunkedEncodingError(),
        uex.ProtocolError(),
        OSError(),
    ],
    ids=lambda error: type(error).__name__,
)
def test_translate_redacts_credentials(error: BaseException) -> None:
    result = translate(error, SECRET_URL)
    assert "secret" not in str(result)
    assert "user" not in str(result)
    assert result.url is not None
    assert "secret" not in result.url
    assert result.url == "http://***@host.example/x"


def test_translate_redacts_credentials_repeated_in_the_cause_message() -> None:
    # requests.Session.get_adapter raises exactly this for a URL it has no adapter for.
    error = rex.InvalidSchema(f"No connection adapters were found for {SECRET_URL!r}")
    assert "secret" not in str(translate(error, SECRET_URL))


@pytest.mark.parametrize("error", [ValueError("x"), RuntimeError("y"), KeyError("z"), Exception()])
def test_translate_rejects_non_transport_exceptions(error: BaseException) -> None:
    with pytest.raises(TypeError, match="not a transport error") as info:
        translate(error, URL)
    assert info.value.__cause__ is error


def test_timeouts_after_urllib3_retries_are_still_timeouts() -> None:
    import requests.exceptions as rex
    import urllib3.exceptions as uex

    from pydownloads.domain.errors import DownloadTimeoutError
    from pydownloads.infrastructure.transport import translate

    read = rex.ConnectionError(uex.MaxRetryError(None, "/x", uex.ReadTimeoutError(None, "/x", "read timed out")))
    connect = rex.ConnectionError(uex.MaxRetryError(None, "/x", uex.ConnectTimeoutError(None, "timed out")))
    for error in (read, connect):
        assert type(translate(error, "http://host/x")) is DownloadTimeoutError
