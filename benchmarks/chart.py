"""The table of benchmarks/run.py as a picture: the tools side by side on each workload.

    python benchmarks/run.py --json results.json --chart docs/benchmarks.png   # measure and draw
    python benchmarks/run.py --from-json results.json --chart docs/benchmarks.png   # redraw only

Two panels, one group of bars per workload, one colour per tool: above, each tool's rate
(files/s or MB/s, from its median wall time) relative to the best tool on that workload
(1.0 = the fastest; higher is better); below, its CPU per file or per byte relative to the
cheapest tool on that workload (1.0 = the least CPU; lower is better; a logarithmic scale:
the native tools spend a tenth of what Python spends).  Under each group: the workload and
the best tool's own figure.

matplotlib is needed for the picture only (``pip install -r benchmarks/requirements.txt``):
it is no dependency of pydownloads, nor of its tests.  Without it, ``draw`` says so and
draws nothing.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MISSING = ("the chart needs matplotlib, which is not installed: pip install -r benchmarks/requirements.txt "
           "(the table and --json are unaffected)")


@dataclass(frozen=True)
class Bar:
    """One tool's median figures on one workload."""

    workload: str
    title: str
    tool: str
    rate: float  # files/s or MB/s
    unit: str
    cpu: float  # CPU per file (ms) or per GB (s)
    cpu_unit: str


def bars(records: list[dict[str, Any]]) -> list[Bar]:
    """From the rows ``run.py --json`` writes: the medians of the good samples, per row that
    has any (failed rows are left out of the picture; the table shows them)."""
    result = []
    for record in records:
        good = [s for s in record["samples"] if s.get("error") is None]
        if not good or "count" not in record:
            continue
        count, size, unit = record["count"], record["size"], record["unit"]
        wall, cpu = statistics.median(s["wall"] for s in good), statistics.median(s["cpu"] for s in good)
        per_file = unit == "files/s"
        result.append(Bar(
            workload=record["workload"], title=record.get("title", ""), tool=record["tool"],
            rate=count / wall if per_file else count * size / wall / 1e6, unit=unit,
            cpu=cpu / count * 1000 if per_file else cpu / (count * size / 1e9),
            cpu_unit="ms/file" if per_file else "s/GB"))
    return result


def relative(items: list[Bar]) -> dict[tuple[str, str], tuple[float, float]]:
    """(rate / the best rate, CPU / the least CPU) per (workload, tool)."""
    result = {}
    for workload in dict.fromkeys(b.workload for b in items):
        group = [b for b in items if b.workload == workload]
        best, least = max(b.rate for b in group), min(b.cpu for b in group)
        for b in group:
            result[(b.workload, b.tool)] = (b.rate / best, b.cpu / least if least > 0 else float("nan"))
    return result


def tool_order(items: list[Bar]) -> list[str]:
    """The tools in the order the table shows them: one only on some workloads (W2's
    ``pydownloads+events``) stays beside its neighbour there, not at the end."""
    order: list[str] = []
    for workload in dict.fromkeys(b.workload for b in items):
        previous = None
        for tool in [b.tool for b in items if b.workload == workload]:
            if tool not in order:
                order.insert(order.index(previous) + 1 if previous is not None else 0, tool)
            previous = tool
    return order


def available() -> bool:
    """Whether matplotlib can be imported (checked before a long run that is to end in a chart)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def draw(records: list[dict[str, Any]], path: Path, caption: str = "") -> str | None:
    """Draw the chart into ``path`` (PNG or SVG, by its suffix); returns None, or why it could not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return MISSING
    items = bars(records)
    if not items:
        return "nothing to draw: no row has a good sample"
    workloads = list(dict.fromkeys(b.workload for b in items))
    tools = tool_order(items)
    ratios = relative(items)
    width = 0.8 / len(tools)
    figure, (speed, cost) = plt.subplots(2, 1, figsize=(max(8.0, 1.1 * len(workloads) * len(tools) / 4), 8.5),
                                         sharex=True)
    colours = plt.get_cmap("tab10")
    for number, tool in enumerate(tools):
        xs = [i + (number - (len(tools) - 1) / 2) * width for i, w in enumerate(workloads) if (w, tool) in ratios]
        here = [ratios[(w, tool)] for w in workloads if (w, tool) in ratios]
        speed.bar(xs, [r[0] for r in here], width, label=tool, color=colours(number % 10))
        cost.bar(xs, [r[1] for r in here], width, color=colours(number % 10))
    speed.set_ylabel("rate / the best tool's\n(higher is better)")
    speed.axhline(1.0, color="grey", linewidth=0.6)
    cost.set_ylabel("CPU per file or byte / the least\n(lower is better, log scale)")
    cost.set_yscale("log")
    cost.axhline(1.0, color="grey", linewidth=0.6)
    labels = []
    for w in workloads:
        best = max((b for b in items if b.workload == w), key=lambda b: b.rate)
        labels.append(f"{w}\n{best.title}\nbest: {best.tool}\n{best.rate:,.0f} {best.unit}")
    cost.set_xticks(range(len(workloads)), labels, fontsize=7)
    speed.legend(ncol=min(len(tools), 5), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.25))
    if caption:
        figure.suptitle(caption, fontsize=9, y=0.995)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None
