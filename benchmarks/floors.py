"""The per-request floors under pydownloads on W2's files: what one request costs in CPU
through bare urllib3, bare requests, and pydownloads' own session, with 1 and 16 threads.

    python benchmarks/floors.py                  # 2,000 requests per measurement, 3 rounds
    python benchmarks/floors.py --requests 4000 --rounds 5

Each measurement GETs 16 KiB files from a private nginx (benchmarks/nginx.py) and reads every
body whole; nothing is written.  Rounds interleave the clients, so a busy machine slows all
of them alike.  CPU is ``time.process_time()`` of this process over the measurement (nginx
runs in its own processes); files/s is from the wall clock.  It tells how far below W2's
3,200 files/s the layers pydownloads is built on already are (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
import urllib3
from requests.adapters import HTTPAdapter

from benchmarks.nginx import Nginx
from pydownloads.domain.retry import RetryConfig
from pydownloads.infrastructure.http import build_session

SIZE = 16 << 10
FILES = 500

Get = Callable[[str], bytes]


def urllib3_client(threads: int) -> Get:
    pool = urllib3.PoolManager(maxsize=threads)

    def get(url: str) -> bytes:
        response = pool.request("GET", url, preload_content=False)
        data = response.read()
        response.release_conn()
        return data

    return get


def requests_client(threads: int) -> Get:
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=threads))

    def get(url: str) -> bytes:
        response = session.get(url, stream=True)
        data = response.raw.read()
        response.close()
        return data

    return get


def pydownloads_client(threads: int) -> Get:
    """The session a DownloadManager builds (prepared GETs, urllib3 Retry), as it sends."""
    session = build_session(pool_size=threads, config=RetryConfig(), hooks=None, watch=None)
    headers = {"Accept-Encoding": "identity"}

    def get(url: str) -> bytes:
        response = session.get(url, headers=headers, timeout=(10, 60), stream=True, allow_redirects=True)
        data = response.raw.read(decode_content=False)
        response.close()
        return data

    return get


CLIENTS: dict[str, Callable[[int], Get]] = {
    "urllib3": urllib3_client, "requests": requests_client, "pydownloads session": pydownloads_client,
}


def measure(get: Get, urls: list[str], threads: int) -> tuple[float, float]:
    """(files/s, CPU microseconds per request) for ``urls`` over ``threads`` threads."""
    get(urls[0])  # connect outside the clock

    def loop(first: int) -> None:
        for index in range(first, len(urls), threads):
            if len(get(urls[index])) != SIZE:
                raise SystemExit(f"short body from {urls[index]}")

    workers = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    wall, cpu = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(urls) / wall, cpu / len(urls) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="pydownloads-floors-", dir="/dev/shm") as folder:
        root = Path(folder)
        for index in range(FILES):
            (root / f"f{index:04d}.bin").write_bytes(rng.randbytes(SIZE))
        with Nginx(root) as server:
            urls = [server.url(f"/f{i % FILES:04d}.bin") for i in range(args.requests)]
            configs = [(name, threads) for name in CLIENTS for threads in (1, 16)]
            results: dict[tuple[str, int], list[tuple[float, float]]] = {c: [] for c in configs}
            for round_number in range(args.rounds):
                for name, threads in configs if round_number % 2 == 0 else configs[::-1]:
                    results[(name, threads)].append(measure(CLIENTS[name](threads), urls, threads))
    print(f"{'client':22s} {'threads':>7s} {'files/s':>8s} {'CPU us/request':>15s}   "
          f"(medians of {args.rounds} rounds of {args.requests:,} requests)")
    for (name, threads), samples in results.items():
        rate = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        print(f"{name:22s} {threads:7d} {rate:8,.0f} {cpu:15,.0f}")


if __name__ == "__main__":
    main()
