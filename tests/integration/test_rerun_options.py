"""Running the command again: for what is not completed, the newest run's options win.

A download killed mid-body (SIGKILL: a part file and its resume state are left) and run again
with other options is resumed under the new ones: the new checksum decides at the end, the new
headers are the ones sent, the new priority orders the queue.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from pydownloads.domain.models import FileConfig
from pydownloads.infrastructure.journal import Journal
from pydownloads.localserver import LocalServer
from tests.integration.clirun import cli_command, cli_env, run_cli
from tests.integration.helpers import file_sha256, payload, sha256
from tests.support import wait_until

SIZE = 4 << 20
RATE = 512 << 10  # bytes per second: the killed run is mid-body for several seconds
MTIME = 1_700_000_000.0
ETAG = f'"{SIZE:x}-{int(MTIME * 1_000_000):x}"'  # Apache's "size-mtime": the same for other bytes
STATE = ".pydownloads-state.db"


def saved_bytes(sidecar: Path) -> int:
    try:
        return sum(b - a for a, b in json.loads(sidecar.read_text())["ranges"])
    except (OSError, ValueError, KeyError):
        return 0


def killed_mid_body(folder: Path, name: str, *args: str) -> None:
    """Run the command with ``args`` until its part of ``name`` holds some bytes, then SIGKILL it."""
    child = subprocess.Popen(cli_command(*args, "-d", str(folder), "-x", "1", "-q"), env=cli_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: saved_bytes(folder / f"{name}.part.json") >= 256 << 10, timeout=20)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(10)
    assert not (folder / name).exists() and saved_bytes(folder / f"{name}.part.json") < SIZE


def test_a_rerun_with_a_wrong_checksum_fails_instead_of_resuming_unverified(
    local_server: LocalServer, tmp_path: Path
) -> None:
    body = payload(SIZE, 1)
    url = local_server.add_file("/w.bin", body, rate=RATE)
    killed_mid_body(tmp_path, "w.bin", url)
    local_server.add_file("/w.bin", body)  # same bytes and validators, full speed

    done = run_cli(url, "-d", str(tmp_path), "-x", "1", "--retries", "1", "--checksum", "sha256:" + "0" * 64,
                   cwd=tmp_path, timeout=60)

    assert done.returncode == 1, done.stderr
    assert not (tmp_path / "w.bin").exists()


def test_a_file_replaced_under_the_same_validators_is_not_spliced(local_server: LocalServer, tmp_path: Path) -> None:
    old, new = payload(SIZE, 2), payload(SIZE, 3)
    url = local_server.add_file("/s.bin", old, etag=ETAG, last_modified=MTIME, rate=RATE)
    killed_mid_body(tmp_path, "s.bin", url)
    assert local_server.wait_idle()
    local_server.add_file("/s.bin", new, etag=ETAG, last_modified=MTIME)  # If-Range still matches
    local_server.reset_stats()

    done = run_cli(url, "-d", str(tmp_path), "-x", "1", "--retries", "1", "--checksum", "sha256:" + sha256(new),
                   cwd=tmp_path, timeout=60)

    assert done.returncode == 0, done.stderr
    assert file_sha256(tmp_path / "s.bin") == sha256(new)
    first, *rest = local_server.requests
    assert first.range is not None and first.headers.get("If-Range") == ETAG  # resumed: the splice is caught
    assert rest and rest[-1].range is None  # then the whole new file, from zero


def test_the_rerun_sends_the_credential_it_is_given(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(SIZE, 4)
    url = local_server.add_file("/a.bin", body, rate=RATE)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{url}\n  header=Authorization: Bearer OLD\n")
    killed_mid_body(tmp_path, "a.bin", "-i", str(listing))
    assert local_server.wait_idle()
    local_server.add_file("/a.bin", body)
    local_server.reset_stats()
    listing.write_text(f"{url}\n  header=Authorization: Bearer NEW\n")

    done = run_cli("-i", str(listing), "-d", str(tmp_path), cwd=tmp_path, timeout=60)

    assert done.returncode == 0, done.stderr
    assert file_sha256(tmp_path / "a.bin") == sha256(body)
    assert local_server.requests
    assert [r.headers.get("Authorization") for r in local_server.requests] == ["Bearer NEW"] * len(
        local_server.requests)


def test_the_rerun_priorities_order_what_an_earlier_run_left_pending(
    local_server: LocalServer, tmp_path: Path
) -> None:
    urls = [local_server.add_file(f"/p{i}.bin", payload(1000, i)) for i in range(3)]
    earlier = Journal(tmp_path / STATE)  # what a killed run leaves: its downloads still pending
    earlier.insert([FileConfig(url=url, priority=10 - i) for i, url in enumerate(urls)])
    earlier.close()
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{url}\n  priority={i}\n" for i, url in enumerate(urls)))

    done = run_cli("-i", str(listing), "-d", str(tmp_path), "-j", "1", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert [r.path for r in local_server.requests] == ["/p2.bin", "/p1.bin", "/p0.bin"]


def test_a_rerun_with_another_expected_size_fails_instead_of_resuming_unchecked(
    local_server: LocalServer, tmp_path: Path
) -> None:
    body = payload(SIZE, 5)
    url = local_server.add_file("/e.bin", body, rate=RATE)
    killed_mid_body(tmp_path, "e.bin", url)
    local_server.add_file("/e.bin", body)
    listing = tmp_path / "list.jsonl"
    listing.write_text(json.dumps({"url": url, "expected_size": SIZE - 1}) + "\n")

    done = run_cli("-i", str(listing), "-d", str(tmp_path), "-x", "1", "--retries", "1", cwd=tmp_path, timeout=60)

    assert done.returncode == 1, done.stderr
    assert not (tmp_path / "e.bin").exists()
