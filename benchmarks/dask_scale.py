"""Files per second across a Dask LocalCluster of 1, 2 and 4 worker processes, against one
plain process on the same machine and the same local nginx.

    python benchmarks/dask_scale.py --workload latency --files 3000 --rtt-ms 100 --runs 3
    python benchmarks/dask_scale.py --workload cpu --files 3000 --runs 3

Two workloads of small files (16 KiB):

* ``latency``: every request through ``benchmarks/latency.py``'s proxy (a fixed round trip
  per exchange), so a worker's rate is its connections over the round trip and the CPU is
  not the limit: a second worker brings its connections, and should double the rate;
* ``cpu``: straight to nginx: the rate is what the processes' CPU allows (on 2 cores a
  second worker process brings no core of its own).

Each worker runs ``--threads`` shard tasks at once, each a DownloadManager of ``--per-task``
threads; the plain process runs one manager of ``threads x per-task`` threads (the
concurrency of one worker), without and with a state file (a shard always has one).  Per
run: the wall time of the download (the cluster is started before, not timed), the CPU of
the worker processes, of this process (client and scheduler), of the proxy and of nginx,
the cores the machine's other processes used meanwhile (``others``), and how many shard
tasks each worker ran.  Medians of ``--runs``, runs of each setup interleaved.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dask  # noqa: E402
import distributed  # noqa: E402

from benchmarks.latency import LatencyProxy  # noqa: E402
from benchmarks.nginx import Nginx  # noqa: E402
from pydownloads import DownloadManager  # noqa: E402
from pydownloads.distributed import download_on_dask  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    wall: float
    files: int
    cpu: dict[str, float]
    others: float
    tasks: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.files / self.wall


@contextmanager
def measured(pids: dict[str, list[int]], runs: list[Run], files: int) -> Iterator[list[list[int]]]:
    """Times the block and the CPU of ``pids`` (by role) and of the rest of the machine."""
    tasks: list[list[int]] = [[]]
    before = {role: sum(cpu_seconds(p) for p in group) for role, group in pids.items()}
    own_before = time.process_time()
    busy_before = machine_busy()
    started = time.perf_counter()
    yield tasks
    wall = time.perf_counter() - started
    cpu = {role: sum(cpu_seconds(p) for p in group) - before[role] for role, group in pids.items()}
    cpu["client+scheduler"] = time.process_time() - own_before
    others = max(0.0, machine_busy() - busy_before - sum(cpu.values())) / wall
    runs.append(Run(wall, files, cpu, others, tasks[0]))


def plain(urls: list[str], threads: int, state: bool, options: dict[str, Any]
          ) -> Callable[[dict[str, list[int]], list[Run]], None]:
    def run(pids: dict[str, list[int]], runs: list[Run]) -> None:
        with tempfile.TemporaryDirectory() as out, measured(pids, runs, len(urls)):
            state_file = {"state_file": Path(out) / "state.db"} if state else {}
            with DownloadManager(Path(out), max_workers=threads, **options, **state_file) as manager:
                manager.add_to_queue(urls)
    return run


def on_dask(urls: list[str], workers: int, threads: int, shard_size: int, per_task: int,
            options: dict[str, Any]) -> Callable[[dict[str, list[int]], list[Run]], None]:
    """A cluster of its own per run (started and stopped outside the timing)."""
    def run(pids: dict[str, list[int]], runs: list[Run]) -> None:
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                                      dashboard_address=":0", silence_logs=50) as cluster, \
                distributed.Client(cluster) as client, tempfile.TemporaryDirectory() as out:
            addresses = {pid: address for address, pid in client.run(os.getpid).items()}
            with distributed.get_task_stream(client) as stream, \
                    measured({**pids, "workers": list(addresses)}, runs, len(urls)) as tasks:
                results = download_on_dask(urls, out, client=client, shard_size=shard_size, max_workers=per_task,
                                           **options)
            assert results.stats.completed == len(urls), results.stats
            placed = Counter(item["worker"] for item in stream.data)
            tasks[0].extend(sorted((placed[address] for address in addresses.values()), reverse=True))
    return run


def _gate_cycles(cycles: int, threads: int) -> float:
    """On a worker: milliseconds per acquire + release of the cluster's host cap (never full)."""
    import threading

    from pydownloads._dask_gate import ClusterHostCap

    gate = ClusterHostCap(f"cost-{threads}")(1000)
    cancel = threading.Event()

    def loop() -> None:
        for _ in range(cycles):
            gate.acquire("http://h", cancel, wait=True)
            gate.release("http://h")

    started = time.perf_counter()
    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    gate.close()
    return (time.perf_counter() - started) * 1000 / (cycles * threads)


def gate_cost(cycles: int) -> None:
    """What the cluster-wide cap costs per download: a lease taken and given back."""
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:
        for threads in (1, 8):
            per = [client.submit(_gate_cycles, cycles, threads, pure=False).result() for _ in range(3)]
            runs = " ".join(f"{x:.2f}" for x in per)
            print(f"  a lease taken and given back, {threads} thread(s) at once: {statistics.median(per):.2f} ms"
                  f" per download of a thread (runs {runs}); load {os.getloadavg()[0]:.1f}", flush=True)


def report(label: str, runs: list[Run], base: float | None) -> float:
    rate = statistics.median(r.rate for r in runs)
    roles = sorted({role for r in runs for role in r.cpu})
    cpu = "  ".join(f"{role} {statistics.median(r.cpu.get(role, 0.0) / r.wall for r in runs):.2f}" for role in roles)
    versus = f"{rate / base:5.2f}x" if base else "    - "
    tasks = "/".join(str(n) for n in runs[len(runs) // 2].tasks) or "-"
    print(f"  {label:34} {rate:7,.0f} files/s  {versus}  walls {' '.join(f'{r.wall:.2f}' for r in runs)} s"
          f"  cores: {cpu}  others {statistics.median(r.others for r in runs):.2f}  tasks/worker {tasks}",
          flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=("latency", "cpu"), default="latency")
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--size", type=int, default=16 * 1024)
    parser.add_argument("--rtt-ms", type=float, default=100.0, help="the latency workload's round trip")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--threads", type=int, default=2, help="shard tasks at once per worker")
    parser.add_argument("--per-task", type=int, default=8, help="download threads per shard task")
    parser.add_argument("--shard-size", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cap", type=int, help="max_connections_per_host for every run (on Dask: the"
                        " cluster's, a scheduler round trip per download)")
    parser.add_argument("--no-plain", action="store_true", help="only the Dask runs")
    parser.add_argument("--no-profiler", action="store_true",
                        help="turn off the workers' statistical profiler (distributed.worker.profile.enabled)")
    parser.add_argument("--gate-cost", type=int, metavar="CYCLES",
                        help="only measure a lease of the cluster-wide cap, CYCLES times per thread")
    args = parser.parse_args()
    if args.no_profiler:
        dask.config.set({"distributed.worker.profile.enabled": False})
    if args.gate_cost:
        gate_cost(args.gate_cost)
        return
    rng = random.Random(8)
    with ExitStack() as stack:
        served = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for i in range(args.files):
            (served / f"f{i}.bin").write_bytes(rng.randbytes(args.size))
        nginx = stack.enter_context(Nginx(served))
        pids = {"nginx": nginx.pids()}
        url: Callable[[str], str] = nginx.url
        if args.workload == "latency":
            proxy = stack.enter_context(LatencyProxy(nginx.port, rtt=args.rtt_ms / 1000))
            pids["proxy"], url = proxy.pids(), proxy.url
        urls = [url(f"/f{i}.bin") for i in range(args.files)]
        concurrency = args.threads * args.per_task
        options: dict[str, Any] = {} if args.cap is None else {"max_connections_per_host": args.cap}
        setups: list[tuple[str, Callable[[dict[str, list[int]], list[Run]], None]]] = [] if args.no_plain else [
            (f"one process, {concurrency} threads", plain(urls, concurrency, False, options)),
            (f"one process, {concurrency} threads, state file", plain(urls, concurrency, True, options)),
        ]
        setups += [(f"dask, {workers} worker process(es)",
                    on_dask(urls, workers, args.threads, args.shard_size, args.per_task, options))
                   for workers in args.workers]
        print(f"{args.files} files of {args.size // 1024} KiB, {args.workload}"
              + (f" (RTT {args.rtt_ms:g} ms)" if args.workload == "latency" else " (nginx direct)")
              + f"; per worker {args.threads} tasks x {args.per_task} threads, shards of {args.shard_size};"
              + (f" max_connections_per_host {args.cap};" if args.cap else "")
              + (" workers' profiler off;" if args.no_profiler else "")
              + f" {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
        results: dict[str, list[Run]] = {label: [] for label, _ in setups}
        for _ in range(args.runs):
            for label, run in setups:
                run(pids, results[label])
        base = None
        for label, _ in setups:
            rate = report(label, results[label], base)
            if label.startswith("dask, 1 "):
                base = rate


if __name__ == "__main__":
    main()
