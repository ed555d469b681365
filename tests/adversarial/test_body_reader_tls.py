"""Bodies read straight into a reused buffer over TLS: exact bytes, and a short or lying
body still fails (the direct path reads http.client's buffered TLS socket file, then the
TLS socket itself)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import pytest
import requests

from pydownloads.domain.errors import DownloadError, IncompleteDownloadError
from pydownloads.infrastructure import transport
from tests.adversarial.conftest import Certificate
from tests.adversarial.rawserver import RawServer, body, lying_length
from tests.support import wait_until

DATA = random.Random(11).randbytes(2_500_000)


@contextlib.contextmanager
def _opened(certificate: Certificate, url: str) -> Iterator[tuple[requests.Response, transport.BodyReader]]:
    """A streamed GET of ``url`` trusting ``certificate``, and its body's reader."""
    with requests.Session() as session:
        session.verify = str(certificate.cert)
        session.trust_env = False
        response = transport.send_get(session, url, headers={}, timeout=10)
        try:
            yield response, transport.BodyReader(response, url, transport.content_length(response))
        finally:
            transport.close(response)


def _read(certificate: Certificate, url: str) -> tuple[bytes, set[bool], list[bool]]:
    """The body; for each read whether it landed in the buffer, and whether reads went to
    the socket itself after it."""
    with _opened(certificate, url) as (_, reader):
        buffer = memoryview(bytearray(1 << 20))
        out, direct, on_socket = bytearray(), set(), []
        while view := reader.read_into(buffer, fill=0.02):
            direct.add(view.obj is buffer.obj)
            on_socket.append(reader.on_socket)
            out += view
        return bytes(out), direct, on_socket


def test_a_tls_body_comes_out_exact_in_the_reused_buffer(tls_server: RawServer, certificate: Certificate) -> None:
    url = tls_server.route("/f.bin", body(DATA))
    got, direct, on_socket = _read(certificate, url)
    assert got == DATA and direct == {True}
    # Past the first read (it empties http.client's file), every read is the socket's; the last
    # one ends the body and hands the connection back.
    assert on_socket[:-1] == [True] * (len(on_socket) - 1) and on_socket[-1] is False


def test_a_tls_body_shorter_than_announced_fails(tls_server: RawServer, certificate: Certificate) -> None:
    url = tls_server.route("/short.bin", lying_length(str(len(DATA) + 1000), DATA))
    with pytest.raises(IncompleteDownloadError) as caught:
        _read(certificate, url)
    assert caught.value.received == len(DATA)


def test_bytes_read_after_an_abort_are_still_the_body_or_an_error(
        tls_server: RawServer, certificate: Certificate) -> None:
    # An abort shuts the socket from another thread; what is still queued on it must come
    # out decrypted (or not at all), never as the raw TLS records it is.
    url = tls_server.route("/aborted.bin", body(DATA))
    with _opened(certificate, url) as (response, reader):
        buffer = memoryview(bytearray(64 << 10))
        out = bytearray(reader.read_into(buffer))
        wait_until(lambda: transport.waiting(response) > 0, timeout=5)  # bytes queued, unread (or all read)
        transport.abort(response)
        failed = None
        try:
            while view := reader.read_into(buffer, fill=0.02):
                out += view
        except DownloadError as error:
            failed = error
        assert bytes(out) == DATA[:len(out)]  # what came out is the body (an 0x17 record header was not)
        assert failed is not None or len(out) == len(DATA)  # the rest, if all of it was queued
