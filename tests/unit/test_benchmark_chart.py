"""benchmarks/chart.py: the figures it draws (rates relative to the best tool, CPU relative to
the cheapest) and its message without matplotlib.  Nothing is drawn here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.chart import MISSING, bars, draw, relative, tool_order


def row(workload: str, tool: str, walls: list[float], cpus: list[float], *, count: int = 100,
        size: int = 16384, unit: str = "files/s", errors: list[str | None] | None = None) -> dict[str, Any]:
    errors = errors or [None] * len(walls)
    return {"workload": workload, "title": "t", "count": count, "size": size, "unit": unit, "tool": tool,
            "samples": [{"wall": w, "cpu": c, "error": e} for w, c, e in zip(walls, cpus, errors, strict=True)]}


def test_bars_take_the_medians_of_good_samples_per_file_or_per_byte() -> None:
    small = row("W2", "a", [1.0, 2.0, 9.0], [0.1, 0.2, 0.3], errors=[None, None, "exit 1"])
    large = row("W1", "a", [2.0], [1.0], count=1, size=10**9, unit="MB/s")
    failed = row("W1", "b", [1.0], [1.0], errors=["exit 1"])
    got = {b.workload: b for b in bars([small, large, failed])}
    assert got["W2"].rate == pytest.approx(100 / 1.5) and got["W2"].cpu == pytest.approx(1.5)  # ms/file
    assert got["W1"].rate == pytest.approx(500.0) and got["W1"].cpu == pytest.approx(1.0)  # MB/s, s/GB
    assert len(got) == 2  # the failed row is not drawn


def test_relative_to_the_best_rate_and_the_least_cpu_of_each_workload() -> None:
    items = bars([row("W2", "fast", [1.0], [0.4]), row("W2", "slow", [4.0], [0.1]),
                  row("W3", "alone", [3.0], [0.3])])
    assert relative(items) == {("W2", "fast"): (1.0, 4.0), ("W2", "slow"): (0.25, 1.0), ("W3", "alone"): (1.0, 1.0)}


def test_without_matplotlib_draw_says_how_to_get_it_and_writes_nothing(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    target = tmp_path / "chart.png"
    assert draw([row("W2", "a", [1.0], [0.1])], target) == MISSING
    assert "benchmarks/requirements.txt" in MISSING
    assert not target.exists()


def test_a_tool_on_one_workload_only_keeps_its_place_beside_its_neighbour() -> None:
    items = bars([row("W1", "a", [1.0], [0.1]), row("W1", "c", [1.0], [0.1]),
                  row("W2", "a", [1.0], [0.1]), row("W2", "b", [1.0], [0.1]), row("W2", "c", [1.0], [0.1])])
    assert tool_order(items) == ["a", "b", "c"]
