"""Fixtures for integration tests that talk to a real local HTTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pydownloads.localserver import LocalServer


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """A started :class:`LocalServer`, stopped (bounded, ~2 s at most) afterwards."""
    server = LocalServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def other_server() -> Iterator[LocalServer]:
    """A second origin (the same address, another port): mirrors, cross-origin redirects."""
    server = LocalServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
