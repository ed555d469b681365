"""Credentials answer the server's challenge, as wget and curl users expect: Digest or Basic
from the 401, Basic unasked only over HTTPS or with auth_no_challenge, against real servers
(a Digest one, a challenge-only Basic one, and one over TLS)."""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pydownloads import DownloadManager, DownloadStatus, RetryConfig
from pydownloads.localserver import AuthRequired, LocalServer, ResetAfter, Slow
from tests.integration.clirun import run_cli
from tests.integration.helpers import payload

SECRET = "s3cr3t-pw"
BODY = b"members only " * 100
RETRY = RetryConfig(max_retries=3, base_delay=0.01, max_delay=0.05)
DIGEST = AuthRequired("alice", SECRET)
BASIC = AuthRequired("alice", SECRET, schemes=("Basic",))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = run_cli(*args, "--no-state", cwd=cwd, HOME=str(cwd),
                                                       NETRC=str(cwd / "no-netrc-here"))
    assert SECRET not in result.stdout + result.stderr
    return result


def seen(server: LocalServer, path: str) -> list[tuple[int | None, str]]:
    """(status, the scheme of the Authorization sent or "") of each request for ``path``."""
    server.wait_idle()
    return [(r.status, (r.headers.get("Authorization") or "").partition(" ")[0])
            for r in server.requests if r.path == path]


def download(tmp_path: Path, urls: list[str], **options: object) -> DownloadManager:
    with DownloadManager(tmp_path, retry_config=RETRY, **options) as m:  # type: ignore[arg-type]
        m.add_to_queue(urls)
        m.queue.join()
    return m


def test_digest_with_user_and_password_through_the_library(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/d.bin", BODY, auth=DIGEST)
    m = download(tmp_path, [url], auth=("alice", SECRET))
    assert m.tracker.get_stats().completed == 1 and (tmp_path / "d.bin").read_bytes() == BODY
    assert seen(local_server, "/d.bin") == [(401, ""), (200, "Digest")]
    first, second = local_server.requests
    assert first.client_port == second.client_port  # the 401's connection is reused


def test_digest_with_a_netrc_through_the_library(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/d.bin", BODY, auth=AuthRequired("alice", SECRET, algorithm="SHA-256"))
    netrc = tmp_path / "creds.netrc"
    netrc.write_text(f"machine 127.0.0.1 login alice password {SECRET}\n", encoding="utf-8")
    m = download(tmp_path / "out", [url], netrc=netrc)
    assert m.tracker.get_stats().completed == 1 and (tmp_path / "out" / "d.bin").read_bytes() == BODY
    assert seen(local_server, "/d.bin") == [(401, ""), (200, "Digest")]


def test_digest_through_the_command_with_user_and_with_a_netrc(local_server: LocalServer, tmp_path: Path) -> None:
    one = local_server.add_file("/one.bin", BODY, auth=DIGEST)
    two = local_server.add_file("/two.bin", BODY, auth=DIGEST)
    with_user = cli(one, "--user", f"alice:{SECRET}", "-d", "user", cwd=tmp_path)
    assert with_user.returncode == 0, with_user.stderr
    netrc = tmp_path / "creds.netrc"
    netrc.write_text(f"machine 127.0.0.1 login alice password {SECRET}\n", encoding="utf-8")
    with_netrc = cli(two, "--netrc-file", str(netrc), "-d", "netrc", cwd=tmp_path)
    assert with_netrc.returncode == 0, with_netrc.stderr
    assert (tmp_path / "user" / "one.bin").read_bytes() == BODY == (tmp_path / "netrc" / "two.bin").read_bytes()
    assert seen(local_server, "/one.bin") == seen(local_server, "/two.bin") == [(401, ""), (200, "Digest")]


def test_basic_over_plain_http_waits_for_the_challenge(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/b.bin", BODY, auth=BASIC)
    m = download(tmp_path, [url], auth=("alice", SECRET))
    assert m.tracker.get_stats().completed == 1
    assert seen(local_server, "/b.bin") == [(401, ""), (200, "Basic")]
    assert local_server.requests[1].headers["Authorization"] == basic("alice", SECRET)
    by_command = cli(url, "--user", f"alice:{SECRET}", "-d", "cmd", cwd=tmp_path)
    assert by_command.returncode == 0, by_command.stderr
    assert seen(local_server, "/b.bin")[2:] == [(401, ""), (200, "Basic")]


def test_auth_no_challenge_sends_basic_at_once(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/b.bin", BODY, auth=BASIC)
    m = download(tmp_path, [url], auth=("alice", SECRET), auth_no_challenge=True)
    assert m.tracker.get_stats().completed == 1
    by_command = cli(url, "--user", f"alice:{SECRET}", "--auth-no-challenge", "-d", "cmd", cwd=tmp_path)
    assert by_command.returncode == 0, by_command.stderr
    assert seen(local_server, "/b.bin") == [(200, "Basic"), (200, "Basic")]


def test_prefers_digest_when_both_are_offered(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/both.bin", BODY, auth=AuthRequired("alice", SECRET, schemes=("Basic", "Digest")))
    m = download(tmp_path, [url], auth=("alice", SECRET))
    assert m.tracker.get_stats().completed == 1
    assert seen(local_server, "/both.bin") == [(401, ""), (200, "Digest")]


def test_a_401_says_which_schemes_the_server_offers(local_server: LocalServer, tmp_path: Path) -> None:
    offers = AuthRequired("alice", SECRET, schemes=("Digest", "Negotiate"))
    wrong = local_server.add_file("/wrong.bin", BODY, auth=offers)
    none = local_server.add_file("/none.bin", BODY, auth=offers)
    with DownloadManager(tmp_path, retry_config=RETRY, auth=("alice", "not-it")) as m:
        m.add_to_queue([wrong])
        m.queue.join()
    failed = m.tracker.get_download(wrong)
    assert failed is not None and failed.status is DownloadStatus.FAILED
    assert failed.error_type == "HTTPStatusError"
    assert failed.error == f"HTTP 401 Unauthorized from {wrong} (the server offers: Digest, Negotiate)"
    assert seen(local_server, "/wrong.bin") == [(401, ""), (401, "Digest")]  # asked once, answered once
    by_command = cli(none, "--retries", "0", cwd=tmp_path)
    assert by_command.returncode == 1 and "(the server offers: Digest, Negotiate)" in by_command.stderr


def test_resume_and_segment_lanes_work_with_digest(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(4 << 20, 7)
    url = local_server.add_file("/big.bin", body, auth=DIGEST, rate=6 << 20)  # per connection
    local_server.add_faults("/big.bin", Slow(1 << 30), ResetAfter(300_000))  # the 401, then a broken body
    m = download(tmp_path, [url], auth=("alice", SECRET), max_segments=4, min_segment_size=512 << 10)
    assert m.tracker.get_stats().completed == 1 and (tmp_path / "big.bin").read_bytes() == body
    local_server.wait_idle()
    records = [r for r in local_server.requests if r.path == "/big.bin"]
    ranged = [r for r in records if r.range and r.status == 206]
    assert len(ranged) >= 3  # the resumed range, and lanes
    assert all((r.headers.get("Authorization") or "").startswith("Digest ") for r in ranged)
    # Every request carried a nonce count of its own (the server refuses one seen before).
    assert [r.status for r in records].count(401) == 1


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[LocalServer, Path]]:
    """The test server over HTTPS with a self-signed certificate, and that certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True, text=True, timeout=30, check=False)
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr.strip()[:200]}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with LocalServer(tls=context) as server:
        yield server, cert


def test_over_https_basic_goes_at_once(tls_server: tuple[LocalServer, Path], tmp_path: Path) -> None:
    server, cert = tls_server
    url = server.add_file("/b.bin", BODY, auth=BASIC)
    m = download(tmp_path, [url], auth=("alice", SECRET), verify=str(cert))
    assert m.tracker.get_stats().completed == 1 and (tmp_path / "b.bin").read_bytes() == BODY
    assert seen(server, "/b.bin") == [(200, "Basic")]


def test_a_redirect_within_the_origin_keeps_the_credentials(local_server: LocalServer, tmp_path: Path) -> None:
    local_server.add_file("/d.bin", BODY, auth=DIGEST)
    first = local_server.add_file("/first.bin", BODY, auth=DIGEST)
    moving = local_server.add_redirect("/moving.bin", "/d.bin")
    m = download(tmp_path, [first, moving], auth=("alice", SECRET), max_workers=1)  # in this order
    assert m.tracker.get_stats().completed == 2 and (tmp_path / "moving.bin").read_bytes() == BODY
    # Once the origin has answered, a redirect within it goes on with a Digest of its own URL.
    assert seen(local_server, "/d.bin") == [(200, "Digest")]
