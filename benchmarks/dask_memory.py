"""The client's peak memory in a Dask job of N URLs: does it stay flat as N grows?

    python benchmarks/dask_memory.py 20000 100000 1000000

For each N: a LocalCluster (2 worker processes of 2 threads) and a local nginx answering
every URL at once with a tiny body; the client runs in a process of its own, reading the
URLs from a generator (never a list), and reports its RSS once connected, the peak RSS of
the job itself (``VmHWM`` reset after connecting, through ``/proc/self/clear_refs``) and the
process's peak over its life (``ru_maxrss``), with the job's counts (read from the shards'
state files, failures iterated).  Linux only.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Files nginx serves; URL i asks for file i % SERVED with a query that makes it unique.
SERVED = 1000
SIZE = 64


def urls(base: str, count: int) -> Iterator[object]:
    from pydownloads import FileConfig

    for i in range(count):
        yield FileConfig(url=f"{base}/f{i % SERVED}.bin?n={i}", filename=f"{i}.bin",
                         destination_subdir=f"d{i // 10_000}")


def client_main(address: str, base: str, count: int, out: str, shard_size: int) -> None:
    """The client process: one job, then its peak RSS on stdout as JSON."""
    from distributed import Client

    from pydownloads.distributed import download_on_dask

    with Client(address, set_as_default=False) as client:
        connected = _status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # the high-water mark starts again from here
        started = time.perf_counter()
        results = download_on_dask(urls(base, count), out, client, shard_size=shard_size, max_workers=8)
        elapsed = time.perf_counter() - started
        stats = results.stats
        failed = sum(1 for _ in results.failed)
        job_peak = _status_kib("VmHWM")
    print(json.dumps({"files": count, "completed": stats.completed, "failed": failed, "seconds": elapsed,
                      "connected_kib": connected, "job_peak_kib": job_peak,
                      "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def measure(count: int, shard_size: int) -> dict[str, float]:
    from distributed import LocalCluster

    from benchmarks.nginx import Nginx

    with tempfile.TemporaryDirectory() as served, tempfile.TemporaryDirectory() as out:
        for i in range(SERVED):
            (Path(served) / f"f{i}.bin").write_bytes(bytes([i % 256]) * SIZE)
        with Nginx(Path(served)) as nginx, LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                                        dashboard_address=":0", silence_logs=40) as cluster:
            done = subprocess.run(
                [sys.executable, __file__, "--client", cluster.scheduler_address, nginx.url(""), str(count), out,
                 str(shard_size)], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("counts", type=int, nargs="*", default=[20_000, 100_000])
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--client", nargs=5, metavar=("ADDRESS", "BASE", "N", "OUT", "SHARD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        address, base, count, out, shard = args.client
        client_main(address, base, int(count), out, int(shard))
        return
    print("| URLs | seconds | files/s | RSS connected (MiB) | job's peak RSS (MiB) | process peak RSS (MiB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for count in args.counts:
        r = measure(count, args.shard_size)
        assert r["completed"] == count, r
        print(f"| {count:,} | {r['seconds']:.0f} | {count / r['seconds']:.0f} | {r['connected_kib'] / 1024:.1f} | "
              f"{r['job_peak_kib'] / 1024:.1f} | {r['peak_kib'] / 1024:.1f} |", flush=True)


if __name__ == "__main__":
    main()
