"""What progress bars cost: the same small files downloaded with and without ProgressDisplay.

    python benchmarks/progress.py                  # 2,000 x 16 KiB files, 5 runs of each, interleaved
    python benchmarks/progress.py --files 200 --runs 1

Each run is a fresh child process against one local server; runs with and without the display
alternate, so that both see the same machine.  The bars are drawn by real tqdm into a
pseudo-terminal that this process drains, as a terminal would.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import random
import statistics
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydownloads.localserver import LocalServer  # noqa: E402

CLIENT = r"""
import json, sys, tempfile, time
from pydownloads import DownloadManager
from pydownloads.progress import ProgressDisplay
urls, workers, progress = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
with tempfile.TemporaryDirectory() as folder:
    cpu0, t0 = time.process_time(), time.perf_counter()
    with DownloadManager(folder, max_workers=workers) as manager:
        display = ProgressDisplay(manager.emitter, manager.tracker) if progress else None
        manager.add_to_queue(urls)
        manager.queue.join()
        if display is not None:
            display.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    completed = manager.tracker.get_stats().completed
print(json.dumps({"wall": wall, "cpu": cpu, "completed": completed}), file=sys.stdout)
"""


def run_client(urls: list[str], workers: int, progress: bool) -> dict[str, float]:
    """One child process; its standard error (where bars go) is a pseudo-terminal we drain."""
    leader, follower = pty.openpty()
    drained = threading.Thread(target=_drain, args=(leader,), daemon=True)
    drained.start()
    try:
        out = subprocess.run(
            [sys.executable, "-c", CLIENT, json.dumps(urls), str(workers), "1" if progress else "0"],
            stdout=subprocess.PIPE, stderr=follower, text=True, check=True, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    finally:
        os.close(follower)
        drained.join(5)
        os.close(leader)
    result: dict[str, float] = json.loads(out.stdout)
    if result["completed"] != len(urls):
        raise SystemExit(f"only {result['completed']} of {len(urls)} downloads completed")
    return result


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:  # the follower side closed
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000, help="number of 16 KiB files")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(0)
    with LocalServer() as server:
        urls = [server.add_file(f"/s{i}.bin", rng.randbytes(16 * 1024)) for i in range(args.files)]
        runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for _ in range(args.runs):
            for progress in (False, True):
                runs[progress].append(run_client(urls, args.workers, progress))
    for progress in (False, True):
        wall = statistics.median(r["wall"] for r in runs[progress])
        cpu = statistics.median(r["cpu"] for r in runs[progress])
        print(f"{'with' if progress else 'without'} progress: {args.files} files in {wall:.2f} s wall "
              f"({args.files / wall:,.0f} files/s), {cpu:.2f} s CPU (median of {args.runs})")
    overhead = statistics.median(r["wall"] for r in runs[True]) / statistics.median(r["wall"] for r in runs[False])
    print(f"wall-clock ratio with/without: {overhead:.3f}")


if __name__ == "__main__":
    main()
