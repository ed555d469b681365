"""benchmarks/run.py still runs: a quick W2, W4, W5 and W2s pass of pydownloads against a private
nginx (W5 through the latency proxy of benchmarks/latency.py, W2s over TLS with a CA made for
the run), and its chart redraws from the JSON it wrote.

Skipped where nginx is not installed (.ci/run installs it where it can: as root, with apt).
"""

from __future__ import annotations

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
def test_quick_benchmark_prints_a_table_and_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--runs", "1", "--only", "W2,W4,W5,W2s",
         "--tools", "pydownloads"],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("work"))
    for column in ("wall s", "rate", "CPU s", "RSS MiB", "vs best other"):
        assert column in header
    rows = {tuple(line.split()[:2]) for line in lines if line.startswith("W")}
    assert {("W2", "pydownloads"), ("W4", "pydownloads"), ("W5", "pydownloads"), ("W2s", "pydownloads")} <= rows
    assert "latency proxy, per run" in result.stdout
    assert "FAILED" not in result.stdout
