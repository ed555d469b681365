"""Safe schemes: only http and https, also after redirects; TLS verified by default; and no
credential follows a redirect that leaves https."""

from __future__ import annotations

import base64

import pytest
import requests

from pydownloads import DownloadManager
from pydownloads.domain import FileConfig
from pydownloads.domain.errors import InvalidArgumentError
from tests.adversarial.conftest import FAST, Certificate, Sandbox, final_only, run_batch
from tests.adversarial.rawserver import RawServer, body, recorder, redirect

SECRET = "s3cr3t-Tls"
DATA = b"over tls " * 100


@pytest.mark.parametrize("url", ["file:///etc/passwd", "FILE:///etc/passwd", "ftp://127.0.0.1/x",
                                 "gopher://127.0.0.1/x", "data:text/plain,hi", "javascript:alert(1)",
                                 "ws://127.0.0.1/x", "unix:///run/x.sock", "//127.0.0.1/x", "/etc/passwd",
                                 "http:/etc/passwd", "http:///etc/passwd"])
def test_caller_urls_other_than_http_and_https_are_refused(url: str) -> None:
    with pytest.raises(InvalidArgumentError):
        FileConfig(url)


@pytest.mark.parametrize("location", ["file:///etc/passwd", "FILE:///etc/passwd", "ftp://127.0.0.1/x",
                                      "gopher://127.0.0.1:70/x", "data:text/plain,hi", "javascript:alert(1)",
                                      "ws://127.0.0.1/x", "jar:file:///x!/y", "netdoc:///etc/passwd"])
def test_redirect_to_another_scheme_fails_without_retry(
        raw_server: RawServer, sandbox: Sandbox, location: str) -> None:
    url = raw_server.route("/f.bin", redirect(location))
    outcome = run_batch(sandbox, [url])
    outcome.assert_clean_failure(url, "RedirectError")
    assert raw_server.count("/f.bin") == 1
    assert final_only(sandbox) == []


def _unusable(location: str, with_auth: bool) -> object:
    return pytest.param(location, with_auth)


@pytest.mark.parametrize(("location", "with_auth"), [
    _unusable(location, with_auth)
    for location in ("http://127.0.0.1:99999/x", "http://127.0.0.1:abc/x", "http://[::1/x", "http://a..b/x",
                     "http://" + "a" * 300 + "/x", "https://")
    for with_auth in (False, True)
])
def test_unusable_redirect_target_fails_with_a_clear_error(
        raw_server: RawServer, sandbox: Sandbox, location: str, with_auth: bool) -> None:
    url = raw_server.route("/f.bin", redirect(location))
    headers = {"Authorization": "Bearer not-for-them"} if with_auth else {}
    outcome = run_batch(sandbox, [FileConfig(url, headers=headers)])
    assert outcome.finished
    outcome.assert_clean_failure(url, "RedirectError", "TransferError")


# -- TLS --------------------------------------------------------------------------------------------


def test_self_signed_certificate_is_refused_by_default(tls_server: RawServer, sandbox: Sandbox) -> None:
    url = tls_server.route("/f.bin", body(DATA))
    outcome = run_batch(sandbox, [url])
    info = outcome.assert_clean_failure(url, "TLSError")
    assert info.attempts == 1  # a certificate that does not verify is not worth retrying
    assert tls_server.requests == []  # no request was sent over the unverified channel


def test_redirect_from_http_to_unverified_https_is_refused(
        raw_server: RawServer, tls_server: RawServer, sandbox: Sandbox) -> None:
    tls_server.route("/f.bin", body(DATA))
    url = raw_server.route("/start", redirect(tls_server.url("/f.bin")))
    outcome = run_batch(sandbox, [FileConfig(url, headers={"Authorization": f"Bearer {SECRET}"})])
    outcome.assert_clean_failure(url, "TLSError")
    assert tls_server.requests == []


def test_trusted_certificate_works(tls_server: RawServer, sandbox: Sandbox, certificate: Certificate) -> None:
    """Control: the same server is fine once its certificate is trusted."""
    url = tls_server.route("/f.bin", body(DATA))
    with requests.Session() as session:
        session.verify = str(certificate.cert)
        session.trust_env = False  # else requests lets REQUESTS_CA_BUNDLE override session.verify
        outcome = run_batch(sandbox, [url], session=session)
    outcome.assert_exact(url, DATA)


@pytest.mark.parametrize("kind", ["file-headers", "userinfo"])
def test_credentials_do_not_follow_a_downgrade_to_http(
        tls_server: RawServer, raw_server: RawServer, sandbox: Sandbox, certificate: Certificate, kind: str) -> None:
    raw_server.route("/rec", recorder())
    url = tls_server.route("/start", redirect(raw_server.url("/rec")))
    headers = {"Authorization": f"Bearer {SECRET}", "Cookie": f"s={SECRET}"}
    item = FileConfig(url, headers=headers) if kind == "file-headers" else url.replace(
        "https://", f"https://user:{SECRET}@")
    with requests.Session() as session:
        session.verify = str(certificate.cert)
        session.trust_env = False  # else requests lets REQUESTS_CA_BUNDLE override session.verify
        run_batch(sandbox, [item], session=session)
    assert [r.path for r in tls_server.requests] == ["/start"]
    assert tls_server.requests[0].has("Authorization")  # control: sent where it belongs
    seen = [(k, v) for r in raw_server.requests for k, v in r.headers]
    assert all(SECRET not in v and k.lower() not in ("authorization", "cookie") for k, v in seen), seen


def test_proxy_credentials_do_not_go_to_a_host_reached_directly(
        raw_server: RawServer, tls_server: RawServer, sandbox: Sandbox, certificate: Certificate,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An http proxy (with credentials) answers a redirect to https, which no proxy serves: the
    direct https request must not carry Proxy-Authorization."""
    tls_server.route("/rec", recorder())
    raw_server.route("*", redirect(tls_server.url("/rec")))
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                 "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", raw_server.url("", userinfo=f"user:{SECRET}"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate.cert))
    target = "http://198.51.100.7/file.bin"  # only the proxy is ever contacted for it
    outcome = run_batch(sandbox, [target], trust_env=True)
    outcome.assert_exact(target, b"recorded")
    expected = "Basic " + base64.b64encode(f"user:{SECRET}".encode()).decode()
    assert raw_server.requests[0].header("Proxy-Authorization") == expected
    assert [r.path for r in tls_server.requests] == ["/rec"]
    assert not tls_server.requests[0].has("Proxy-Authorization")


def test_manager_verifies_tls_by_default(sandbox: Sandbox) -> None:
    with DownloadManager(download_dir=sandbox.root, **FAST) as manager:
        session = manager._session  # the Session the manager built
        assert session.verify is True
        assert session.trust_env is True  # as a requests Session: the environment is read
