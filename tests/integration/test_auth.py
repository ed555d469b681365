"""Credentials and cookies are honoured and stay with their origin."""

from __future__ import annotations

import base64
import http.cookiejar
from pathlib import Path

import pytest

from pydownloads import DownloadManager, InvalidArgumentError
from pydownloads.localserver import AuthRequired, LocalServer


def netscape_cookie_file(path: Path, domain: str, name: str, value: str) -> http.cookiejar.MozillaCookieJar:
    path.write_text(f"# Netscape HTTP Cookie File\n{domain}\tFALSE\t/\tFALSE\t4102444800\t{name}\t{value}\n")
    jar = http.cookiejar.MozillaCookieJar(str(path))
    jar.load()
    return jar


def test_auth_and_cookies_go_to_their_origin_only(
    local_server: LocalServer, other_server: LocalServer, tmp_path: Path
) -> None:
    challenge = AuthRequired("alice", "pa55word", schemes=("Basic",))
    other_server.add_file("/elsewhere.bin", b"moved")
    other_server.add_file("/asks.bin", b"moved", auth=challenge)  # another origin asking is not answered
    url = local_server.add_redirect("/start.bin", other_server.url("/elsewhere.bin"))
    asking = local_server.add_redirect("/start-asks.bin", other_server.url("/asks.bin"))
    local_server.add_file("/own.bin", b"own", auth=challenge)
    jar = netscape_cookie_file(tmp_path / "cookies.txt", "127.0.0.1", "session", "s3cret-cookie")
    with DownloadManager(tmp_path / "out", auth=("alice", "pa55word"), cookies=jar) as m:
        m.add_to_queue([url, local_server.url("/own.bin"), asking])
        m.queue.join()
    assert m.tracker.get_stats().completed == 2 and m.tracker.get_stats().failed == 1
    asked, own = [r for r in local_server.requests if r.path == "/own.bin"]
    expected = "Basic " + base64.b64encode(b"alice:pa55word").decode()
    assert asked.status == 401 and "Authorization" not in asked.headers  # plain HTTP: the challenge first
    assert own.headers.get("Authorization") == expected
    assert "s3cret-cookie" in (own.headers.get("Cookie") or "")
    moved = other_server.requests  # another port: another origin
    assert sorted(r.path for r in moved) == ["/asks.bin", "/elsewhere.bin"]
    for record in moved:
        assert "Authorization" not in record.headers
        assert "pa55word" not in str(record.headers)


def test_bad_auth_cookies_or_verify_are_refused(tmp_path: Path) -> None:
    for options in ({"auth": "alice:secret"}, {"cookies": {"a": "b"}}, {"verify": 1}):
        with pytest.raises(InvalidArgumentError):
            DownloadManager(tmp_path, **options)  # type: ignore[arg-type]


def test_turning_verification_off_is_loud(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    DownloadManager(tmp_path, verify=False).shutdown()
    assert "verification is OFF" in caplog.text
