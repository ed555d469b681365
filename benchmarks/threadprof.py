"""Where the library's time goes on one workload: cProfile over every thread of one download.

    python benchmarks/threadprof.py W2s             # 5,000 x 16 KiB over TLS 1.3, 16 at a time
    python benchmarks/threadprof.py W1s --top 15    # one 1 GiB file over TLS 1.3
    python benchmarks/threadprof.py W2 --quick      # any workload of benchmarks/run.py, its sizes
    python benchmarks/threadprof.py W2s --dump w2s.prof   # also keep the stats (pstats: callers)

Serves the workload as benchmarks/run.py does (private nginx, a CA made for the run for the
TLS ones), then downloads it in this process with ``DownloadManager`` and run.py's options,
each thread under a ``cProfile.Profile`` of its own (cProfile alone sees only the thread
that started it) clocked by the thread's CPU time (``time.thread_time``: a thread blocked in
``acquire`` or ``recv`` costs nothing), and prints the functions with the most CPU of their
own (``tottime``) summed over the threads, with their share of the whole.  The profiler's
own cost inflates Python-level functions (a call costs more under cProfile); the process's
CPU time without profiling is in benchmarks/run.py's table.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import _pydownloads_options, scratch_root, served, verify, workloads  # noqa: E402


def profiled_threads() -> tuple[list[cProfile.Profile], Callable[[], None]]:
    """Give every thread started from now on a profiler of its own; (the profilers, undo)."""
    profiles: list[cProfile.Profile] = []
    original = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def bootstrap(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread._bootstrap_inner = bootstrap  # type: ignore[attr-defined]

    def undo() -> None:
        threading.Thread._bootstrap_inner = original  # type: ignore[attr-defined]

    return profiles, undo


def top(stats: pstats.Stats, count: int) -> list[str]:
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values()) or 1.0
    ranked = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:count]
    lines = [f"{'own CPU s':>9} {'share':>6} {'calls':>10}  function"]
    for (filename, line, name), (_, calls, own, _cumulative, _) in ranked:
        where = name if filename == "~" else f"{Path(filename).name}:{line}({name})"
        lines.append(f"{own:9.3f} {own / total:6.1%} {calls:10,}  {where}")
    return lines


def area(filename: str, name: str) -> str:
    """Which layer a profiled function belongs to (for the summary by layer)."""
    if filename == "~":
        if "_ssl." in name or "do_handshake" in name:
            return "TLS (the ssl module's C code: encryption, handshakes)"
        if "posix." in name or "io.open" in name:
            return "system calls (os: open, stat, write, rename...)"
        if "lock" in name or "_thread" in name:
            return "locks"
        return "other built-ins (str, dict, isinstance...)"
    for package in ("pydownloads", "requests", "urllib3", "http", "email", "ssl", "socket", "urllib", "pathlib"):
        if f"/{package}/" in filename or filename.endswith(f"/{package}.py"):
            return package + ("" if package in ("pydownloads", "requests", "urllib3") else " (standard library)")
    return "other Python"


def by_area(stats: pstats.Stats) -> list[str]:
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    sums: dict[str, float] = {}
    for (filename, _line, name), entry in table.items():
        sums[area(filename, name)] = sums.get(area(filename, name), 0.0) + entry[2]
    total = sum(sums.values()) or 1.0
    return [f"{own:9.3f} {own / total:6.1%}  {where}" for where, own in sorted(sums.items(), key=lambda i: -i[1])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", help="a workload of benchmarks/run.py: W1, W2, W1s, W2s...")
    parser.add_argument("--quick", action="store_true", help="run.py's --quick sizes")
    parser.add_argument("--top", type=int, default=20, help="functions to print (default 20)")
    parser.add_argument("--dump", metavar="FILE", help="also save the summed stats there (pstats: callers, callees)")
    args = parser.parse_args()
    chosen = [w for w in workloads(args.quick) if w.key.upper() == args.workload.upper()]
    if not chosen:
        parser.error(f"no workload {args.workload}")
    w = chosen[0]
    from pydownloads import DownloadManager

    with served([w], scratch_root(None, 2 * w.count * w.size)) as (servers, digests, scratch):
        out, ca = Path(tempfile.mkdtemp(dir=scratch)), servers.ca_for(w)
        options = {**_pydownloads_options(w), **({"verify": str(ca)} if ca else {})}
        profiles, undo = profiled_threads()
        main_profile = cProfile.Profile(time.thread_time)
        cpu, wall = time.process_time(), time.perf_counter()
        main_profile.enable()
        with DownloadManager(out, **options) as manager:
            manager.add_to_queue(servers.urls(w))
            manager.queue.join()
        main_profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        undo()
        problem = verify(out, digests[w.folder])
    stats = pstats.Stats(main_profile)
    for profile in profiles:
        stats.add(profile)
    if args.dump:
        stats.dump_stats(args.dump)
    print(f"{w.key}: {w.title}; {len(profiles)} threads profiled; {wall:.2f} s, {cpu:.2f} CPU s under the profiler"
          f" ({w.cpu_per_unit(cpu):.3f} {w.cpu_unit}); files {'verified' if problem is None else problem}")
    print("\nby layer:\n" + "\n".join(by_area(stats)))
    print("\nby function:\n" + "\n".join(top(stats, args.top)))
    return 0 if problem is None else 1


if __name__ == "__main__":
    sys.exit(main())
