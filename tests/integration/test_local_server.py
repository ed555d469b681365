"""Self-tests for the integration test server, using plain requests and raw sockets."""

from __future__ import annotations

import email.utils
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import urllib3

from pydownloads.localserver import (
    DEFAULT_LAST_MODIFIED,
    LocalServer,
    ResetAfter,
    ShortBody,
    Stall,
    StallHeaders,
    Status,
)

pytestmark = pytest.mark.timeout(20)

TIMEOUT = 5.0
DATA = os.urandom(100)
BIG = os.urandom(300_000)  # several 64 KiB chunks


# --------------------------------------------------------------------------- helpers
def raw_get(server: LocalServer, path: str, *, method: str = "GET") -> socket.socket:
    """Open a raw connection to ``server`` and send one request for ``path``."""
    port = int(server.base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def read_until_eof(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read a whole response until EOF; return ``(head, body)``; errors propagate."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body


def stream_all(response: requests.Response, sink: bytearray, size: int = 1024) -> None:
    """Read the body into ``sink`` (what was read stays there if reading fails)."""
    for chunk in response.iter_content(size):
        sink += chunk


def run_in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``target`` in a daemon thread; its result or exception lands in the dict."""
    outcome: dict[str, Any] = {}

    def runner() -> None:
        try:
            outcome["result"] = target()
        except Exception as exc:  # handed over to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=runner, daemon=True)
    thread.start()
    return thread, outcome


# --------------------------------------------------------------------------- normal files
def test_full_get_returns_exact_bytes_and_headers(local_server: LocalServer) -> None:
    url = local_server.add_file(
        "/big.bin", BIG, content_type="application/x-test", content_disposition='attachment; filename="x.bin"'
    )
    response = requests.get(url, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.content == BIG
    headers = response.headers
    assert headers["Content-Length"] == str(len(BIG))
    assert headers["ETag"] == f'"{hashlib.sha256(BIG).hexdigest()}"'
    assert headers["Last-Modified"] == email.utils.formatdate(DEFAULT_LAST_MODIFIED, usegmt=True)
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Type"] == "application/x-test"
    assert headers["Content-Disposition"] == 'attachment; filename="x.bin"'
    assert url == local_server.url("/big.bin") == local_server.base_url + "/big.bin"


def test_custom_or_missing_validators(local_server: LocalServer) -> None:
    url = local_server.add_file("/v", DATA, etag='"v1"', last_modified=None)
    assert requests.get(url, timeout=TIMEOUT).headers["ETag"] == '"v1"'
    url = local_server.add_file("/none", DATA, etag=None)
    assert "ETag" not in requests.get(url, timeout=TIMEOUT).headers


def test_head_sends_headers_only_and_keeps_connection(local_server: LocalServer) -> None:
    url = local_server.add_file("/a", BIG)
    with requests.Session() as session:
        head = session.head(url, timeout=TIMEOUT)
        get = session.get(url, timeout=TIMEOUT)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(BIG))
    assert head.content == b""
    assert get.content == BIG
    assert local_server.bytes_sent("/a") == len(BIG)
    assert len({record.client_port for record in local_server.requests}) == 1


def test_unknown_path_is_404(local_server: LocalServer) -> None:
    response = requests.get(local_server.url("/missing"), timeout=TIMEOUT)
    assert response.status_code == 404
    assert response.content


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=10-19", 10, 19),
        ("bytes=0-0", 0, 0),
        ("bytes=90-", 90, 99),
        ("bytes=-5", 95, 99),
        ("bytes=50-1000", 50, 99),
        ("bytes=-500", 0, 99),
    ],
)
def test_single_range_is_206(local_server: LocalServer, range_header: str, first: int, last: int) -> None:
    url = local_server.add_file("/r", DATA)
    response = requests.get(url, headers={"Range": range_header}, timeout=TIMEOUT)
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/100"
    assert response.headers["Content-Length"] == str(last - first + 1)
    assert response.content == DATA[first : last + 1]


@pytest.mark.parametrize("range_header", ["bytes=100-", "bytes=200-300", "bytes=-0"])
def test_unsatisfiable_range_is_416(local_server: LocalServer, range_header: str) -> None:
    url = local_server.add_file("/r", DATA)
    response = requests.get(url, headers={"Range": range_header}, timeout=TIMEOUT)
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */100"


@pytest.mark.parametrize("range_header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-2"])
def test_multiple_or_invalid_ranges_get_full_body(local_server: LocalServer, range_header: str) -> None:
    url = local_server.add_file("/r", DATA)
    response = requests.get(url, headers={"Range": range_header}, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.content == DATA


def test_if_range(local_server: LocalServer) -> None:
    url = local_server.add_file("/r", DATA, etag='"v1"')
    date = email.utils.formatdate(DEFAULT_LAST_MODIFIED, usegmt=True)
    other_date = email.utils.formatdate(DEFAULT_LAST_MODIFIED + 60, usegmt=True)
    cases = [('"v1"', 206), ('"v2"', 200), ('W/"v1"', 200), (date, 206), (other_date, 200)]
    for if_range, status in cases:
        headers = {"Range": "bytes=10-", "If-Range": if_range}
        response = requests.get(url, headers=headers, timeout=TIMEOUT)
        assert response.status_code == status, if_range
        assert response.content == (DATA[10:] if status == 206 else DATA)


def test_replace_file_changes_etag(local_server: LocalServer) -> None:
    url = local_server.add_file("/f", DATA)
    old_etag = requests.head(url, timeout=TIMEOUT).headers["ETag"]
    local_server.replace_file("/f", BIG)
    headers = {"Range": "bytes=10-", "If-Range": old_etag}
    response = requests.get(url, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.content == BIG
    assert response.headers["ETag"] != old_etag
    with pytest.raises(KeyError):
        local_server.replace_file("/nope", DATA)


def test_accept_ranges_false_ignores_range(local_server: LocalServer) -> None:
    url = local_server.add_file("/r", DATA, accept_ranges=False)
    response = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.content == DATA
    assert "Accept-Ranges" not in response.headers
    assert "Content-Range" not in response.headers


def test_send_length_false_delimits_body_by_close(local_server: LocalServer) -> None:
    url = local_server.add_file("/n", BIG, send_length=False)
    response = requests.get(url, timeout=TIMEOUT)
    assert response.content == BIG
    assert "Content-Length" not in response.headers
    assert response.headers["Connection"] == "close"
    with raw_get(local_server, "/n") as sock:
        head, body = read_until_eof(sock)
    assert b"content-length" not in head.lower()
    assert body == BIG


def test_redirects(local_server: LocalServer) -> None:
    local_server.add_file("/target", DATA)
    relative = local_server.add_redirect("/rel", "/target")
    absolute = local_server.add_redirect("/abs", local_server.url("/target"), 301)
    response = requests.get(relative, timeout=TIMEOUT)
    assert response.content == DATA
    assert [r.status_code for r in response.history] == [302]
    response = requests.get(absolute, timeout=TIMEOUT)
    assert response.content == DATA
    assert [r.status_code for r in response.history] == [301]
    response = requests.get(relative, allow_redirects=False, timeout=TIMEOUT)
    assert response.headers["Location"] == "/target"


# --------------------------------------------------------------------------- faults
def test_reset_after_aborts_mid_body(local_server: LocalServer) -> None:
    url = local_server.add_file("/f", BIG)
    local_server.add_faults("/f", ResetAfter(1000), ResetAfter(1000))
    received = bytearray()
    response = requests.get(url, stream=True, timeout=TIMEOUT)
    assert response.headers["Content-Length"] == str(len(BIG))
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        stream_all(response, received, size=100)
    assert len(received) <= 1000
    assert received == BIG[: len(received)]
    # Seen from a raw socket it is a reset (RST), not a clean end of stream.
    with raw_get(local_server, "/f") as sock, pytest.raises(ConnectionResetError):
        read_until_eof(sock)
    assert local_server.bytes_sent("/f") == 2000


def test_short_body_closes_cleanly(local_server: LocalServer) -> None:
    url = local_server.add_file("/f", BIG)
    local_server.add_faults("/f", ShortBody(1000), ShortBody(1000))
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        requests.get(url, timeout=TIMEOUT)
    with raw_get(local_server, "/f") as sock:
        head, body = read_until_eof(sock)  # clean EOF, no reset
    assert f"Content-Length: {len(BIG)}".encode() in head
    assert body == BIG[:1000]


def test_stall_mid_body_causes_read_timeout(local_server: LocalServer) -> None:
    url = local_server.add_file("/f", BIG)
    local_server.add_faults("/f", Stall(0.5, after_bytes=100))
    received = bytearray()
    response = requests.get(url, stream=True, timeout=(TIMEOUT, 0.2))
    assert response.status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError) as info:
        stream_all(response, received, size=10)
    assert isinstance(info.value.args[0], urllib3.exceptions.ReadTimeoutError)
    assert received == BIG[:100]


def test_stall_then_close(local_server: LocalServer) -> None:
    url = local_server.add_file("/f", BIG)
    local_server.add_faults("/f", Stall(0.3, after_bytes=10))
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        requests.get(url, timeout=TIMEOUT)
    assert time.monotonic() - started >= 0.25


def test_stall_headers(local_server: LocalServer) -> None:
    url = local_server.add_file("/f", DATA)
    local_server.add_faults("/f", StallHeaders(0.5), StallHeaders(0.2))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(url, timeout=(TIMEOUT, 0.2))
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError):  # closed, no answer
        requests.get(url, timeout=TIMEOUT)
    assert time.monotonic() - started >= 0.15
    assert local_server.bytes_sent("/f") == 0
    assert requests.get(url, timeout=TIMEOUT).content == DATA


def test_status_fault_with_retry_after(local_server: LocalServer) -> None:
    url = local_server.add_file("/f", DATA)
    local_server.add_faults("/f", Status(503, {"Retry-After": "1"}, b"busy"))
    with requests.Session() as session:
        response = session.get(url, timeout=TIMEOUT)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.content == b"busy"
        assert session.get(url, timeout=TIMEOUT).content == DATA
    assert len({record.client_port for record in local_server.requests}) == 1


def test_faults_are_consumed_fifo_then_normal_service(local_server: LocalServer) -> None:
    url = local_server.add_file("/f", DATA)
    local_server.add_faults("/f", Status(500), Status(429, {"Retry-After": "2"}))
    local_server.add_faults("/f", Status(404))
    statuses = [requests.get(url, timeout=TIMEOUT).status_code for _ in range(5)]
    assert statuses == [500, 429, 404, 200, 200]
    assert local_server.request_count("/f") == 5
    assert [record.status for record in local_server.requests] == statuses
    faults = [record.fault for record in local_server.requests]
    assert faults[:3] == [Status(500), Status(429, {"Retry-After": "2"}), Status(404)]
    assert faults[3:] == [None, None]


# --------------------------------------------------------------------------- hold, rate
def test_hold_and_release(local_server: LocalServer) -> None:
    url = local_server.add_file("/h", DATA)
    local_server.hold("/h")
    runs = [run_in_thread(lambda: requests.get(url, timeout=TIMEOUT)) for _ in range(2)]
    assert local_server.wait_for_requests("/h", 2)
    assert local_server.max_concurrency == 2
    time.sleep(0.05)
    assert all(thread.is_alive() for thread, _ in runs)
    assert local_server.bytes_sent("/h") == 0
    local_server.release("/h")
    for thread, outcome in runs:
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        assert outcome["result"].content == DATA


def test_rate_throttles_body(local_server: LocalServer) -> None:
    data = os.urandom(20_000)
    url = local_server.add_file("/slow", data, rate=100_000)
    started = time.monotonic()
    response = requests.get(url, timeout=TIMEOUT)
    elapsed = time.monotonic() - started
    assert response.content == data
    assert 0.15 <= elapsed < 2.0


# --------------------------------------------------------------------------- observation
def test_request_records_and_counters(local_server: LocalServer) -> None:
    url = local_server.add_file("/f", BIG)
    local_server.add_faults("/f", ResetAfter(100))
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(url, timeout=TIMEOUT)
    requests.get(url, timeout=TIMEOUT)
    requests.get(url, headers={"range": "bytes=0-9"}, timeout=TIMEOUT)
    requests.head(url, timeout=TIMEOUT)
    assert local_server.request_count("/f") == 4
    assert local_server.request_count("/other") == 0
    assert local_server.bytes_sent("/f") == 100 + len(BIG) + 10
    records = local_server.requests
    assert [r.method for r in records] == ["GET", "GET", "GET", "HEAD"]
    assert [r.range for r in records] == [None, None, "bytes=0-9", None]
    assert [r.status for r in records] == [200, 200, 206, 200]
    assert records[2].headers["RANGE"] == records[2].headers.get("Range") == "bytes=0-9"
    assert "host" in records[0].headers
    assert all(r.path == "/f" for r in records)
    assert [r.seq for r in records] == [0, 1, 2, 3]
    assert [r.fault for r in records] == [ResetAfter(100), None, None, None]
    assert local_server.wait_idle()
    records = local_server.requests
    for record in records:
        assert record.finished_at is not None
        assert record.started_at <= record.finished_at
    records[0].headers.clear()  # copies: the server's records are untouched
    assert local_server.requests[0].headers
    local_server.reset_stats()
    assert local_server.requests == []
    assert local_server.request_count("/f") == local_server.bytes_sent("/f") == 0
    assert local_server.max_concurrency == 0
    assert local_server.errors == []


def test_query_string_is_not_part_of_path(local_server: LocalServer) -> None:
    url = local_server.add_file("/q", DATA)
    assert requests.get(url + "?x=1", timeout=TIMEOUT).content == DATA
    assert local_server.requests[0].target == "/q?x=1"


def test_client_disconnect_is_silent(local_server: LocalServer, capfd: pytest.CaptureFixture[str]) -> None:
    size = 64 * 1024 * 1024  # far more than loopback socket buffers can hold
    url = local_server.add_file("/big", b"x" * size, etag='"big"')
    response = requests.get(url, stream=True, timeout=TIMEOUT)
    next(response.iter_content(1024))
    response.close()
    assert local_server.wait_idle()
    assert local_server.bytes_sent("/big") < size
    assert local_server.errors == []
    assert capfd.readouterr().err == ""


def test_many_keep_alive_requests(local_server: LocalServer) -> None:
    url = local_server.add_file("/small", b"hello")
    started = time.monotonic()
    with requests.Session() as session:
        for _ in range(500):
            assert session.get(url, timeout=TIMEOUT).content == b"hello"
    assert time.monotonic() - started < 15  # ~0.7 s on an idle machine: a generous bound
    assert len({record.client_port for record in local_server.requests}) == 1


def test_sixteen_concurrent_clients(local_server: LocalServer) -> None:
    url = local_server.add_file("/small", DATA)

    def client() -> int:
        with requests.Session() as session:
            return sum(session.get(url, timeout=TIMEOUT).content == DATA for _ in range(40))

    runs = [run_in_thread(client) for _ in range(16)]
    for thread, outcome in runs:
        thread.join(TIMEOUT * 2)
        assert outcome.get("result") == 40, outcome
    assert local_server.request_count("/small") == 640
    assert 1 <= local_server.max_concurrency <= 16
    assert local_server.errors == []


# --------------------------------------------------------------------------- lifecycle
def _held(server: LocalServer) -> str:
    url = server.add_file("/x", DATA)
    server.hold("/x")
    return url


def _stalled(server: LocalServer) -> str:
    url = server.add_file("/x", BIG)
    server.add_faults("/x", Stall(5, after_bytes=10))
    return url


def _stalled_headers(server: LocalServer) -> str:
    url = server.add_file("/x", DATA)
    server.add_faults("/x", StallHeaders(5))
    return url


def _throttled(server: LocalServer) -> str:
    return server.add_file("/x", BIG, rate=1000)


@pytest.mark.parametrize("setup", [_held, _stalled, _stalled_headers, _throttled])
def test_stop_is_quick_with_busy_requests(setup: Callable[[LocalServer], str]) -> None:
    with LocalServer() as server:
        url = setup(server)
        thread, outcome = run_in_thread(lambda: requests.get(url, timeout=TIMEOUT).content)
        assert server.wait_for_requests("/x", 1)
        time.sleep(0.05)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1.0
    thread.join(2)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), requests.exceptions.RequestException)


def test_context_manager_and_idempotent_stop() -> None:
    with LocalServer() as server:
        url = server.add_file("/a", DATA)
        assert requests.get(url, timeout=TIMEOUT).content == DATA
    server.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, timeout=TIMEOUT)
    with pytest.raises(RuntimeError):
        server.start()
    with pytest.raises(ValueError):
        server.url("a")


def test_stop_closes_idle_keep_alive_connections() -> None:
    with LocalServer() as server, requests.Session() as session:
        url = server.add_file("/a", DATA)
        session.get(url, timeout=TIMEOUT)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1.0
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(url, timeout=TIMEOUT)
