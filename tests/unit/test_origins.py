"""OriginAdapter remembers per origin what HTTPAdapter works out per request: the pool, the
path sent, what is set on the pool for TLS and the response built must be HTTPAdapter's."""

from __future__ import annotations

import http.client
import io
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from requests.adapters import HTTPAdapter

from pydownloads.infrastructure.origins import OriginAdapter, sets_cookies

#: requests 2.32.2 and later choose the pool through these (older ones through get_connection).
TLS_CONTEXT = pytest.mark.skipif(not hasattr(HTTPAdapter, "build_connection_pool_key_attributes"),
                                 reason="requests before 2.32.2 chooses its pool elsewhere")

URLS = ["http://files.example:8080/a/b.bin?x=1", "https://files.example/c.bin", "https://u:p@other.example:8443/"]


def _request(url: str) -> requests.PreparedRequest:
    return requests.Request("GET", url).prepare()


@TLS_CONTEXT
@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("verify", [True, False, "bundle.pem"])
def test_the_pool_and_the_path_are_requests_own(url: str, verify: Any, tmp_path: Path) -> None:
    if verify == "bundle.pem":
        verify = str(tmp_path / "bundle.pem")
        Path(verify).write_text("not read here")
    ours, theirs = OriginAdapter(), HTTPAdapter()
    for _ in range(2):  # the second time from memory
        request = _request(url)
        mine = ours.get_connection_with_tls_context(request, verify, proxies={}, cert=None)
        their = theirs.get_connection_with_tls_context(request, verify, proxies={}, cert=None)
        assert (type(mine), mine.host, mine.port, mine.scheme) == (type(their), their.host, their.port, their.scheme)
        assert mine.conn_kw == their.conn_kw and getattr(mine, "ca_certs", None) == getattr(their, "ca_certs", None)
        assert ours.request_url(request, {}) == theirs.request_url(request, {})
    assert ours.get_connection_with_tls_context(_request(url), verify, {}, None) is mine  # the same pool again


@TLS_CONTEXT
def test_through_a_proxy_requests_decides() -> None:
    proxies = {"http": "http://proxy.example:3128"}
    request = _request(URLS[0])
    ours, theirs = OriginAdapter(), HTTPAdapter()
    assert ours.request_url(request, proxies) == theirs.request_url(request, proxies) == URLS[0]
    assert ours.get_connection_with_tls_context(request, True, proxies).proxy is not None


class _Pool:
    """Takes whatever cert_verify sets on it."""


@pytest.mark.parametrize("kind", ["true", "false", "file", "folder", "cert", "pair"])
def test_what_is_set_on_the_pool_for_tls_is_requests_own(kind: str, tmp_path: Path) -> None:
    bundle, folder, cert, key = tmp_path / "ca.pem", tmp_path / "cas", tmp_path / "c.pem", tmp_path / "k.pem"
    for path in (bundle, cert, key):
        path.write_text("x")
    folder.mkdir()
    verify: Any = {"true": True, "false": False, "file": str(bundle), "folder": str(folder)}.get(kind, str(bundle))
    client: Any = {"cert": str(cert), "pair": (str(cert), str(key))}.get(kind)
    adapter = OriginAdapter()
    for url in ("https://files.example/a", "https://files.example/b", "http://files.example/c"):
        mine, theirs = _Pool(), _Pool()
        adapter.cert_verify(mine, url, verify, client)
        HTTPAdapter().cert_verify(theirs, url, verify, client)
        assert vars(mine) == vars(theirs)


def test_a_missing_bundle_is_refused_every_time_as_requests_refuses_it(tmp_path: Path) -> None:
    adapter = OriginAdapter()
    for _ in range(2):
        with pytest.raises(OSError, match="Could not find a suitable TLS CA certificate bundle"):
            adapter.cert_verify(_Pool(), "https://files.example/a", str(tmp_path / "missing.pem"), None)


def _raw(block: bytes) -> urllib3.HTTPResponse:
    """A urllib3 response as the pools make it: http.client's underneath."""
    class Socket:
        def makefile(self, mode: str) -> io.BufferedReader:
            return io.BufferedReader(io.BytesIO(block))

    original = http.client.HTTPResponse(Socket(), method="GET")  # type: ignore[arg-type]
    original.begin()
    return urllib3.HTTPResponse(body=original, headers=urllib3.HTTPHeaderDict(original.msg.items()),
                                status=original.status, reason=original.reason, preload_content=False,
                                original_response=original)


@pytest.mark.parametrize("cookies", [b"", b"Set-Cookie: sid=1; Path=/\r\nSet-Cookie: o=2\r\n",
                                     b"set-cookie2: x=3; Version=1\r\n"])
def test_a_response_is_built_as_requests_builds_it(cookies: bytes) -> None:
    block = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=latin-1\r\nContent-Length: 2\r\n"
             + cookies + b"\r\nok")
    request = _request("http://files.example/dir/a.txt")
    mine = OriginAdapter().build_response(request, _raw(block))
    theirs = HTTPAdapter().build_response(request, _raw(block))
    assert sets_cookies(mine.raw) == bool(cookies)
    for name in ("status_code", "headers", "encoding", "reason", "url", "request"):
        assert getattr(mine, name) == getattr(theirs, name)
    assert mine.cookies.get_dict() == theirs.cookies.get_dict()
    assert mine.content == theirs.content == b"ok"
