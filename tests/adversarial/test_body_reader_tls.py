"""Bodies read straight into a reused buffer over TLS: exact bytes, and a short or lying
body still fails (the direct path reads http.client's buffered TLS socket file, then the
TLS socket itself)."""

from __future__ import annotations

import random

import pytest
import requests

from pydownloads.domain.errors import IncompleteDownloadError
from pydownloads.infrastructure import transport
from tests.adversarial.conftest import Certificate
from tests.adversarial.rawserver import RawServer, body, lying_length

DATA = random.Random(11).randbytes(2_500_000)


def _read(tls_server: RawServer, certificate: Certificate, url: str) -> tuple[bytes, set[bool], list[bool]]:
    """The body; for each read whether it landed in the buffer, and whether reads went to
    the socket itself after it."""
    with requests.Session() as session:
        session.verify = str(certificate.cert)
        session.trust_env = False
        response = transport.send_get(session, url, headers={}, timeout=10)
        try:
            reader = transport.BodyReader(response, url, transport.content_length(response))
            buffer = memoryview(bytearray(1 << 20))
            out, direct, on_socket = bytearray(), set(), []
            while view := reader.read_into(buffer, fill=0.02):
                direct.add(view.obj is buffer.obj)
                on_socket.append(reader.on_socket)
                out += view
            return bytes(out), direct, on_socket
        finally:
            transport.close(response)


def test_a_tls_body_comes_out_exact_in_the_reused_buffer(tls_server: RawServer, certificate: Certificate) -> None:
    url = tls_server.route("/f.bin", body(DATA))
    got, direct, on_socket = _read(tls_server, certificate, url)
    assert got == DATA and direct == {True}
    # Past the first read (it empties http.client's file), every read is the socket's; the last
    # one ends the body and hands the connection back.
    assert on_socket[:-1] == [True] * (len(on_socket) - 1) and on_socket[-1] is False


def test_a_tls_body_shorter_than_announced_fails(tls_server: RawServer, certificate: Certificate) -> None:
    url = tls_server.route("/short.bin", lying_length(str(len(DATA) + 1000), DATA))
    with pytest.raises(IncompleteDownloadError) as caught:
        _read(tls_server, certificate, url)
    assert caught.value.received == len(DATA)
