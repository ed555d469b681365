"""BodyReader on a urllib3 or http.client without the private fields its direct path reads.

The direct path counts bytes in urllib3's and http.client's private books (``_fp``,
``_fp_bytes_read``, ``length_remaining``, ``length``, and the decoder's state). Another version
may keep them elsewhere; the reader must then go through urllib3's ``read1`` and still give
exact bytes, fail a short body and hand the connection back. Each test takes one field away
from the library's sight only, since urllib3 and http.client still need it to work.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator

import pytest
import requests

from pydownloads.domain.errors import IncompleteDownloadError
from pydownloads.infrastructure import transport
from pydownloads.localserver import LocalServer, ShortBody

DATA = random.Random(11).randbytes(1_000_000 + 3)

# (which object, field): "raw" is urllib3's response, "fp" the http.client response under it.
FIELDS = [
    ("raw", "_fp"),
    ("raw", "_fp_bytes_read"),
    ("raw", "length_remaining"),
    ("raw", "_has_decoded_content"),
    ("raw", "_decoded_buffer"),
    ("fp", "length"),
]


def _hide(owner: object, field: str) -> None:
    """Make ``field`` of ``owner`` absent to pydownloads' code and nobody else's.

    The owner becomes an instance of a subclass whose attribute lookup fails for ``field``
    when the caller is a pydownloads module; urllib3 and http.client go on using it.
    """
    base = type(owner)

    def __getattribute__(self: object, name: str) -> object:
        if name == field and sys._getframe(1).f_globals.get("__name__", "").startswith("pydownloads."):
            raise AttributeError(name)
        return base.__getattribute__(self, name)

    owner.__class__ = type(f"{base.__name__}Without{field}", (base,), {"__getattribute__": __getattribute__})


def _open(session: requests.Session, url: str, where: str,
          field: str) -> tuple[requests.Response, transport.BodyReader]:
    response = transport.send_get(session, url, headers={"Accept-Encoding": "identity"}, timeout=10.0)
    raw = response.raw
    _hide(raw if where == "raw" else raw._fp, field)
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


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.mark.parametrize(("where", "field"), FIELDS)
def test_exact_bytes_through_urllib3_and_the_connection_goes_back_to_the_pool(
        local_server: LocalServer, session: requests.Session, where: str, field: str) -> None:
    url = local_server.add_file("/f.bin", DATA)
    buffer = memoryview(bytearray(64 << 10))
    response, reader = _open(session, url, where, field)
    body, direct = _read_all(reader, buffer)
    assert body == DATA and direct == {False}  # every read went through urllib3's read1
    assert reader.received == len(DATA) and reader.read_into(buffer) == b""
    assert response.raw.tell() == len(DATA)  # urllib3's own count agrees
    # Read to its end, the body handed its connection back without a close: the next GET reuses it.
    again = transport.send_get(session, url, headers={"Accept-Encoding": "identity"}, timeout=10.0)
    assert again.content == DATA
    transport.close(again)
    transport.close(response)
    ports = [r.client_port for r in local_server.requests if r.path == "/f.bin"]
    assert len(ports) == 2 and ports[0] == ports[1]


@pytest.mark.parametrize(("where", "field"), FIELDS)
def test_a_short_body_fails_and_its_connection_is_not_reused(
        local_server: LocalServer, session: requests.Session, where: str, field: str) -> None:
    url = local_server.add_file("/short.bin", DATA)
    local_server.add_faults("/short.bin", ShortBody(100_000))
    response, reader = _open(session, url, where, field)
    with pytest.raises(IncompleteDownloadError) as caught:
        _read_all(reader, memoryview(bytearray(64 << 10)))
    assert (caught.value.expected, caught.value.received) == (len(DATA), 100_000)
    transport.close(response)
    again = transport.send_get(session, url, headers={"Accept-Encoding": "identity"}, timeout=10.0)
    assert again.content == DATA
    transport.close(again)
    ports = [r.client_port for r in local_server.requests if r.path == "/short.bin"]
    assert len(ports) == 2 and ports[0] != ports[1]


def test_hiding_a_field_does_not_hide_it_from_urllib3(local_server: LocalServer, session: requests.Session) -> None:
    """The test's own premise: without hiding, the same body takes the direct path."""
    url = local_server.add_file("/d.bin", DATA)
    response = transport.send_get(session, url, headers={"Accept-Encoding": "identity"}, timeout=10.0)
    reader = transport.BodyReader(response, url, transport.content_length(response))
    body, direct = _read_all(reader, memoryview(bytearray(64 << 10)))
    assert body == DATA and direct == {True}
    transport.close(response)
