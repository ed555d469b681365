"""The command against the library, interleaved: the package here and one or more others.

    python benchmarks/cmdlib.py --only W2,W2s --rounds 7 --compare base=/tmp/pd-base

Serves the workloads as benchmarks/run.py does, then runs, round after round, the library
(``pydownloads``, no state file), the command (``pydownloads-cli``, its state file on by
default) and the command of every ``--compare NAME=DIR`` package, each in a fresh process
into an empty folder (benchmarks/clients.py), the order reversed every other round; every
run's files are checked.  Prints, per workload and row, the medians of the wall time, the
child's CPU (user + system, imports included), files/s, and CPU per file, with the
command/library ratios (files/s, and CPU per file) and how busy the other processes kept
the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import (  # noqa: E402
    Sample,
    Tool,
    _cli_options,
    _pydownloads_options,
    run_tool,
    scratch_root,
    served,
    workloads,
)


def rows(compare: list[str]) -> list[Tool]:
    """The library, the command here, then the command of each ``NAME=DIR``."""
    tools = [Tool("library", "pydownloads", client="pydownloads", options=_pydownloads_options),
             Tool("command", "pydownloads", client="pydownloads-cli", leaves=(".pydownloads-state.db*",),
                  options=_cli_options)]
    for spec in compare:
        name, _, folder = spec.partition("=")
        tools.append(Tool(f"command@{name}", "pydownloads", client="pydownloads-cli",
                          leaves=(".pydownloads-state.db*",), options=_cli_options,
                          python_path=Path(folder).resolve()))
    return tools


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="W2", help="workloads, comma-separated (default W2)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=DIR")
    args = parser.parse_args()
    keys = {key.strip().upper() for key in args.only.split(",")}
    chosen = [w for w in workloads(False) if w.key.upper() in keys]
    tools = rows(args.compare)
    status = 0
    with served(chosen, scratch_root(None, 2 * sum(w.count * w.size for w in chosen))) as (servers, digests, scratch):
        for w in chosen:
            samples: dict[str, list[Sample]] = {tool.name: [] for tool in tools}
            for number in range(args.rounds):
                for tool in tools if number % 2 == 0 else tools[::-1]:
                    sample = run_tool(tool, w, servers.urls(w), digests[w.folder], scratch, servers.nginx.pids(),
                                      600, None, servers.ca_for(w))
                    if sample.error is not None:
                        print(f"{w.key} {tool.name}: {sample.error}", file=sys.stderr)
                        status = 1
                        continue
                    samples[tool.name].append(sample)
            report(w.key, w.count, samples)
    return status


def report(key: str, count: int, samples: dict[str, list[Sample]]) -> None:
    def median(name: str, field: str) -> float:
        return statistics.median(getattr(s, field) for s in samples[name])

    library_wall, library_cpu = median("library", "wall"), median("library", "cpu")
    others = statistics.median(s.others for group in samples.values() for s in group)
    print(f"\n{key}: {count} files, medians of {min(len(g) for g in samples.values())} rounds, "
          f"other processes {others:.2f} cores")
    print(f"{'row':<16} {'wall s':>7} {'files/s':>8} {'CPU s':>6} {'ms/file':>8} {'files/s vs lib':>15} "
          f"{'CPU/file vs lib':>16}")
    for name in samples:
        wall, cpu = median(name, "wall"), median(name, "cpu")
        print(f"{name:<16} {wall:7.2f} {count / wall:8.0f} {cpu:6.2f} {1000 * cpu / count:8.3f} "
              f"{library_wall / wall:14.2f}x {cpu / library_cpu:15.2f}x")


if __name__ == "__main__":
    sys.exit(main())
