"""Files per second across a Dask LocalCluster with 1 and 2 worker processes, against the
single-process manager on the same machine and the same local nginx.

    python benchmarks/dask_scale.py --files 3000
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distributed import Client, LocalCluster  # noqa: E402

from benchmarks.nginx import Nginx  # noqa: E402
from pydownloads import DownloadManager  # noqa: E402
from pydownloads.distributed import download_on_dask  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--size", type=int, default=16 * 1024)
    args = parser.parse_args()
    rng = random.Random(8)
    with tempfile.TemporaryDirectory() as served:
        for i in range(args.files):
            (Path(served) / f"f{i}.bin").write_bytes(rng.randbytes(args.size))
        with Nginx(Path(served)) as nginx:
            urls = [nginx.url(f"/f{i}.bin") for i in range(args.files)]
            with tempfile.TemporaryDirectory() as out:
                started = time.perf_counter()
                with DownloadManager(Path(out), max_workers=16) as manager:
                    manager.add_to_queue(urls)
                print(f"one process, 16 threads: {args.files / (time.perf_counter() - started):,.0f} files/s")
            for workers in (1, 2):
                with LocalCluster(n_workers=workers, threads_per_worker=2, processes=True,
                                  dashboard_address=":0", silence_logs=40) as cluster, Client(cluster) as client:
                    with tempfile.TemporaryDirectory() as out:
                        started = time.perf_counter()
                        results = download_on_dask(urls, out, client=client, shard_size=500, max_workers=16)
                        elapsed = time.perf_counter() - started
                    assert results.stats.completed == args.files
                    print(f"dask, {workers} worker process(es): {args.files / elapsed:,.0f} files/s")


if __name__ == "__main__":
    main()
