"""Errors in words, on real sockets: a failing proxy says so, an error after redirects names
the URL that answered, a retry line reads as the final error does, and the command tells a
restart from zero from a retry."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pydownloads
from pydownloads.domain.models import DownloadInfo
from pydownloads.domain.retry import RetryConfig
from pydownloads.events.types import DownloadRetrying
from pydownloads.localserver import IgnoreRange, LocalServer, ResetAfter, Status
from tests.adversarial.rawserver import RawServer, body, head, raw, redirect
from tests.integration.clirun import run_cli
from tests.integration.helpers import payload

_PROXY_ENVIRONMENT = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                      "no_proxy", "NO_PROXY")
#: Never contacted: through a proxy, only the proxy is.
TARGET = "198.51.100.7"


@pytest.fixture(autouse=True)
def _no_proxy_of_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[RawServer]:
    with RawServer() as running:
        yield running


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket is closed


def _failed(url: str, tmp_path: Path, retries: int = 0, **options: Any) -> tuple[DownloadInfo, list[DownloadRetrying]]:
    """Download ``url`` alone; its failure and the retry events it went through."""
    seen: list[DownloadRetrying] = []
    config = RetryConfig(max_retries=retries, base_delay=0.001, max_delay=0.01)
    with pydownloads.DownloadManager(tmp_path / "out", retry_config=config, **options) as manager:
        manager.emitter.on("worker.retrying", seen.append)
        manager.add_to_queue([url])
        manager.join(timeout=60)
        info = manager.tracker.get_download(url)
    assert info is not None and info.error is not None, info
    return info, seen


def test_a_proxy_that_refuses_says_so(tmp_path: Path) -> None:
    proxy = f"http://127.0.0.1:{_closed_port()}"
    url = f"http://{TARGET}/file.bin"
    info, _ = _failed(url, tmp_path, proxies={"http": proxy})
    assert info.error == f"proxy {proxy} refused the connection ({url})"
    assert info.error_type == "TransferError"


def test_a_proxy_that_refuses_a_tunnel_says_so(server: RawServer, tmp_path: Path) -> None:
    server.route("*", raw(head(502, [("Content-Length", "0")], reason="Bad Gateway")))
    proxy, url = server.origin, f"https://{TARGET}/file.bin"
    info, _ = _failed(url, tmp_path, proxies={"https": proxy})
    assert info.error == f"proxy {proxy} failed: Tunnel connection failed: 502 Bad Gateway ({url})"


def test_a_proxy_that_closes_the_connection_says_so(server: RawServer, tmp_path: Path) -> None:
    server.route("*", raw(b""))
    proxy, url = server.origin, f"http://{TARGET}/file.bin"
    info, _ = _failed(url, tmp_path, proxies={"http": proxy})
    assert info.error == f"proxy {proxy} closed the connection ({url})"


def test_retry_lines_use_the_words_of_the_final_error(tmp_path: Path) -> None:
    proxy = f"http://127.0.0.1:{_closed_port()}"
    url = f"http://{TARGET}/file.bin"
    info, retries = _failed(url, tmp_path, retries=2, proxies={"http": proxy})
    words = f"proxy {proxy} refused the connection"
    assert info.error == f"{words} ({url})"
    assert [event.reason for event in retries] == [words, words]


def test_a_refused_connection_after_a_redirect_names_the_url_that_answered(server: RawServer, tmp_path: Path) -> None:
    gone = f"http://127.0.0.1:{_closed_port()}/moved/file.bin"
    server.route("/file.bin", redirect(gone))
    info, _ = _failed(server.url("/file.bin"), tmp_path)
    assert info.error == f"connection failed: Connection refused ({gone})"
    assert info.url == server.url("/file.bin")


def test_an_error_status_after_a_redirect_names_the_url_that_answered(server: RawServer, tmp_path: Path) -> None:
    server.route("/file.bin", redirect(server.url("/elsewhere/file.bin")))
    server.route("/elsewhere/file.bin", body(b"", status=404))
    info, _ = _failed(server.url("/file.bin"), tmp_path)
    assert info.error == f"HTTP 404 X from {server.url('/elsewhere/file.bin')}"


def test_a_proxy_password_never_shows_in_the_words(tmp_path: Path) -> None:
    port = _closed_port()
    url = f"http://{TARGET}/file.bin"
    info, retries = _failed(url, tmp_path, retries=1, proxies={"http": f"http://alice:s3cret@127.0.0.1:{port}"})
    assert info.error is not None and info.error.endswith(f"127.0.0.1:{port} refused the connection ({url})")
    assert retries and all("s3cret" not in text for text in [info.error, *(event.reason for event in retries)])


def test_the_command_says_restarting_for_a_restart_and_retrying_for_a_retry(
        local_server: LocalServer, tmp_path: Path) -> None:
    data = payload(1_000_000, 5)
    url = local_server.add_file("/b.bin", data)
    local_server.add_faults("/b.bin", ResetAfter(250_000), IgnoreRange())  # the resumed request gets it all
    result = run_cli(url, "--retries", "2", "-x", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "b.bin").read_bytes() == data
    retries = [line for line in result.stderr.splitlines() if line.startswith(f"retrying {url} ")]
    assert len(retries) == 1 and retries[0].endswith("; attempt 2)"), result.stderr
    assert f"{url}: restarting from zero: the server sent the whole file" in result.stderr
    assert "restarting" not in retries[0]


def test_a_download_out_of_retries_in_the_transport_says_so_in_the_same_words(
        local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/e.bin", payload(300_000, 6))
    local_server.add_faults("/e.bin", ResetAfter(100_000), *[Status(503)] * 3)  # then the budget ends it
    info, retries = _failed(url, tmp_path, retries=2)
    words = "HTTP 503 Service Unavailable"
    assert info.error == f"{words} from {url}, retries exhausted" and info.error_type == "HTTPStatusError"
    assert [event.reason for event in retries][-1] == words
