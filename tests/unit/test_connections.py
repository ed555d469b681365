"""The manager's pools parse response headers themselves: the message, the framing and the
lookups must be exactly what http.client's own parser gives, for plain header blocks (the
fast path) and for anything odd (handed to http.client's parser)."""

from __future__ import annotations

import http.client
import io
import random
import threading
from typing import Any

import pytest

import pydownloads.infrastructure.connections as connections
from pydownloads.domain.retry import RetryConfig
from pydownloads.infrastructure.connections import Connection, TLSConnection, parse_header_block
from pydownloads.infrastructure.http import RetryHooks, build_session
from pydownloads.infrastructure.watch import ConnectionWatch

NGINX = (b"Server: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 02:30:00 GMT\r\n"
         b"Content-Type: application/octet-stream\r\nContent-Length: 16384\r\n"
         b"Last-Modified: Thu, 03 Dec 2026 02:00:00 GMT\r\nConnection: keep-alive\r\n"
         b"ETag: \"6b10d531-4000\"\r\nAccept-Ranges: bytes\r\nSet-Cookie: a=b\r\nSet-Cookie: c=d\r\n\r\n")


def _view(message: http.client.HTTPMessage) -> dict[str, Any]:
    """Everything a message holds, defects by their repr (defect objects never compare equal)."""
    state = dict(vars(message))
    state["defects"] = [repr(defect) for defect in state["defects"]]
    return state


def _both(block: bytes) -> tuple[http.client.HTTPMessage, http.client.HTTPMessage]:
    return http.client.parse_headers(io.BytesIO(block)), parse_header_block(io.BytesIO(block))


class _Counted:
    """Counts the blocks handed to http.client's own parser."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.slow = 0
        original = connections._parse_lines

        def counted(lines: list[bytes]) -> http.client.HTTPMessage:
            self.slow += 1
            return original(lines)

        monkeypatch.setattr(connections, "_parse_lines", counted)


def test_a_servers_header_block_is_parsed_on_the_fast_path_into_the_same_message(
        monkeypatch: pytest.MonkeyPatch) -> None:
    counted = _Counted(monkeypatch)
    theirs, ours = _both(NGINX)
    assert counted.slow == 0
    assert _view(ours) == _view(theirs)
    assert list(ours.items()) == list(theirs.items())
    for name in ("content-length", "CONNECTION", "set-cookie", "Missing"):
        assert ours.get(name) == theirs.get(name) and (name in ours) == (name in theirs)
    assert ours.get_all("Set-Cookie") == ["a=b", "c=d"]


@pytest.mark.parametrize("block", [
    b"Folded: a\r\n  b\r\n\r\n",             # obsolete line folding
    b"\tFirst: continuation\r\n\r\n",       # a first line that continues nothing
    b"No colon here\r\nX: y\r\n\r\n",        # not a header: the rest is payload
    b"Bare: cr\rinside\r\n\r\n",            # a CR the email parser splits on
    b"Spaced name: v\r\n\r\n",               # a name that is no token
    b"X: cut off",                           # the connection ended in the block
])
def test_an_odd_header_block_goes_to_http_clients_parser(monkeypatch: pytest.MonkeyPatch, block: bytes) -> None:
    counted = _Counted(monkeypatch)
    theirs, ours = _both(block)
    assert counted.slow == 1
    assert _view(ours) == _view(theirs)


def test_random_header_blocks_parse_as_http_client_parses_them(monkeypatch: pytest.MonkeyPatch) -> None:
    counted = _Counted(monkeypatch)
    rng = random.Random(17)
    pieces = [b"a", b"B", b":", b" ", b"\t", b"\r", b"\n", b"\r\n", b"-", b"\xe9", b"From ", b"\x00", b";",
              b"Set-Cookie", b"Content-Length: ", b"X-Y:"]
    cases = 3000
    for _ in range(cases):
        lines = [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 8))) + rng.choice([b"\r\n", b"\n"])
                 for _ in range(rng.randint(0, 5))]
        block = b"".join(lines) + rng.choice([b"\r\n", b"\n", b""])
        theirs, ours = _both(block)
        assert _view(ours) == _view(theirs), block
        assert list(ours.items()) == list(theirs.items()), block
        for name in ("set-cookie", "x-y", "content-length"):
            assert ours.get(name) == theirs.get(name), block
    assert 0 < counted.slow < cases  # both paths were taken


class _Socket:
    """Just enough of a socket for http.client's response: its bytes, as a file."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self._data))


def _framing(response_class: type[http.client.HTTPResponse], data: bytes, method: str) -> dict[str, Any]:
    response = response_class(_Socket(data), method=method)  # type: ignore[arg-type]
    response.begin()
    framing = {"status": response.status, "reason": response.reason, "version": response.version,
               "chunked": response.chunked, "length": response.length, "will_close": response.will_close,
               "headers": list(response.msg.items())}
    try:
        framing["body"] = response.read()
    except http.client.HTTPException as error:  # the same failure, read the same way
        framing["body"] = repr(error)
    return framing


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("data", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
    b"HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\nConnection: close\r\n\r\nabc",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\nX: y\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nFolded: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
])
def test_a_response_is_framed_as_http_client_frames_it(data: bytes, method: str) -> None:
    assert _framing(connections._Response, data, method) == _framing(http.client.HTTPResponse, data, method)


def test_an_unknown_protocol_is_refused_as_http_client_refuses_it() -> None:
    for response_class in (connections._Response, http.client.HTTPResponse):
        with pytest.raises(http.client.UnknownProtocol):
            _framing(response_class, b"HTTP/2.0 200 OK\r\n\r\n", "GET")


def test_only_the_managers_pools_use_these_connections() -> None:
    config = RetryConfig()
    watched = build_session(pool_size=2, config=config, hooks=RetryHooks(config, threading.Event()),
                            watch=ConnectionWatch(5.0))
    classes = watched.adapters["https://"].poolmanager.pool_classes_by_scheme  # type: ignore[attr-defined]
    assert classes["http"].ConnectionCls is Connection and classes["https"].ConnectionCls is TLSConnection
    assert http.client.HTTPConnection.response_class is http.client.HTTPResponse  # nothing global changed
    plain = build_session(pool_size=2, config=config, hooks=None)
    pools = plain.adapters["https://"].poolmanager.pool_classes_by_scheme  # type: ignore[attr-defined]
    assert pools["http"].ConnectionCls is not Connection
