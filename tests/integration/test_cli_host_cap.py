"""The command's summary says when --max-per-host held downloads back (real server, in process)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import pydownloads.downloads.resources as resources_module
from pydownloads.cli import main
from pydownloads.infrastructure.limits import HostGate, HostLimiter
from pydownloads.infrastructure.transport import host_of
from pydownloads.localserver import LocalServer
from tests.support import wait_until


@pytest.mark.parametrize("as_json", [False, True], ids=["summary", "json"])
def test_the_summary_counts_the_downloads_the_per_host_cap_held_back(
    local_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    as_json: bool,
) -> None:
    paths = [f"/c{i}.bin" for i in range(4)]
    for path in paths:
        local_server.add_file(path, b"x" * 1000)
        local_server.hold(path)
    limiters: list[HostLimiter] = []

    def recorded(limit: int, *, gate: HostGate | None = None) -> HostLimiter:  # the manager's, to watch its waiters
        limiters.append(HostLimiter(limit, gate=gate))
        return limiters[-1]

    monkeypatch.setattr(resources_module, "HostLimiter", recorded)
    argv = [*(local_server.url(p) for p in paths), "--no-state", "-d", str(tmp_path), "-j", "4",
            "--max-per-host", "1", *(["--json"] if as_json else [])]
    codes: list[int] = []
    run = threading.Thread(target=lambda: codes.append(main(argv)), daemon=True)
    run.start()
    host = host_of(local_server.base_url)
    try:
        # One download holds the only connection; the three others wait for it, for sure.
        assert wait_until(lambda: len(limiters) == 1 and limiters[0].waiting(host) == 3)
    finally:
        for path in paths:
            local_server.release(path)
        run.join(30)
    assert codes == [0]
    out, err = capsys.readouterr()
    line = f"3 downloads waited for a connection to {host.partition('://')[2]} (--max-per-host 1)"
    assert line in err.splitlines(), err
    if as_json:
        assert [json.loads(record)["status"] for record in out.splitlines()] == ["completed"] * 4
