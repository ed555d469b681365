"""BodyReader.read_into: bodies read straight into a reused buffer, against real servers.

The direct path (Content-Length framing) must give exact bytes, fail short bodies, hand a
fully read connection back to the pool (and never a broken one), return what has arrived,
and stop when aborted; chunked bodies go through urllib3 and must come out the same.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import random
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from pydownloads.domain.errors import DownloadTimeoutError, IncompleteDownloadError, TransferError
from pydownloads.infrastructure import transport
from pydownloads.localserver import LocalServer, ShortBody, Slow, Stall
from tests.adversarial.rawserver import RawServer, body, chunked

DATA = random.Random(7).randbytes(3_000_000 + 17)


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    with RawServer() as server:
        yield server


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def _open(session: requests.Session, url: str, timeout: float = 10.0) -> tuple[requests.Response, transport.BodyReader]:
    response = transport.send_get(session, url, headers={"Accept-Encoding": "identity"}, timeout=timeout)
    return response, transport.BodyReader(response, url, transport.content_length(response))


def _read_all(reader: transport.BodyReader, buffer: memoryview) -> tuple[bytes, set[bool]]:
    """The whole body, and for each read whether it came straight from the socket file
    (always into ``buffer`` itself)."""
    out, direct = bytearray(), set()
    while True:
        straight = reader.direct
        view = reader.read_into(buffer)
        if not view:
            return bytes(out), direct
        assert view.obj is buffer.obj
        direct.add(straight)
        out += view


def test_exact_bytes_in_the_reused_buffer_and_the_connection_is_reused(
        local_server: LocalServer, session: requests.Session) -> None:
    url = local_server.add_file("/big.bin", DATA)
    buffer = memoryview(bytearray(256 << 10))
    # The first body is read up to its last byte but never asked for more (as segment
    # lanes do): the connection must go back to the pool all the same.
    response, reader = _open(session, url)
    body, direct = bytearray(), set()
    while reader.received < len(DATA):
        direct.add(reader.direct)
        view = reader.read_into(buffer)
        assert view.obj is buffer.obj
        body += view
    assert bytes(body) == DATA and direct == {True}  # every read landed in the buffer: no copy
    assert response.raw.tell() == len(DATA)  # urllib3's own count agrees
    transport.close(response)
    response, reader = _open(session, url)
    body2, direct = _read_all(reader, buffer)
    assert hashlib.sha256(body2).hexdigest() == hashlib.sha256(DATA).hexdigest() and direct == {True}
    assert reader.read_into(buffer) == b""  # the end stays the end
    transport.close(response)
    ports = [r.client_port for r in local_server.requests if r.path == "/big.bin"]
    assert len(ports) == 2 and ports[0] == ports[1]  # the second GET reused the connection


def test_reads_of_any_size_come_out_exact_and_past_the_first_large_one_from_the_socket(
        raw_server: RawServer, session: requests.Session) -> None:
    # The head and the first body bytes come in one write, so http.client's socket file holds
    # some of the body: the reader must hand those over before it reads the socket itself.
    url = raw_server.route("/sizes.bin", body(DATA))
    response, reader = _open(session, url)
    buffer = memoryview(bytearray(1 << 20))
    sizes = random.Random(3)
    out, socket_after = bytearray(), None
    later = (sizes.choice([1, 700, 8191, 8193, 70_000, 1 << 20]) for _ in range(10_000))
    for size in itertools.chain([100, 5000, io.DEFAULT_BUFFER_SIZE, 3], later):
        view = reader.read_into(buffer[:size], fill=sizes.choice([0.0, 0.02]))
        if not view:
            break
        out += view
        if socket_after is None and size > io.DEFAULT_BUFFER_SIZE:
            socket_after = len(out)
        if reader.received < len(DATA):  # the first read asking more than the file's buffer empties it
            assert reader.on_socket == (socket_after is not None)
    assert bytes(out) == DATA and socket_after is not None
    assert response.raw.tell() == len(DATA)
    transport.close(response)


def test_a_body_cut_short_fails_and_its_connection_is_not_reused(
        local_server: LocalServer, session: requests.Session) -> None:
    url = local_server.add_file("/short.bin", DATA)
    local_server.add_faults("/short.bin", ShortBody(100_000))
    buffer = memoryview(bytearray(1 << 20))
    response, reader = _open(session, url)
    with pytest.raises(IncompleteDownloadError) as caught:
        _read_all(reader, buffer)
    assert (caught.value.expected, caught.value.received) == (len(DATA), 100_000)
    transport.close(response)
    response, reader = _open(session, url)
    body, direct = _read_all(reader, buffer)
    assert body == DATA and direct == {True}
    transport.close(response)
    ports = [r.client_port for r in local_server.requests if r.path == "/short.bin"]
    assert len(ports) == 2 and ports[0] != ports[1]


def test_a_chunked_body_comes_out_exact_through_urllib3(raw_server: RawServer, session: requests.Session) -> None:
    pieces = [DATA[:70_000], DATA[70_000:70_001], DATA[70_001:400_000]]
    framing = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    url = raw_server.route("/chunked", chunked(framing))
    response, reader = _open(session, url)
    assert reader.expected is None
    body, direct = _read_all(reader, memoryview(bytearray(1 << 20)))
    assert body == DATA[:400_000] and direct == {False}  # through urllib3, copied into the buffer
    transport.close(response)


def test_a_chunked_body_cut_short_is_an_error(raw_server: RawServer, session: requests.Session) -> None:
    url = raw_server.route("/cut", chunked(b"%x\r\n%b\r\n" % (50_000, DATA[:50_000]) + b"ffff\r\nabc"))
    response, reader = _open(session, url)
    with pytest.raises(TransferError):
        _read_all(reader, memoryview(bytearray(1 << 20)))
    transport.close(response)


def test_a_read_returns_what_has_arrived(local_server: LocalServer, session: requests.Session) -> None:
    url = local_server.add_file("/slow.bin", DATA[:200_000])
    local_server.add_faults("/slow.bin", Slow(rate=100_000))
    buffer = memoryview(bytearray(1 << 20))
    response, reader = _open(session, url)
    started = time.monotonic()
    first = len(reader.read_into(buffer))
    assert 0 < first < 200_000 and time.monotonic() - started < 1.0  # not a 1 MiB wait
    body, direct = _read_all(reader, buffer)
    assert DATA[:first] + body == DATA[:200_000] and direct == {True}
    assert reader.received == 200_000
    transport.close(response)


def test_a_fill_gathers_several_reads_into_one_chunk_for_a_bounded_time(
        local_server: LocalServer, session: requests.Session) -> None:
    url = local_server.add_file("/drip.bin", DATA[:400_000])
    local_server.add_faults("/drip.bin", Slow(rate=1_000_000))  # 20,000 bytes every 20 ms
    buffer = memoryview(bytearray(1 << 20))
    response, reader = _open(session, url)
    started = time.monotonic()
    first = len(reader.read_into(buffer, fill=0.3))
    took = time.monotonic() - started
    # Several of the server's pieces in one chunk, and the fill stopped near its time bound
    # (one read past it at most), long before the buffer or the body was full.
    assert 60_000 <= first < 400_000 and took < 1.5
    body, direct = _read_all(reader, buffer)
    assert DATA[:first] + body == DATA[:400_000] and direct == {True}
    transport.close(response)


def test_a_failure_within_a_fill_hands_over_the_bytes_before_it_then_raises(
        local_server: LocalServer, session: requests.Session) -> None:
    url = local_server.add_file("/cut.bin", DATA)
    local_server.add_faults("/cut.bin", ShortBody(100_000))
    buffer = memoryview(bytearray(1 << 20))
    response, reader = _open(session, url)
    got = bytearray()
    with pytest.raises(IncompleteDownloadError):
        while True:
            got += reader.read_into(buffer, fill=5.0)
    assert bytes(got) == DATA[:100_000]  # every byte that arrived came out before the error
    transport.close(response)


def test_a_silent_server_times_out(local_server: LocalServer, session: requests.Session) -> None:
    url = local_server.add_file("/stall.bin", DATA)
    local_server.add_faults("/stall.bin", Stall(seconds=5, after_bytes=10_000))
    response, reader = _open(session, url, timeout=0.5)
    with pytest.raises(DownloadTimeoutError):
        _read_all(reader, memoryview(bytearray(1 << 20)))
    transport.close(response)


def test_abort_from_another_thread_ends_a_blocked_read(local_server: LocalServer, session: requests.Session) -> None:
    url = local_server.add_file("/held.bin", DATA)
    local_server.add_faults("/held.bin", Stall(seconds=10, after_bytes=10_000))
    response, reader = _open(session, url)
    buffer = memoryview(bytearray(1 << 20))
    got = 0
    while got < 10_000:
        got += len(reader.read_into(buffer))
    timer = threading.Timer(0.2, transport.abort, args=(response,))
    timer.start()
    started = time.monotonic()
    with pytest.raises(IncompleteDownloadError):
        _read_all(reader, buffer)
    assert time.monotonic() - started < 3.0
    timer.join()
    transport.close(response)
