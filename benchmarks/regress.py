"""The CI regression check: a quick run that fails on a clear slowdown against the committed baseline.

    python benchmarks/regress.py                        # check against benchmarks/baseline.json (~20-40 s)
    python benchmarks/regress.py --update               # measure (5 runs) and rewrite the baseline; commit it
    python benchmarks/regress.py --baseline other.json  # check against another file

The library (``pydownloads``) and the command (``pydownloads-cli``) download, against the
private nginx of benchmarks/run.py, one 128 MiB file and 400 files of 16 KiB, over plain HTTP
and over TLS 1.3 (W1, W2, W1s, W2s at small sizes), with the naive ``requests`` loop of
benchmarks/clients.py as the reference, in turns (a rotating order), ``--runs`` times; every
file is checked against its sha256.

The figure compared is each client's own CPU time (imports excluded, all its threads; the
least over the runs) divided by the reference's (the least too): CPU time rather than wall
time, because a busy machine stretches wall time many times over but CPU time little; the
least, because load only adds to it; and a ratio to a client measured in the same rounds,
because it runs on the same interpreter, libraries and CPU (the figure carries from a fast
developer machine to a slow CI one).  A figure fails the check when it passes ``threshold``
times the baseline's (2.0: see ``THRESHOLD``).  A figure far under its baseline
is reported too: update the baseline, or the check stops watching the gain.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import KIB, MIB, Sample, Tool, Workload, all_tools, run_tool, served  # noqa: E402

BASELINE = ROOT / "benchmarks" / "baseline.json"
#: A figure fails past this many times its baseline.  Measured spread of a figure (median of
#: 3 runs) on a loaded 2-core machine: within 1.3x of its quiet value (docs/BENCHMARKS.md);
#: a regression worth stopping a merge for (the per-file or per-byte work doubled) is beyond it.
THRESHOLD = 2.0
#: Issue 17's ceiling on pydownloads' peak resident memory, on any workload (MiB).
RSS_CEILING_MIB = 60.0
REFERENCE = "requests"
CHECKED = ("pydownloads", "pydownloads-cli")
WORKLOADS = [
    Workload("W1", "one 128 MiB file", 1, 128 * MIB),
    Workload("W2", "400 x 16 KiB, 16 at a time", 400, 16 * KIB),
    Workload("W1s", "one 128 MiB file over TLS 1.3", 1, 128 * MIB, tls=True, data="W1"),
    Workload("W2s", "400 x 16 KiB over TLS 1.3, 16 at a time", 400, 16 * KIB, tls=True, data="W2"),
]


def figure_name(workload: str, tool: str) -> str:
    return f"{workload} {tool}"


def compare(measured: dict[str, float], baseline: dict[str, float], threshold: float) -> tuple[list[str], list[str]]:
    """(failures, notes): a failure for each baseline figure measured above ``threshold`` times
    its baseline value, or not measured at all; a note for a figure under its baseline divided
    by ``threshold`` (a gain to lock in) and for one the baseline lacks."""
    failures, notes = [], []
    for name, base in sorted(baseline.items()):
        value = measured.get(name)
        if value is None:
            failures.append(f"{name}: not measured (the baseline has it at {base:.2f})")
        elif value > base * threshold:
            failures.append(f"{name}: {value:.2f}, more than {threshold:g} x the baseline's {base:.2f}")
        elif value < base / threshold:
            notes.append(f"{name}: {value:.2f}, under 1/{threshold:g} of the baseline's {base:.2f}: "
                         "update the baseline to keep the gain")
    for name in sorted(set(measured) - set(baseline)):
        notes.append(f"{name}: {measured[name]:.2f}, not in the baseline")
    return failures, notes


def _cpus(samples: dict[tuple[str, str], list[Sample]], workload: str, tool: str) -> list[float]:
    return [s.inner_cpu for s in samples.get((workload, tool), []) if s.error is None and s.inner_cpu]


def figures(samples: dict[tuple[str, str], list[Sample]]) -> dict[str, float]:
    """Per (workload, checked tool): its least in-process CPU over the runs divided by the
    reference's least.  The least, because a busy machine only adds CPU time (caches and cores
    shared with others), and one quiet run of each is enough."""
    result = {}
    for w in WORKLOADS:
        reference = _cpus(samples, w.key, REFERENCE)
        for tool in CHECKED:
            mine = _cpus(samples, w.key, tool)
            if mine and reference:
                result[figure_name(w.key, tool)] = min(mine) / min(reference)
    return result


def ratios(samples: dict[tuple[str, str], list[Sample]]) -> dict[str, list[float]]:
    """Per (workload, checked tool): its in-process CPU divided by the reference's in the same
    run, for each run (runs where either failed are left out)."""
    figures = {}
    for w in WORKLOADS:
        reference = samples.get((w.key, REFERENCE), [])
        for tool in CHECKED:
            pairs = [(mine.inner_cpu, theirs.inner_cpu)
                     for mine, theirs in zip(samples.get((w.key, tool), []), reference, strict=False)
                     if mine.error is None and theirs.error is None and mine.inner_cpu and theirs.inner_cpu]
            if pairs:
                figures[figure_name(w.key, tool)] = [a / b for a, b in pairs]
    return figures


def too_big(samples: dict[tuple[str, str], list[Sample]], ceiling: float = RSS_CEILING_MIB) -> list[str]:
    """The checked clients' runs whose peak RSS passed ``ceiling`` MiB (a limit, not a ratio:
    memory does not depend on the machine's load or speed)."""
    return [f"{workload} {tool}: peak RSS {s.rss:.1f} MiB, over {ceiling:g}"
            for (workload, tool), runs in sorted(samples.items()) if tool in CHECKED
            for s in runs if s.rss is not None and s.rss > ceiling]


def measure(runs: int, items: list[Workload]) -> tuple[dict[tuple[str, str], list[Sample]], list[str]]:
    """Every tool on every workload of ``items``, ``runs`` rounds; (samples by (workload, tool), failures)."""
    tools: list[Tool] = [t for t in all_tools() if t.name in (*CHECKED, REFERENCE)]
    samples: dict[tuple[str, str], list[Sample]] = {}
    failures = []
    shm = Path("/dev/shm")
    tmp = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    with served(items, tmp) as (servers, digests, scratch):
        for run in range(runs):
            for w in items:
                order = tools[run % len(tools):] + tools[:run % len(tools)]
                for tool in order:
                    sample = run_tool(tool, w, servers.urls(w), digests[w.folder], scratch, servers.nginx.pids(),
                                      120.0, None, servers.ca_for(w))
                    samples.setdefault((w.key, tool.name), []).append(sample)
                    if sample.error:
                        failures.append(f"{w.key} {tool.name}: {sample.error}")
    return samples, failures


def report(samples: dict[tuple[str, str], list[Sample]]) -> str:
    lines = [f"{'work':5} {'tool':16} {'CPU per (in-process, least)':>30}"]
    for w in WORKLOADS:
        for tool in (*CHECKED, REFERENCE):
            cpus = _cpus(samples, w.key, tool)
            value = f"{w.cpu_per_unit(min(cpus)):.3f} {w.cpu_unit}" if cpus else "-"
            lines.append(f"{w.key:5} {tool:16} {value:>30}")
    return "\n".join(lines)


def missing_requirements() -> str | None:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        return "nginx is not installed"
    return None


def runnable() -> list[Workload]:
    """The workloads this machine can serve: the TLS ones need the openssl command (their CA)."""
    return [w for w in WORKLOADS if not w.tls or shutil.which("openssl")]


def write_baseline(path: Path, figures: dict[str, float], runs: int) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    path.write_text(json.dumps({
        "about": "benchmarks/regress.py: per figure, the client's least in-process CPU time over the runs / the "
                 "naive requests loop's least. Rewritten by: python benchmarks/regress.py --update",
        "measured": {"date": time.strftime("%Y-%m-%d"), "commit": commit.stdout.strip(), "runs": runs,
                     "python": platform.python_version(), "cores": os.cpu_count()},
        "threshold": THRESHOLD,
        "figures": {name: round(value, 3) for name, value in sorted(figures.items())},
    }, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=None,
                        help="rounds of every client on every workload (default 3; 5 with --update, so that the "
                             "baseline is no lucky draw)")
    parser.add_argument("--baseline", type=Path, default=BASELINE, help="the baseline file (default %(default)s)")
    parser.add_argument("--update", action="store_true", help="write the measured figures as the new baseline")
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 5 if args.update else 3
    reason = missing_requirements()
    if reason:
        print(f"regression check skipped: {reason}", file=sys.stderr)
        return 0
    items = runnable()
    skipped = {w.key for w in WORKLOADS} - {w.key for w in items}
    if skipped and args.update:
        print("no openssl command: the baseline needs the TLS workloads too; not updated", file=sys.stderr)
        return 2
    if skipped:
        print(f"skipping {', '.join(sorted(skipped))}: no openssl command to make their CA", file=sys.stderr)
    started = time.monotonic()
    samples, failures = measure(args.runs, items)
    measured, per_run = figures(samples), ratios(samples)
    print(report(samples))
    print(f"\nleast CPU / {REFERENCE}'s least, over {args.runs} runs ({time.monotonic() - started:.0f} s; "
          "each run's own ratio in brackets):")
    print("\n".join(f"  {name:24} {value:.2f}  ({' '.join(f'{v:.2f}' for v in per_run.get(name, []))})"
                    for name, value in sorted(measured.items())))
    if failures:
        print("\n".join(["FAILED downloads:", *failures]))
        return 1
    if args.update:
        write_baseline(args.baseline, measured, args.runs)
        print(f"wrote {args.baseline}: commit it, saying why the figures moved")
        return 0
    stored = json.loads(args.baseline.read_text())
    baseline = {name: value for name, value in stored["figures"].items() if name.split()[0] not in skipped}
    return verdict(samples, measured, baseline, float(stored.get("threshold", THRESHOLD)), args.baseline.name)


def verdict(samples: dict[tuple[str, str], list[Sample]], measured: dict[str, float], baseline: dict[str, float],
            threshold: float, name: str) -> int:
    """Print what passed its limit (CPU against the baseline, memory against the ceiling); 1 if any did."""
    slow, notes = compare(measured, baseline, threshold)
    big = too_big(samples)
    print("\n".join(f"note: {line}" for line in notes))
    if big:
        print("\n".join(["", f"peak memory past issue 17's {RSS_CEILING_MIB:g} MiB:", *(f"  {b}" for b in big)]))
    if slow:
        print("\n".join(["", f"SLOWER than {name}:", *(f"  {line}" for line in slow), "",
                         "Find the change that made it (git bisect with this command). If the cost is deliberate,",
                         "rewrite the baseline with `python benchmarks/regress.py --update` on a quiet machine and",
                         "commit benchmarks/baseline.json with the reason in the message."]))
    if slow or big:
        return 1
    print(f"no clear slowdown against {name} (limit {threshold:g}x), peak RSS under {RSS_CEILING_MIB:g} MiB")
    return 0

if __name__ == "__main__":
    sys.exit(main())
