"""``pydownloads demo``: the README's first command works, and it notices when it should not."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pydownloads.cli import _demo as demo
from pydownloads.cli import main
from pydownloads.localserver import LocalServer
from tests.integration.clirun import run_cli
from tests.integration.helpers import files_under


def test_the_demo_runs_offline_verifies_and_exits_0(tmp_path: Path) -> None:
    result = run_cli("demo", "-d", "demo-out", cwd=tmp_path, timeout=45)
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert "a local server at http://127.0.0.1:" in err
    assert "retrying http://127.0.0.1:" in err
    assert "/files/flaky.bin in 1.0 s (HTTP 503 Service Unavailable; attempt 2)" in err
    assert "7 completed, 1 failed, 0 cancelled" in err
    assert "FAILED http://127.0.0.1:" in err and "missing.bin: HTTP 404 Not Found" in err
    assert err.count("  ok  ") == 9  # eight outcomes and the priority check
    assert "Demo OK: 7 files verified byte for byte (sha256), 1 failed as planned." in err
    folder = tmp_path / "demo-out"
    served = {item.name: item.size for item in demo.PLAN if item.served}
    assert {p.name: p.stat().st_size for p in files_under(folder)} == served  # no part files left


def test_the_demo_fails_when_an_outcome_differs_from_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = (
        demo.DemoFile(name="good.bin", size=10_000, priority=1),
        demo.DemoFile(name="bent.bin", size=10_000),
        demo.DemoFile(name="missing.bin", served=False),
    )
    serve = demo._serve

    def serve_one_file_wrong(server: LocalServer, item: demo.DemoFile) -> object:
        if item.name == "bent.bin":  # the server sends other bytes than the plan expects
            item = dataclasses.replace(item, data=bytes(reversed(item.data)))
        return serve(server, item)

    monkeypatch.setattr(demo, "PLAN", plan)
    monkeypatch.setattr(demo, "_serve", serve_one_file_wrong)
    assert main(["demo", "-d", str(tmp_path / "out"), "-j", "1"]) == 1
    err = capsys.readouterr().err
    assert "MISMATCH bent.bin: sha256 " in err and "Demo FAILED: 1 outcome(s) differ from the plan." in err
    assert "  ok  good.bin:" in err and "  ok  missing.bin: failed as planned" in err
