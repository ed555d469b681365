"""The manager's own Session prepares plain GETs itself: the request that goes out, and the
settings it is sent with, must be exactly what ``requests.Session.request`` would make.

A recording adapter stands in for the network: it keeps each PreparedRequest and the
keyword arguments ``Session.send`` passes on.
"""

from __future__ import annotations

import base64
import http.cookiejar
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
import requests.cookies
from requests.adapters import BaseAdapter
from requests.auth import AuthBase, HTTPDigestAuth

from pydownloads.domain.retry import RetryConfig
from pydownloads.infrastructure.http import RetryHooks, build_session
from pydownloads.infrastructure.http_settings import SessionSettings

URL = "http://files.example:8080/dir/a.bin"
#: Basic credentials go out before a challenge over HTTPS only (over HTTP the 401 decides).
HTTPS_URL = "https://files.example:8443/dir/a.bin"


class _Recorder(BaseAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[requests.PreparedRequest, dict[str, Any]]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append((request, kwargs))
        response = requests.Response()
        response.status_code = 200
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def _session() -> tuple[requests.Session, _Recorder]:
    config = RetryConfig()
    session = build_session(pool_size=4, config=config, hooks=RetryHooks(config, threading.Event()))
    recorder = _Recorder()
    session.mount("http://", recorder)
    session.mount("https://", recorder)
    return session, recorder


def _what_goes_out(request: requests.PreparedRequest, kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": request.method, "url": request.url, "headers": dict(request.headers), "body": request.body,
        "hooks": {event: len(hooks) for event, hooks in request.hooks.items()},
        "kwargs": {key: dict(value) if isinstance(value, dict) else value for key, value in kwargs.items()},
    }


def _both_ways(session: requests.Session, recorder: _Recorder, url: str = URL,
               headers: dict[str, Any] | None = None, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what our session sends for send_get's call, what requests' own Session.request sends)."""
    options: dict[str, Any] = {"headers": headers if headers is not None else {"Accept-Encoding": "identity"},
                               "timeout": (3, 7), "stream": True, "allow_redirects": True, **extra}
    session.get(url, **options)
    requests.Session.request(session, "GET", url, params=None, **options)
    (ours, ours_kwargs), (theirs, theirs_kwargs) = recorder.sent[-2:]
    return _what_goes_out(ours, ours_kwargs), _what_goes_out(theirs, theirs_kwargs)


def test_a_plain_get_does_not_go_through_session_request(monkeypatch: pytest.MonkeyPatch) -> None:
    session, recorder = _session()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the generic path was taken")

    monkeypatch.setattr(requests.Session, "prepare_request", refuse)
    monkeypatch.setattr(requests.Session, "merge_environment_settings", refuse)
    session.get(URL, headers={"Range": "bytes=0-"}, timeout=5, stream=True, allow_redirects=True)
    request, kwargs = recorder.sent[-1]
    assert request.headers["Range"] == "bytes=0-"
    assert kwargs["stream"] is True and kwargs["timeout"] == 5


def test_defaults_are_what_requests_sends() -> None:
    session, recorder = _session()
    ours, theirs = _both_ways(session, recorder)
    assert ours == theirs
    assert ours["headers"]["User-Agent"].startswith("pydownloads/")


def test_request_headers_override_session_headers_whatever_their_case_and_none_removes() -> None:
    session, recorder = _session()
    session.headers.update({"X-Team": "a", "X-Gone": "b", "Accept": "*/*"})
    headers = {"user-agent": "mine/1", "X-Gone": None, "Range": "bytes=5-", "Accept-Encoding": "identity"}
    ours, theirs = _both_ways(session, recorder, headers=headers)
    assert ours == theirs
    assert ours["headers"]["user-agent"] == "mine/1" and "X-Gone" not in ours["headers"]


@pytest.mark.parametrize("auth", [("user", "pass"), HTTPDigestAuth("user", "pass")], ids=["basic", "digest"])
def test_session_auth_is_applied_as_requests_applies_it(auth: Any) -> None:
    session, recorder = _session()
    session.auth = auth
    ours, theirs = _both_ways(session, recorder)
    assert ours == theirs  # an AuthBase as given: HTTPDigestAuth's response hooks are registered
    if isinstance(auth, tuple):  # over HTTP: no credentials before the challenge, which a hook answers
        assert "Authorization" not in ours["headers"] and ours["hooks"]["response"] == 1
        ours, theirs = _both_ways(session, recorder, url=HTTPS_URL)
        assert ours == theirs and ours["headers"]["Authorization"].startswith("Basic ")
    else:
        assert ours["hooks"]["response"] == 2


def test_credentials_in_the_url_are_used_when_the_session_has_no_auth() -> None:
    session, recorder = _session()
    ours, theirs = _both_ways(session, recorder, url="http://joe:secret@files.example/a.bin")
    assert ours == theirs
    assert ours["headers"]["Authorization"].startswith("Basic ")


def test_an_auth_callable_sees_the_prepared_request() -> None:
    class Stamp(AuthBase):
        def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
            request.headers["X-Stamp"] = f"{request.method} {request.url}"
            return request

    session, recorder = _session()
    session.auth = Stamp()
    ours, theirs = _both_ways(session, recorder)
    assert ours == theirs
    assert ours["headers"]["X-Stamp"] == f"GET {URL}"


def test_cookies_of_the_jar_go_where_they_belong_only() -> None:
    session, recorder = _session()
    for name, domain, port in (("here", "files.example", "8080"), ("other_port", "files.example", "9090"),
                               ("elsewhere", "other.example", None)):
        session.cookies.set_cookie(http.cookiejar.Cookie(
            0, name, "v", port, port is not None, domain, False, False, "/", False, False, None, False, None, None, {}))
    ours, theirs = _both_ways(session, recorder)
    assert ours == theirs
    assert ours["headers"]["Cookie"] == "here=v"
    ours, theirs = _both_ways(session, recorder, headers={"Cookie": "given=1"})
    assert ours == theirs
    assert ours["headers"]["Cookie"] == "given=1"


def test_the_session_jar_is_not_changed_by_preparing() -> None:
    session, _ = _session()
    session.cookies.set("kept", "1", domain="files.example", path="/")
    session.get(URL, headers={}, timeout=3, stream=True, allow_redirects=True)
    assert [(c.name, c.value) for c in session.cookies] == [("kept", "1")]


def test_proxies_verify_and_cert_of_the_session_are_passed_on() -> None:
    session, recorder = _session()
    session.proxies.update({"http": "http://proxy.example:3128", "https": None})  # type: ignore[dict-item]
    session.verify = "/etc/ssl/bundle.pem"
    session.cert = ("/c.pem", "/k.pem")
    ours, theirs = _both_ways(session, recorder)
    assert ours == theirs
    assert ours["kwargs"]["proxies"] == {"http": "http://proxy.example:3128"}


def test_with_trust_env_the_environment_is_read_as_requests_reads_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine files.example login envuser password envpass\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", "http://envproxy.example:8000")
    monkeypatch.setenv("NO_PROXY", "skipped.example")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/bundle.pem")
    session, recorder = _session()
    session.trust_env = True
    ours, theirs = _both_ways(session, recorder)
    assert ours == theirs
    assert "Authorization" not in ours["headers"] and ours["hooks"]["response"] == 1  # .netrc's, for the 401
    assert _both_ways(session, recorder, url=HTTPS_URL)[0]["headers"]["Authorization"].startswith("Basic ")
    assert ours["kwargs"]["proxies"]["http"] == "http://envproxy.example:8000"
    assert ours["kwargs"]["verify"] == "/env/bundle.pem"
    ours, theirs = _both_ways(session, recorder, url="http://skipped.example/a.bin")
    assert ours == theirs
    assert "http" not in ours["kwargs"]["proxies"]


def test_without_trust_env_the_environment_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://envproxy.example:8000")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/bundle.pem")
    session, recorder = _session()
    session.trust_env = False
    ours, theirs = _both_ways(session, recorder)
    assert ours == theirs
    assert ours["kwargs"]["proxies"] == {} and ours["kwargs"]["verify"] is True


@pytest.mark.parametrize("change", ["hooks", "params", "post", "extra"])
def test_anything_unusual_takes_requests_own_path(change: str) -> None:
    session, recorder = _session()
    seen: list[int] = []
    if change == "hooks":
        session.hooks["response"].append(lambda response, **kwargs: seen.append(response.status_code))
    elif change == "params":
        session.params = {"token": "t"}
    if change == "post":
        session.request("POST", URL, data=b"x", timeout=3)
        requests.Session.request(session, "POST", URL, data=b"x", timeout=3)
        (ours, ours_kwargs), (theirs, theirs_kwargs) = recorder.sent[-2:]
        assert _what_goes_out(ours, ours_kwargs) == _what_goes_out(theirs, theirs_kwargs)
        return
    extra = {"verify": False} if change == "extra" else {}
    ours, theirs = _both_ways(session, recorder, **extra)
    assert ours == theirs
    if change == "hooks":
        assert seen == [200, 200]
    if change == "params":
        assert ours["url"].endswith("?token=t")


def test_with_trust_env_the_environment_is_read_once_per_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://first.example:8000")
    session, recorder = _session()
    session.trust_env = True
    session.get(URL, stream=True)
    monkeypatch.setenv("HTTP_PROXY", "http://second.example:8000")
    session.get(URL, stream=True)  # the same origin: what was read for it holds
    session.get("http://other.example/a.bin", stream=True)  # a new origin reads the environment now
    assert [kwargs["proxies"].get("http") for _, kwargs in recorder.sent] == [
        "http://first.example:8000", "http://first.example:8000", "http://second.example:8000"]


# -- explicit settings beat the environment ------------------------------------------------------


def _session_with(settings: SessionSettings) -> tuple[requests.Session, _Recorder]:
    config = RetryConfig()
    session = build_session(pool_size=4, config=config, hooks=None, settings=settings)
    recorder = _Recorder()
    session.mount("http://", recorder)
    session.mount("https://", recorder)
    return session, recorder


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _netrc(path: Path, host: str, login: str) -> Path:
    path.write_text(f"machine {host} login {login} password {login}-pass\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def _sent_both_ways(session: requests.Session, recorder: _Recorder,
                    url: str = URL) -> list[tuple[requests.PreparedRequest, Any]]:
    """What our plain GET sends, then what requests' own path (taken for a GET with params) sends."""
    session.get(url, headers={}, timeout=3, stream=True, allow_redirects=True)
    session.get(url, params={"p": "1"}, headers={}, timeout=3, stream=True, allow_redirects=True)
    return recorder.sent[-2:]


@pytest.mark.parametrize("verify", ["/explicit/bundle.pem", False], ids=["bundle", "insecure"])
def test_an_explicit_verify_wins_over_the_environment_bundle(monkeypatch: pytest.MonkeyPatch, verify: Any) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/bundle.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/env/curl.pem")
    session, recorder = _session_with(SessionSettings(trust_env=True, verify=verify))
    assert [kwargs["verify"] for _, kwargs in _sent_both_ways(session, recorder)] == [verify, verify]


def test_no_netrc_reads_none_even_trusting_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NETRC", str(_netrc(tmp_path / "env.netrc", "files.example", "envuser")))
    session, recorder = _session_with(SessionSettings(trust_env=True, netrc=False))
    for request, _ in _sent_both_ways(session, recorder):
        assert "Authorization" not in request.headers


@pytest.mark.parametrize("trust_env", [True, False])
def test_a_netrc_file_of_the_settings_is_read_instead_of_the_environment_one(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trust_env: bool) -> None:
    monkeypatch.setenv("NETRC", str(_netrc(tmp_path / "env.netrc", "files.example", "envuser")))
    chosen = _netrc(tmp_path / "chosen.netrc", "files.example", "fileuser")
    session, recorder = _session_with(SessionSettings(trust_env=trust_env, netrc=chosen))
    expected = _basic("fileuser", "fileuser-pass")
    for request, _ in _sent_both_ways(session, recorder, url=HTTPS_URL):
        assert request.headers["Authorization"] == expected


def test_by_default_the_environment_is_read_and_explicit_settings_win_over_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NETRC", str(_netrc(tmp_path / "env.netrc", "files.example", "envuser")))
    monkeypatch.setenv("HTTP_PROXY", "http://envproxy.example:8000")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/bundle.pem")
    session, recorder = _session_with(SessionSettings())
    for request, kwargs in _sent_both_ways(session, recorder, HTTPS_URL):
        assert request.headers["Authorization"] == _basic("envuser", "envuser-pass")
        assert kwargs["proxies"]["http"] == "http://envproxy.example:8000" and kwargs["verify"] == "/env/bundle.pem"
    chosen = _netrc(tmp_path / "chosen.netrc", "files.example", "fileuser")
    session, recorder = _session_with(SessionSettings(
        proxies={"http": "http://explicit.example:3128"}, verify="/explicit/bundle.pem", netrc=chosen))
    for request, kwargs in _sent_both_ways(session, recorder, HTTPS_URL):
        assert request.headers["Authorization"] == _basic("fileuser", "fileuser-pass")
        assert kwargs["proxies"]["http"] == "http://explicit.example:3128"
        assert kwargs["verify"] == "/explicit/bundle.pem"


class _Redirecting(_Recorder):
    """Answers the first URL with a redirect to another host."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = super().send(request, **kwargs)
        if request.url == URL:
            response.status_code = 302
            response.headers["Location"] = "https://other.example/b.bin"
        return response


@pytest.mark.parametrize("choice", ["file", "off"])
def test_after_a_redirect_the_netrc_choice_holds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 choice: str) -> None:
    monkeypatch.setenv("NETRC", str(_netrc(tmp_path / "env.netrc", "other.example", "envuser")))
    netrc: Any = _netrc(tmp_path / "chosen.netrc", "other.example", "fileuser") if choice == "file" else False
    session = build_session(pool_size=4, config=RetryConfig(), hooks=None,
                            settings=SessionSettings(trust_env=True, netrc=netrc))
    recorder = _Redirecting()
    session.mount("http://", recorder)
    session.mount("https://", recorder)
    session.get(URL, headers={}, timeout=3, stream=True, allow_redirects=True)
    [(first, _), (moved, _)] = recorder.sent
    assert "Authorization" not in first.headers and moved.url == "https://other.example/b.bin"
    if choice == "file":
        assert moved.headers["Authorization"] == _basic("fileuser", "fileuser-pass")
    else:
        assert "Authorization" not in moved.headers


def test_session_settings_are_applied_to_the_session() -> None:
    jar = requests.cookies.RequestsCookieJar()
    jar.set("k", "v", domain="files.example", path="/")
    settings = SessionSettings(headers={"X-Team": "a"}, proxies={"http": "http://proxy.example:3128"},
                               trust_env=True, auth=("u", "s3cret"), cookies=jar, verify="/bundle.pem")
    session, _ = _session_with(settings)
    assert session.headers["X-Team"] == "a" and session.proxies == {"http": "http://proxy.example:3128"}
    assert session.trust_env is True and session.auth == ("u", "s3cret") and session.verify == "/bundle.pem"
    assert [(c.name, c.value) for c in session.cookies] == [("k", "v")]
    assert "s3cret" not in repr(settings) and "proxy.example" not in repr(settings)  # credentials stay out of logs
