"""One conformance matrix, run through the ``pydownloads`` command against nginx, Apache httpd and
lighttpd: every file's bytes are checked, and each server's access log says what it really sent.

``/slow/`` is throttled by each server (nginx ``limit_rate``, Apache ``mod_ratelimit``,
lighttpd ``connection.kbytes-per-second``), so that "killed mid-body" is deterministic and
segments really run side by side; ``/slow/novalid/`` sends neither ETag nor Last-Modified.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from tests.integration.clirun import ROOT, cli_command, cli_env, run_cli
from tests.servers.conftest import FILES, WebServer
from tests.support import wait_until

pytestmark = pytest.mark.timeout(30)  # each test, a server's start included


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def saved_bytes(sidecar: Path) -> int:
    """The bytes a running download has recorded as safely written (its ``.part.json``)."""
    try:
        return sum(b - a for a, b in json.loads(sidecar.read_text())["ranges"])
    except (OSError, ValueError, KeyError):
        return 0


def name_of(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def kill_mid_body(server: WebServer, path: str, out: Path, *options: str) -> int:
    """Start the command on ``path``, SIGKILL it once 1 MiB is saved; the bytes it kept.

    Returns after the server has logged the killed request, so that a later access-log
    mark sees only the rerun.
    """
    mark = server.mark()
    sidecar = out / f"{name_of(path)}.part.json"
    child = subprocess.Popen(cli_command(server.url(path), "-d", str(out), "-x", "1", "-q", *options),
                             cwd=ROOT, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        saved = wait_until(lambda: saved_bytes(sidecar) >= 1 << 20 or child.poll() is not None, timeout=15)
        running = child.poll() is None
    finally:
        child.send_signal(signal.SIGKILL)  # as a crash would (a no-op once it has ended)
        child.wait(10)
    assert saved and running, "the run saved its progress before it ended"
    kept = saved_bytes(sidecar)
    assert 1 << 20 <= kept < FILES[path], "killed mid-body"
    assert not (out / name_of(path)).exists()
    assert server.served(mark, path), "the server logged the killed request"
    return kept


def assert_resumed_from(server: WebServer, mark: int, path: str, kept: int) -> None:
    """The rerun asked one range, from the first byte the killed run had not saved, and got
    exactly the missing bytes."""
    [rerun] = server.served(mark, path)
    assert (rerun.status, rerun.range) == (206, f"bytes={kept}-")
    assert rerun.body_bytes == FILES[path] - kept


def test_plain_download(web_server: WebServer, tmp_path: Path) -> None:
    mark = web_server.mark()
    result = run_cli(web_server.url("plain.bin"), "-d", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "plain.bin").read_bytes() == web_server.body("plain.bin")
    size = FILES["plain.bin"]
    served = web_server.served(mark, "plain.bin", until=lambda s: sum(x.body_bytes for x in s) >= size)
    assert sum(s.body_bytes for s in served) == size


def test_segments_on_a_throttled_path(web_server: WebServer, tmp_path: Path) -> None:
    mark = web_server.mark()
    result = run_cli(web_server.url("slow/big.bin"), "-d", str(tmp_path), "-x", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "big.bin").read_bytes() == web_server.body("slow/big.bin")
    size = FILES["slow/big.bin"]
    served = web_server.served(mark, "slow/big.bin", until=lambda s: sum(x.body_bytes for x in s) >= size)
    ranged = [s for s in served if s.status == 206 and s.range is not None]
    assert len(ranged) >= 2, served  # several connections, each for its own range
    assert sum(s.body_bytes for s in served) >= size
    if web_server.name != "apache2":  # Apache logs a cut response's full length (%B), not what went
        # Every byte came once, plus at most what a split lane had in flight.
        assert sum(s.body_bytes for s in served) <= size * 5 // 4


def test_kill_then_rerun_fetches_only_the_missing_bytes(web_server: WebServer, tmp_path: Path) -> None:
    kept = kill_mid_body(web_server, "slow/kill.bin", tmp_path)
    mark = web_server.mark()
    result = run_cli(web_server.url("slow/kill.bin"), "-d", str(tmp_path), "-x", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kill.bin").read_bytes() == web_server.body("slow/kill.bin")
    assert_resumed_from(web_server, mark, "slow/kill.bin", kept)


def test_rerun_with_a_checksum_given_then(web_server: WebServer, tmp_path: Path) -> None:
    body = web_server.body("slow/opts.bin")
    kill_mid_body(web_server, "slow/opts.bin", tmp_path)
    url, folder = web_server.url("slow/opts.bin"), str(tmp_path)

    wrong = run_cli(url, "-d", folder, "-x", "1", "--checksum", f"sha256:{'0' * 64}", cwd=tmp_path)
    assert wrong.returncode == 1, wrong.stderr
    assert not (tmp_path / "opts.bin").exists()  # never accepted unverified

    right = run_cli(url, "-d", folder, "-x", "1", "--checksum", f"sha256:{sha256(body)}",
                    "--retry-failed", cwd=tmp_path)
    assert right.returncode == 0, right.stderr
    assert (tmp_path / "opts.bin").read_bytes() == body


def test_if_changed_costs_a_304_and_a_truncated_file_is_fetched_again(
    web_server: WebServer, tmp_path: Path
) -> None:
    if not _has_xattrs(tmp_path):  # then nothing vouches for the local file: fetched again
        pytest.skip("this file system has no extended attributes")
    url, body, target = web_server.url("ifc.bin"), web_server.body("ifc.bin"), tmp_path / "ifc.bin"
    assert run_cli(url, "-d", str(tmp_path), "--if-changed", cwd=tmp_path).returncode == 0
    mark = web_server.mark()

    again = run_cli(url, "-d", str(tmp_path), "--if-changed", cwd=tmp_path)

    assert again.returncode == 0, again.stderr
    [asked] = web_server.served(mark, "ifc.bin")
    assert asked.status == 304 and asked.body_bytes == 0
    assert target.read_bytes() == body

    with target.open("r+b") as f:
        f.truncate(1000)
    mark = web_server.mark()
    fixed = run_cli(url, "-d", str(tmp_path), "--if-changed", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert target.read_bytes() == body
    refetched = web_server.served(mark, "ifc.bin")
    assert any(s.status in (200, 206) and s.body_bytes >= FILES["ifc.bin"] - 1000 for s in refetched)


def test_checksum(web_server: WebServer, tmp_path: Path) -> None:
    url, body = web_server.url("sum.bin"), web_server.body("sum.bin")
    bad = run_cli(url, "-d", str(tmp_path / "bad"), "--checksum", f"sha256:{'f' * 64}", cwd=tmp_path)
    assert bad.returncode == 1, bad.stderr
    assert not (tmp_path / "bad" / "sum.bin").exists()
    good = run_cli(url, "-d", str(tmp_path / "good"), "--checksum", f"sha256:{sha256(body)}", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert (tmp_path / "good" / "sum.bin").read_bytes() == body


def test_no_validators_resume_with_a_checksum(web_server: WebServer, tmp_path: Path) -> None:
    path = "slow/novalid/nv.bin"
    headers = requests.head(web_server.url(path), timeout=5).headers
    if "ETag" in headers or "Last-Modified" in headers:
        pytest.skip(f"{web_server.name}'s config could not drop the validators of {path}")
    body = web_server.body(path)
    checksum = f"sha256:{sha256(body)}"
    kept = kill_mid_body(web_server, path, tmp_path, "--checksum", checksum)
    mark = web_server.mark()
    result = run_cli(web_server.url(path), "-d", str(tmp_path), "-x", "1", "--checksum", checksum,
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "nv.bin").read_bytes() == body
    assert_resumed_from(web_server, mark, path, kept)


def _has_xattrs(folder: Path) -> bool:
    probe = folder / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.pydownloads.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink()
