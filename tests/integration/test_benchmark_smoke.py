"""benchmarks/run.py still runs: a quick W2, W4, W5 and W2s pass of pydownloads against a private
nginx (W5 through the latency proxy of benchmarks/latency.py, W2s over TLS with a CA made for
the run), and its chart redraws from the JSON it wrote.

Skipped where nginx is not installed (.ci/run installs it where it can: as root, with apt).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx); the benchmark needs it")
@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command: W2s needs it to make its CA")
def test_quick_benchmark_prints_a_table_and_exits_0(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--runs", "1", "--only", "W2,W4,W5,W2s",
         "--tools", "pydownloads", "--json", str(results)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("work"))
    for column in ("wall s", "rate", "CPU s", "CPU per", "RSS MiB", "vs best other", "conns"):
        assert column in header
    rows = {tuple(line.split()[:2]) for line in lines if line.startswith("W")}
    assert {("W2", "pydownloads"), ("W4", "pydownloads"), ("W5", "pydownloads"), ("W2s", "pydownloads")} <= rows
    assert "latency proxy, per run" in result.stdout
    assert "FAILED" not in result.stdout
    records = json.loads(results.read_text())
    assert {(r["workload"], r["unit"]) for r in records} >= {("W2s", "files/s"), ("W4", "MB/s")}
    assert all(s["inner_cpu"] > 0 and s["accepted"] >= 1 for r in records for s in r["samples"])

    chart = tmp_path / "chart.png"
    redraw = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--from-json", str(results), "--chart", str(chart)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if importlib.util.find_spec("matplotlib") is None:  # the message says what to install, the exit status 2
        assert redraw.returncode == 2 and "benchmarks/requirements.txt" in redraw.stderr
    else:
        assert redraw.returncode == 0, redraw.stderr
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
