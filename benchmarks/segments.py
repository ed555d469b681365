"""W4: one 256 MiB file from a server capped at 20 MB/s per connection.

    python benchmarks/segments.py              # pydownloads 1 and 16 segments, aria2c, curl
    python benchmarks/segments.py --mib 16 --runs 1   # quick look

Served by a private nginx (benchmarks/nginx.py, ``limit_rate``); every result's sha256 is
checked. Prints median wall time per tool.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.nginx import Nginx  # noqa: E402

PYDOWNLOADS = r"""
import sys
from pydownloads import DownloadManager
url, folder, segments = sys.argv[1], sys.argv[2], int(sys.argv[3])
with DownloadManager(folder, max_segments=segments, max_connections_per_host=16) as m:
    m.add_to_queue([url])
    m.queue.join()
for info in m.tracker.get_all_downloads().values():
    if info.error:
        raise SystemExit(f"{info.url}: {info.error}")
"""


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def commands(url: str, folder: Path) -> dict[str, list[str]]:
    tools = {
        "pydownloads -x1": [sys.executable, "-c", PYDOWNLOADS, url, str(folder), "1"],
        "pydownloads -x16": [sys.executable, "-c", PYDOWNLOADS, url, str(folder), "16"],
    }
    if shutil.which("aria2c"):
        tools["aria2c -x16 -s16"] = ["aria2c", "-q", "-x16", "-s16", "-k1M", "--allow-overwrite=true",
                                     "--auto-file-renaming=false", "-d", str(folder), url]
    if shutil.which("curl"):
        tools["curl"] = ["curl", "-sf", "-o", str(folder / "w4.bin"), url]
    return tools


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rate", type=int, default=20_000_000, help="bytes/s per connection")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip", action="append", default=[], help="tool names to leave out (e.g. curl)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as served:
        data = Path(served) / "w4.bin"
        rng = random.Random(4)
        with open(data, "wb") as f:
            for _ in range(args.mib):
                f.write(rng.randbytes(1 << 20))
        expected = digest(data)
        times: dict[str, list[float]] = {}
        with Nginx(Path(served), rate=args.rate) as nginx:
            url = nginx.url("/limited/w4.bin")
            for _ in range(args.runs):  # interleaved: each run goes through every tool
                with tempfile.TemporaryDirectory() as out:
                    for name, command in commands(url, Path(out)).items():
                        if any(skip in name for skip in args.skip):
                            continue
                        started = time.perf_counter()
                        subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
                        times.setdefault(name, []).append(time.perf_counter() - started)
                        result = Path(out) / "w4.bin"
                        if digest(result) != expected:
                            raise SystemExit(f"{name}: wrong bytes")
                        result.unlink()
    print(f"W4: {args.mib} MiB at {args.rate / 1e6:.0f} MB/s per connection, median of {args.runs}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:18} {median:7.2f} s  {args.mib * 1.048576 / median:8.1f} MB/s")


if __name__ == "__main__":
    main()
