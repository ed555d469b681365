"""Queueing a million URLs with a state file: URLs per second and peak memory.

    python benchmarks/journal.py               # 1,000,000 URLs
    python benchmarks/journal.py --urls 50000  # quick look

The URLs point at a local server that holds every request, so the four workers take their
first downloads and wait: what is measured is the journaling of the queue itself (a
generator feeding add_to_queue), not the downloads.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.clients import peak_rss_mib  # noqa: E402
from pydownloads import DownloadManager, FileConfig  # noqa: E402
from pydownloads.localserver import LocalServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--urls", type=int, default=1_000_000)
    parser.add_argument("--configs", action="store_true",
                        help="queue FileConfig objects with priorities (built in the generator) instead of URL strings")
    args = parser.parse_args()
    with LocalServer() as server, tempfile.TemporaryDirectory() as folder:
        server.add_file("/held", b"x")
        server.hold("/held")
        base = server.url("/held")
        if args.configs:
            files = (FileConfig(url=f"{base}?n={i}", priority=i % 5) for i in range(args.urls))
        else:
            files = (f"{base}?n={i}" for i in range(args.urls))  # type: ignore[assignment]
        before = peak_rss_mib()
        manager = DownloadManager(Path(folder) / "out", max_workers=4, state_file=Path(folder) / "state.db")
        started = time.perf_counter()
        queued = manager.add_to_queue(files)
        elapsed = time.perf_counter() - started
        stats_started = time.perf_counter()
        stats = manager.tracker.get_stats()
        stats_cost = time.perf_counter() - stats_started
        peak = peak_rss_mib()
        manager.shutdown(wait_for_current=False)
        server.release("/held")
        size = (Path(folder) / "state.db").stat().st_size
    print(f"queued {queued:,} URLs in {elapsed:.1f} s: {queued / elapsed:,.0f} URLs/s")
    print(f"peak RSS {peak:.0f} MiB (before the manager: {before:.0f} MiB); state file {size / 2**20:.0f} MiB")
    print(f"get_stats() with {stats.total:,} downloads: {stats_cost * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
