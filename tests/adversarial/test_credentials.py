"""No leak: Authorization, Cookie and proxy credentials never go to another host, port or scheme
after a redirect, and credentials never show in logs, events or errors.

Two raw servers on different ports are two origins; the same server reached as ``localhost``
instead of ``127.0.0.1`` is another host.  Every request each server sees is recorded.
"""

from __future__ import annotations

import base64
import logging
import traceback
from pathlib import Path
from typing import Any

import pytest

from pydownloads import DownloadManager
from pydownloads.domain import FileConfig
from pydownloads.domain.errors import DownloadError
from tests.adversarial.conftest import FAST, Sandbox, run_batch
from tests.adversarial.rawserver import RawServer, body, head, lying_length, raw, recorder, redirect

SECRET = "s3cr3t-Zq8"
SECRET_B64 = base64.b64encode(f"user:{SECRET}".encode()).decode()
SENSITIVE = ("authorization", "cookie", "proxy-authorization")


def _leaks(server: RawServer, path: str) -> list[tuple[str, str]]:
    """Credential headers (or the secret anywhere) that ``server`` saw on ``path``."""
    found = []
    for request in server.requests:
        if request.path != path:
            continue
        for name, value in request.headers:
            if name.lower() in SENSITIVE or SECRET in value or SECRET_B64 in value:
                found.append((name, value))
    return found


def _credentials(kind: str, url: str) -> tuple[FileConfig | str, dict[str, Any]]:
    """The download item and manager options that carry credentials the ``kind`` way."""
    headers = {"Authorization": f"Bearer {SECRET}", "Cookie": f"session={SECRET}",
               "Proxy-Authorization": f"Basic {SECRET}"}
    if kind == "file-headers":
        return FileConfig(url, headers=headers), {}
    if kind == "manager-headers":
        return url, {"headers": headers}
    return url.replace("http://", f"http://user:{SECRET}@"), {}


CREDENTIAL_KINDS = ["file-headers", "manager-headers", "userinfo"]


@pytest.mark.parametrize("kind", CREDENTIAL_KINDS)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_credentials_do_not_follow_a_redirect_to_another_port(
        raw_server: RawServer, other_server: RawServer, sandbox: Sandbox, kind: str, status: int) -> None:
    other_server.route("/rec", recorder())
    url = raw_server.route("/start", redirect(other_server.url("/rec"), status))
    item, options = _credentials(kind, url)
    outcome = run_batch(sandbox, [item], **options)
    outcome.assert_exact(item.url if isinstance(item, FileConfig) else item, b"recorded")
    assert _leaks(raw_server, "/start"), "the first origin should have seen the credentials"
    assert _leaks(other_server, "/rec") == []


@pytest.mark.parametrize("kind", CREDENTIAL_KINDS)
@pytest.mark.parametrize("target", ["http://localhost:{port}/rec", "//localhost:{port}/rec"])
def test_credentials_do_not_follow_a_redirect_to_another_host(
        raw_server: RawServer, sandbox: Sandbox, kind: str, target: str) -> None:
    raw_server.route("/rec", recorder())
    url = raw_server.route("/start", redirect(target.format(port=raw_server.port)))
    item, options = _credentials(kind, url)
    run_batch(sandbox, [item], **options)
    assert [r.header("Host") for r in raw_server.requests if r.path == "/rec"] == [f"localhost:{raw_server.port}"]
    assert _leaks(raw_server, "/rec") == []


def test_authorization_survives_a_same_origin_redirect(raw_server: RawServer, sandbox: Sandbox) -> None:
    """Control: the recorder does see credentials after a redirect when the origin is the same."""
    raw_server.route("/rec", recorder())
    url = raw_server.route("/start", redirect("/rec"))
    run_batch(sandbox, [FileConfig(url, headers={"Authorization": f"Bearer {SECRET}"})])
    assert ("Authorization", f"Bearer {SECRET}") in _leaks(raw_server, "/rec")


def test_cookie_set_during_a_redirect_stays_with_its_origin(
        raw_server: RawServer, other_server: RawServer, sandbox: Sandbox) -> None:
    other_server.route("/rec", recorder())
    url = raw_server.route("/start", raw(head(302, [("Set-Cookie", f"sid={SECRET}; Path=/"),
                                                   ("Location", other_server.url("/rec")),
                                                   ("Content-Length", "0")])))
    run_batch(sandbox, [url])
    assert _leaks(other_server, "/rec") == []


def test_cookie_a_response_sets_goes_back_to_its_origin(raw_server: RawServer, sandbox: Sandbox) -> None:
    # The plain GETs hand a response to the cookie jars only when it sets a cookie: this one does.
    setter = raw_server.route("/login", raw(head(200, [("Set-Cookie", "sid=kept; Path=/"),
                                                      ("Content-Length", "2")]) + b"ok"))
    later = raw_server.route("/rec", recorder())
    with DownloadManager(download_dir=sandbox.root, **{**FAST, "max_workers": 1}) as manager:
        manager.add_to_queue([setter])
        manager.queue.join()
        manager.add_to_queue([later])
    [seen] = [request for request in raw_server.requests if request.path == "/rec"]
    assert seen.header("Cookie") == "sid=kept"


def test_cookie_one_origin_set_never_goes_to_another_port(
        raw_server: RawServer, other_server: RawServer, sandbox: Sandbox) -> None:
    other_server.route("/rec", recorder())
    setter = raw_server.route("/login", raw(head(200, [("Set-Cookie", f"sid={SECRET}; Path=/"),
                                                      ("Content-Length", "2")]) + b"ok"))
    later = raw_server.route("/go", redirect(other_server.url("/rec")))
    with DownloadManager(download_dir=sandbox.root, **{**FAST, "max_workers": 1}) as manager:
        manager.add_to_queue([setter])
        manager.queue.join()
        manager.add_to_queue([FileConfig(other_server.url("/rec"), filename="direct"),
                              FileConfig(later, filename="redirected")])
    assert _leaks(other_server, "/rec") == []


# -- redaction ------------------------------------------------------------------------------------


def _all_text(outcome_events: list[object], caplog: pytest.LogCaptureFixture) -> str:
    parts = [repr(event) for event in outcome_events]
    for record in caplog.records:
        parts.append(record.getMessage())
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
    return "\n".join(parts)


def test_credentials_never_in_logs_events_or_errors(
        raw_server: RawServer, sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    raw_server.route("/ok.bin", body(b"ok"))
    raw_server.route("/missing.bin", raw(head(404, [("Content-Length", "0")])))
    raw_server.route("/loop.bin", redirect("/loop.bin"))
    raw_server.route("/file.bin", redirect("file:///etc/passwd"))
    raw_server.route("/short.bin", lying_length("100", b"x"))
    raw_server.route("/503.bin", raw(head(503, [("Retry-After", "1"), ("Content-Length", "0")])))
    headers = {"Authorization": f"Bearer {SECRET}", "Cookie": f"s={SECRET}"}
    items = [FileConfig(raw_server.url(p, userinfo=f"user:{SECRET}"), headers=headers)
             for p in ("/ok.bin", "/missing.bin", "/loop.bin", "/file.bin", "/short.bin", "/503.bin")]
    items.append(FileConfig(f"http://user:{SECRET}@127.0.0.1:1/refused.bin", headers=headers))
    outcome = run_batch(sandbox, items, max_workers=4)
    assert outcome.finished
    text = _all_text(outcome.events.events, caplog)
    errors = [f"{info.error} {info.error_type}" for info in outcome.infos.values()]
    assert sum(info.status.value == "failed" for info in outcome.infos.values()) == 6
    assert SECRET not in text
    assert SECRET_B64 not in text
    assert not [e for e in errors if SECRET in e]


@pytest.mark.parametrize("path", ["/missing.bin", "/loop.bin", "/short.bin"])
def test_raised_errors_carry_no_credentials(raw_server: RawServer, tmp_path: Path, path: str) -> None:
    """What ``DownloadWorker.download`` raises: message, repr, cause and the whole chain."""
    raw_server.route("/missing.bin", raw(head(404, [("Content-Length", "0")])))
    raw_server.route("/loop.bin", redirect("/loop.bin"))
    raw_server.route("/short.bin", lying_length("100", b"x"))
    with DownloadManager(download_dir=tmp_path, **FAST) as manager, pytest.raises(DownloadError) as caught:
        manager.worker.download(raw_server.url(path, userinfo=f"user:{SECRET}"), tmp_path,
                                headers={"Authorization": f"Bearer {SECRET}"})
    error = caught.value
    chain = "".join(traceback.format_exception(error))
    assert SECRET not in f"{error} {error!r} {error.url} {error.cause!r}"
    assert SECRET not in chain


# -- proxies --------------------------------------------------------------------------------------


def test_proxy_credentials_reach_the_proxy_only_and_never_the_logs(
        raw_server: RawServer, sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    raw_server.route("*", body(b"via proxy"))
    proxy = raw_server.url("", userinfo=f"user:{SECRET}")
    target = "http://198.51.100.7/file.bin"  # never contacted: the proxy answers
    outcome = run_batch(sandbox, [target], proxies={"http": proxy})
    outcome.assert_exact(target, b"via proxy")
    assert raw_server.requests[0].target == target
    assert raw_server.requests[0].header("Proxy-Authorization") == f"Basic {SECRET_B64}"
    assert SECRET not in _all_text(outcome.events.events, caplog)


@pytest.mark.parametrize("answer", ["407", "refused"])
def test_failing_proxy_does_not_reveal_its_credentials(
        raw_server: RawServer, sandbox: Sandbox, caplog: pytest.LogCaptureFixture, answer: str) -> None:
    caplog.set_level(logging.DEBUG)
    raw_server.route("*", raw(head(407, [("Proxy-Authenticate", "Basic"), ("Content-Length", "0")])))
    proxy = raw_server.url("", userinfo=f"user:{SECRET}") if answer == "407" else f"http://user:{SECRET}@127.0.0.1:1"
    target = "http://198.51.100.7/file.bin"
    outcome = run_batch(sandbox, [target], proxies={"http": proxy})
    info = outcome.assert_clean_failure(target)
    assert SECRET not in (info.error or "")
    assert SECRET not in _all_text(outcome.events.events, caplog)
