"""Every download a run touches is reported with how it ended this time, and with this run's
bytes only: through the command, with a state file, against the local server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

import pydownloads
from pydownloads.localserver import LocalServer
from pydownloads.progress import format_bytes
from pydownloads.testing.faults import Status
from tests.integration.clirun import cli_command, cli_env, run_cli
from tests.integration.helpers import file_sha256, payload, sha256
from tests.support import wait_until

MIB = 1 << 20


def records(stdout: str) -> dict[str, dict[str, Any]]:
    """The ``--json`` records by the last part of their URL."""
    return {(r := json.loads(line))["url"].rsplit("/", 1)[-1]: r for line in stdout.splitlines()}


def saved_bytes(sidecar: Path) -> int:
    """Bytes the part file's sidecar says are safely written (0 while there is none)."""
    try:
        return sum(b - a for a, b in json.loads(sidecar.read_text())["ranges"])
    except (OSError, ValueError, KeyError):
        return 0


def killed_mid_body(*args: str, cwd: Path, sidecar: Path) -> None:
    """Start the command with ``args``, then SIGKILL it once 1 MiB of the body is saved."""
    child = subprocess.Popen(cli_command(*args), cwd=cwd, env=cli_env(), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: saved_bytes(sidecar) >= MIB, timeout=15)
    finally:
        child.kill()
        child.wait(10)


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "summary"])
def test_a_rerun_after_sigkill_counts_only_its_own_bytes(
    local_server: LocalServer, tmp_path: Path, as_json: bool
) -> None:
    body = payload(6 * MIB, 3)
    url = local_server.add_file("/k.bin", body, rate=MIB)  # 6 s: killed well before the end
    args = (url, "-d", "out", "-x", "1", "--state", "s.db")
    killed_mid_body(*args, cwd=tmp_path, sidecar=tmp_path / "out" / "k.bin.part.json")
    local_server.add_file("/k.bin", body)  # the same bytes and validators, full speed
    assert local_server.wait_idle(5)
    local_server.reset_stats()

    again = run_cli(*args, *(["--json"] if as_json else []), cwd=tmp_path)

    assert again.returncode == 0, again.stderr
    assert file_sha256(tmp_path / "out" / "k.bin") == sha256(body)
    sent = local_server.bytes_sent("/k.bin")
    assert 0 < sent < len(body) - MIB // 2  # a resume: the killed run's bytes were kept
    if as_json:
        record = records(again.stdout)["k.bin"]
        assert record["outcome"] == "resumed" and record["status"] == "completed"
        assert record["bytes"] == sent and record["size"] == len(body)
        assert record["resumed_from"] == len(body) - sent
    else:
        assert f"1 completed, 0 failed, 0 cancelled: {format_bytes(sent)} in " in again.stderr


def test_a_rerun_with_everything_complete_reports_skipped_without_requests(
    local_server: LocalServer, tmp_path: Path
) -> None:
    bodies = {f"f{i}.bin": payload(50_000 + i, i) for i in range(2)}
    urls = [local_server.add_file(f"/{name}", body) for name, body in bodies.items()]
    assert run_cli(*urls, "-d", "out", "--state", "s.db", cwd=tmp_path).returncode == 0
    local_server.reset_stats()

    again = run_cli(*urls, "-d", "out", "--state", "s.db", "--json", cwd=tmp_path)

    assert again.returncode == 0, again.stderr
    assert local_server.requests == []
    got = records(again.stdout)
    assert sorted(got) == sorted(bodies)
    for name, body in bodies.items():
        assert got[name]["outcome"] == "skipped" and got[name]["status"] == "completed"
        assert (got[name]["bytes"], got[name]["attempts"], got[name]["size"]) == (0, 0, len(body))


def test_a_carried_over_download_that_fails_is_counted(local_server: LocalServer, tmp_path: Path) -> None:
    slow = local_server.add_file("/left.bin", payload(6 * MIB, 5), rate=MIB)
    killed_mid_body(slow, "-d", "out", "-x", "1", "--state", "s.db", cwd=tmp_path,
                    sidecar=tmp_path / "out" / "left.bin.part.json")
    assert local_server.wait_idle(5)
    local_server.add_faults("/left.bin", Status(404))  # gone when the next run carries it on
    new = local_server.add_file("/new.bin", payload(10_000, 6))

    run = run_cli(new, "-d", "out", "--state", "s.db", "--json", cwd=tmp_path)

    assert run.returncode == 1, run.stderr
    got = records(run.stdout)
    assert sorted(got) == ["left.bin", "new.bin"]
    assert got["new.bin"]["outcome"] == "transferred" and got["new.bin"]["status"] == "completed"
    carried = got["left.bin"]
    assert carried["outcome"] == "carried over" and carried["status"] == "failed"
    assert carried["error_type"] == "HTTPStatusError" and carried["bytes"] == 0


def test_a_not_modified_answer_is_reported_unchanged(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(30_000, 7)
    url = local_server.add_file("/c.bin", body)
    args = (url, "-d", "out", "--state", "s.db", "--if-changed", "--json")
    first = records(run_cli(*args, cwd=tmp_path).stdout)["c.bin"]
    assert (first["outcome"], first["bytes"], first["size"]) == ("transferred", len(body), len(body))

    again = run_cli(*args, cwd=tmp_path)

    assert again.returncode == 0, again.stderr
    assert [r.status for r in local_server.requests][-1] == 304
    record = records(again.stdout)["c.bin"]
    assert (record["outcome"], record["bytes"], record["size"]) == ("unchanged", 0, len(body))


def test_the_library_says_skipped_for_a_file_an_earlier_run_completed(
    local_server: LocalServer, tmp_path: Path
) -> None:
    body = payload(40_000, 8)
    url = local_server.add_file("/lib.bin", body)
    state = tmp_path / "s.db"
    first = pydownloads.download([url], download_dir=tmp_path, state_file=state, progress=False)
    (info,) = first.completed
    assert first.outcome(info) == "transferred" and first.bytes_this_run == len(body)

    again = pydownloads.download([url], download_dir=tmp_path, state_file=state, progress=False)

    (info,) = again.completed
    assert again.outcome(info) == "skipped" and again.bytes_this_run == 0
