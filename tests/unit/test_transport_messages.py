"""A failed connection says what the operating system said, not urllib3's wrappers."""

from __future__ import annotations

import socket

import pytest
import requests

from pydownloads.domain.errors import TransferError
from pydownloads.infrastructure.transport import translate


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket is closed


def test_a_refused_connection_says_so_plainly() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/file.bin"
    with requests.Session() as session, pytest.raises(requests.ConnectionError) as caught:
        session.get(url, timeout=5)
    error = translate(caught.value, url)
    assert isinstance(error, TransferError)
    assert str(error) == f"connection failed: Connection refused ({url})"
    assert error.cause is caught.value  # the whole chain is kept for whoever needs it


def test_an_error_without_an_operating_system_cause_keeps_its_text() -> None:
    url = "http://127.0.0.1:1/file.bin"
    error = translate(requests.exceptions.ChunkedEncodingError("bad chunk header"), url)
    assert str(error) == f"connection failed: bad chunk header ({url})"
