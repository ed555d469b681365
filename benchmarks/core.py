"""Rough core figures against the project's own local test server (not nginx, not a test).

    python benchmarks/core.py                      # 2,000 x 16 KiB files, one 1 GiB file
    python benchmarks/core.py --small 200 --big-mib 8 --runs 1   # the smoke size the suite uses

Each measurement runs the client in a fresh child process, so that its peak RSS is the
client's alone (the server, in this process, holds the data in memory). The figures say
what the *test server* allows: it is a Python http.server, slower than nginx; the
side-by-side benchmark against curl, wget and aria2c on nginx is a separate runner.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydownloads.localserver import LocalServer  # noqa: E402

CLIENT = r"""
import json, sys, tempfile, time, hashlib
from pathlib import Path
from pydownloads import DownloadManager, DownloadTracker

def peak_rss_mib():
    # VmHWM starts afresh at exec (ru_maxrss would include the parent's pages at fork).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()

urls, workers = json.loads(sys.argv[1]), int(sys.argv[2])
with tempfile.TemporaryDirectory() as folder:
    tracker = DownloadTracker()
    cpu0, t0 = time.process_time(), time.perf_counter()
    with DownloadManager(folder, max_workers=workers, tracker=tracker) as manager:
        manager.add_to_queue(urls)
        manager.queue.join()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    peak = peak_rss_mib()
    stats = tracker.get_stats()
    digests = {p.name: digest(p) for p in Path(folder).iterdir()} if len(urls) == 1 else {}
print(json.dumps({"wall": wall, "cpu": cpu, "completed": stats.completed, "bytes": stats.bytes_downloaded,
                  "peak_rss_mib": peak, "digests": digests}))
"""


def run_client(urls: list[str], workers: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, json.dumps(urls), str(workers)],
        capture_output=True, text=True, check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)},
    )
    result: dict[str, float] = json.loads(out.stdout)
    if result["completed"] != len(urls):
        raise SystemExit(f"only {result['completed']} of {len(urls)} downloads completed")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=2000, help="number of 16 KiB files")
    parser.add_argument("--big-mib", type=int, default=1024, help="size of the big file in MiB")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    rng = random.Random(0)
    with LocalServer() as server:
        small = [server.add_file(f"/s{i}.bin", rng.randbytes(16 * 1024)) for i in range(args.small)]
        big_data = b"".join(rng.randbytes(1 << 20) for _ in range(args.big_mib))
        big = server.add_file("/big.bin", big_data)
        import hashlib

        big_digest = hashlib.sha256(big_data).hexdigest()
        del big_data
        small_runs = [run_client(small, args.workers) for _ in range(args.runs)]
        big_runs = [run_client([big], args.workers) for _ in range(args.runs)]
    for run in big_runs:
        if run["digests"] != {"big.bin": big_digest}:  # type: ignore[comparison-overlap]
            raise SystemExit("big file digest mismatch")
    files_per_s = statistics.median(args.small / r["wall"] for r in small_runs)
    cpu_per_file_ms = statistics.median(r["cpu"] / args.small * 1000 for r in small_runs)
    mb_per_s = statistics.median(r["bytes"] / r["wall"] / 1e6 for r in big_runs)
    print(f"small files: {args.small} x 16 KiB, {args.workers} workers: {files_per_s:,.0f} files/s, "
          f"{cpu_per_file_ms:.2f} ms CPU/file, peak RSS {max(r['peak_rss_mib'] for r in small_runs):.0f} MiB")
    print(f"big file: {args.big_mib} MiB: {mb_per_s:,.0f} MB/s, "
          f"peak RSS {max(r['peak_rss_mib'] for r in big_runs):.0f} MiB (sha256 verified)")


if __name__ == "__main__":
    main()
