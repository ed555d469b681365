"""The command's credentials, cookies and TLS options, through a real subprocess.

Credentials go to their origin only and never into the output; cookies go where their domain
says (per host, not per port: RFC 6265), so the "other origin" of the cookie test is another
host name (``localhost``) for the same loopback address.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import select
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pydownloads.localserver import AuthRequired, LocalServer
from tests.integration.clirun import cli_command, cli_env, run_cli

SECRET = "pa55-w0rd"
BODY = b"members only " * 100


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def cli(*args: str, cwd: Path, **env: str):  # type: ignore[no-untyped-def]
    """The command with a home of its own (no ~/.netrc of whoever runs the tests) and no $NETRC."""
    return run_cli(*args, cwd=cwd, HOME=str(cwd), **{"NETRC": str(cwd / "no-netrc-here"), **env})


def challenge(user: str, password: str) -> AuthRequired:
    """A file behind Basic: over plain HTTP the credentials go once the server asks."""
    return AuthRequired(user, password, schemes=("Basic",))


def sent(server: LocalServer, path: str) -> list[tuple[int | None, str | None]]:
    """(status, Authorization) of each request for ``path``."""
    server.wait_idle()
    return [(r.status, r.headers.get("Authorization")) for r in server.requests if r.path == path]


def assert_no_secret(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.stdout and secret not in result.stderr, secret


# -- --user -----------------------------------------------------------------------------------


def test_user_goes_to_the_origin_and_not_to_another_port_after_a_redirect(
    local_server: LocalServer, other_server: LocalServer, tmp_path: Path
) -> None:
    own = local_server.add_file("/own.bin", BODY, auth=challenge("alice", SECRET))
    other_server.add_file("/moved.bin", b"moved")
    moving = local_server.add_redirect("/moving.bin", other_server.url("/moved.bin"))
    result = cli(own, moving, "--user", f"alice:{SECRET}", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "own.bin").read_bytes() == BODY and (tmp_path / "moving.bin").read_bytes() == b"moved"
    assert sent(local_server, "/own.bin") == [(401, None), (200, basic("alice", SECRET))]
    [moved] = other_server.requests
    assert "Authorization" not in moved.headers
    assert_no_secret(result, SECRET)


def test_credentials_never_reach_the_output(local_server: LocalServer, tmp_path: Path) -> None:
    in_url = local_server.url("/missing.bin").replace("http://", "http://carol:url-s3cret@")
    failed = cli(in_url, "--user", f"alice:{SECRET}", "--retries", "0", cwd=tmp_path)
    assert failed.returncode == 1 and "FAILED http://***@127.0.0.1:" in failed.stderr
    as_json = cli(in_url, "--user", f"alice:{SECRET}", "--retries", "0", "--json", cwd=tmp_path)
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["url"].startswith("http://***@127.0.0.1:")
    (tmp_path / "twice.txt").write_text(f"{in_url}\n{in_url}\n", encoding="utf-8")
    listed_twice = cli("-i", "twice.txt", cwd=tmp_path)
    assert listed_twice.returncode == 2 and "twice.txt:2: http://***@127.0.0.1:" in listed_twice.stderr
    bad_scheme = cli("ftp://dave:ftp-s3cret@127.0.0.1/x", cwd=tmp_path)
    assert bad_scheme.returncode == 2 and "ftp://***@127.0.0.1/x" in bad_scheme.stderr
    for result in (failed, as_json, listed_twice, bad_scheme):
        assert_no_secret(result, SECRET, "url-s3cret", "ftp-s3cret")


def test_user_without_a_password_and_no_terminal_is_a_usage_error(
    local_server: LocalServer, tmp_path: Path
) -> None:
    url = local_server.add_file("/own.bin", BODY)
    result = cli(url, "--user", "alice", cwd=tmp_path)  # standard input is a pipe here
    assert result.returncode == 2
    assert "--user alice: no password given and standard input is not a terminal" in result.stderr
    empty = cli(url, "--user", ":x", cwd=tmp_path)
    assert empty.returncode == 2 and "--user needs a user name" in empty.stderr
    assert local_server.requests == []


def test_user_without_a_password_asks_for_it_on_a_terminal(local_server: LocalServer, tmp_path: Path) -> None:
    pty = pytest.importorskip("pty")
    url = local_server.add_file("/own.bin", BODY, auth=challenge("zed", SECRET))
    terminal, its_end = pty.openpty()  # the command's standard input, output and error
    process = subprocess.Popen(
        cli_command(url, "--user", "zed", "--no-state"), cwd=tmp_path, stdin=its_end, stdout=its_end,
        stderr=its_end, env=cli_env(HOME=str(tmp_path), NETRC=str(tmp_path / "no-netrc-here")))
    os.close(its_end)
    seen, answered = b"", False
    deadline = time.monotonic() + 20
    try:
        while (left := deadline - time.monotonic()) > 0 and select.select([terminal], [], [], left)[0]:
            try:
                chunk = os.read(terminal, 1024)
            except OSError:  # the command ended: the terminal is gone
                break
            if not chunk:
                break
            seen += chunk
            if not answered and b"Password for zed: " in seen:
                os.write(terminal, SECRET.encode() + b"\n")
                answered = True
        assert process.wait(timeout=max(0.1, deadline - time.monotonic())) == 0, seen
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        os.close(terminal)
    assert answered and SECRET.encode() not in seen  # asked for, and not echoed
    assert sent(local_server, "/own.bin") == [(401, None), (200, basic("zed", SECRET))]


# -- .netrc -----------------------------------------------------------------------------------


def test_netrc_file_and_no_netrc(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/own.bin", BODY, auth=challenge("bob", SECRET))
    netrc = tmp_path / "creds.netrc"
    netrc.write_text(f"machine 127.0.0.1\n  login bob\n  password {SECRET}\n", encoding="utf-8")
    given = cli(url, "--netrc-file", str(netrc), "--no-state", cwd=tmp_path)
    assert given.returncode == 0, given.stderr
    from_env = cli(url, "--no-state", cwd=tmp_path, NETRC=str(netrc))  # as curl and wget: $NETRC, ~/.netrc
    assert from_env.returncode == 0, from_env.stderr
    refused = cli(url, "--no-state", "--no-netrc", "--retries", "0", cwd=tmp_path, NETRC=str(netrc))
    assert refused.returncode == 1  # no credentials to answer the server with
    assert sent(local_server, "/own.bin") == [(401, None), (200, basic("bob", SECRET))] * 2 + [(401, None)]
    carols = local_server.add_file("/carol.bin", BODY, auth=challenge("carol", "other"))
    explicit = cli(carols, "--no-state", "--netrc-file", str(netrc), "--user", "carol:other", cwd=tmp_path)
    assert explicit.returncode == 0  # --user wins over the .netrc
    assert sent(local_server, "/carol.bin") == [(401, None), (200, basic("carol", "other"))]
    for result in (given, from_env, refused, explicit):
        assert_no_secret(result, SECRET)


def test_an_unusable_netrc_file_is_a_usage_error_that_quotes_nothing(
    local_server: LocalServer, tmp_path: Path
) -> None:
    url = local_server.add_file("/own.bin", BODY)
    (tmp_path / "bad.netrc").write_text(f"machine 127.0.0.1 login bob password {SECRET} bogus\n", encoding="utf-8")
    bad = cli(url, "--netrc-file", "bad.netrc", cwd=tmp_path)
    assert bad.returncode == 2 and "--netrc-file bad.netrc: line " in bad.stderr and "not in .netrc form" in bad.stderr
    missing = cli(url, "--netrc-file", "nowhere.netrc", cwd=tmp_path)
    assert missing.returncode == 2 and "--netrc-file nowhere.netrc: cannot read it" in missing.stderr
    assert_no_secret(bad, SECRET, "bogus")
    assert local_server.requests == []


# -- --cookies --------------------------------------------------------------------------------


def test_cookie_file_is_honoured_and_stays_with_its_host(
    local_server: LocalServer, other_server: LocalServer, tmp_path: Path
) -> None:
    own = local_server.add_file("/own.bin", BODY)
    other_server.add_file("/moved.bin", b"moved")
    moving = local_server.add_redirect("/moving.bin", other_server.url("/moved.bin").replace("127.0.0.1", "localhost"))
    (tmp_path / "cookies.txt").write_text(
        "# Netscape HTTP Cookie File\n"
        "# written by curl -c: a session cookie has expiry 0\n"
        "127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tc00kie-s3cret\n"
        "#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t4102444800\tlasting\tyes\n"
        "127.0.0.1\tFALSE\t/\tFALSE\t1000000000\tstale\texpired-in-2001\n"
        "127.0.0.1\tFALSE\t/elsewhere\tFALSE\t0\tpathed\tnot-for-this-path\n",
        encoding="utf-8")
    result = cli(own, moving, "--cookies", "cookies.txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    cookies = {r.path: r.headers.get("Cookie") for r in local_server.requests}
    for path in ("/own.bin", "/moving.bin"):
        assert sorted((cookies[path] or "").split("; ")) == ["lasting=yes", "session=c00kie-s3cret"], cookies
    [moved] = other_server.requests  # another host name: no cookie of 127.0.0.1
    assert "Cookie" not in moved.headers
    assert (tmp_path / "moving.bin").read_bytes() == b"moved"
    assert_no_secret(result, "c00kie-s3cret")


def test_an_unusable_cookie_file_is_a_usage_error_that_quotes_nothing(
    local_server: LocalServer, tmp_path: Path
) -> None:
    url = local_server.add_file("/own.bin", BODY)
    (tmp_path / "bad.txt").write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\tc00kie-s3cret\n",
                                      encoding="utf-8")
    bad = cli(url, "--cookies", "bad.txt", cwd=tmp_path)
    assert bad.returncode == 2 and "--cookies bad.txt: not a Netscape cookie file" in bad.stderr
    missing = cli(url, "-b", "nowhere.txt", cwd=tmp_path)
    assert missing.returncode == 2 and "--cookies nowhere.txt: cannot read it" in missing.stderr
    assert_no_secret(bad, "c00kie-s3cret")
    assert local_server.requests == []


# -- TLS --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSServer:
    url: str
    cert: Path


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TLSServer]:
    """HTTPS on 127.0.0.1 with a self-signed certificate (trusted by nobody by default)."""
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
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield TLSServer(f"https://127.0.0.1:{server.server_address[1]}/tls.bin", cert)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_tls_verified_by_default_against_a_ca_bundle_or_not_at_all(tls_server: TLSServer, tmp_path: Path) -> None:
    # A CA bundle in the environment must not override the options (requests would let it).
    env = {"REQUESTS_CA_BUNDLE": str(tmp_path / "unrelated.pem")}
    (tmp_path / "unrelated.pem").write_text("", encoding="utf-8")
    refused = cli(tls_server.url, "--json", "--retries", "0", "-d", "refused", cwd=tmp_path)
    assert refused.returncode == 1 and json.loads(refused.stdout)["error_type"] == "TLSError"
    trusted = cli(tls_server.url, "--ca-bundle", str(tls_server.cert), "-d", "trusted", cwd=tmp_path, **env)
    assert trusted.returncode == 0, trusted.stderr
    assert (tmp_path / "trusted" / "tls.bin").read_bytes() == BODY
    insecure = cli(tls_server.url, "--insecure", "-q", "-d", "insecure", cwd=tmp_path, **env)
    assert insecure.returncode == 0, insecure.stderr
    assert (tmp_path / "insecure" / "tls.bin").read_bytes() == BODY
    assert insecure.stderr.startswith("pydownloads: WARNING: --insecure: TLS certificates are not verified")
    assert "InsecureRequestWarning" not in insecure.stderr  # said once, by the command
    missing = cli(tls_server.url, "--ca-bundle", "nowhere.pem", cwd=tmp_path)
    assert missing.returncode == 2 and "--ca-bundle nowhere.pem: no such file" in missing.stderr
    both = cli(tls_server.url, "--ca-bundle", str(tls_server.cert), "-k", cwd=tmp_path)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
