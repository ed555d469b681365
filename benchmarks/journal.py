"""Queueing a million URLs with a state file: URLs per second and peak memory.

    python benchmarks/journal.py               # 1,000,000 URLs
    python benchmarks/journal.py --urls 50000  # quick look
    python benchmarks/journal.py --command 100000  # end to end: the command downloads 100,000 files
    python benchmarks/journal.py --command 100000 1000000  # both, and how the peak grows between them

The URLs point at a local server that holds every request, so the four workers take their
first downloads and wait: what is measured is the journaling of the queue itself (a
generator feeding add_to_queue), not the downloads.

``--command N`` measures the whole command instead: N files of 16 bytes in 100 folders,
served by a private nginx on loopback (benchmarks/nginx.py), downloaded by
``python -m pydownloads -i list.txt -d DIR -j 16 -q`` (the state file on, by default) in a
child process; it prints the wall time, files per second and the child's peak RSS (VmHWM,
read from /proc while it runs: it only grows).  The data lives on /dev/shm when there is.
Given several counts, it runs each and then compares the peaks: the last over the first
(flat: within 20 %), and the growth in KiB per file between them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.clients import peak_rss_mib  # noqa: E402
from benchmarks.nginx import Nginx  # noqa: E402
from pydownloads import DownloadManager, FileConfig  # noqa: E402
from pydownloads.localserver import LocalServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--urls", type=int, default=1_000_000)
    parser.add_argument("--configs", action="store_true",
                        help="queue FileConfig objects with priorities (built in the generator) instead of URL strings")
    parser.add_argument("--command", type=int, metavar="N", nargs="+",
                        help="download N tiny files end to end with the command instead (against nginx); "
                             "several counts: each, then how the peak grows")
    parser.add_argument("--workers", type=int, default=16, help="-j of the command (--command)")
    args = parser.parse_args()
    if args.command:
        peaks = [command(count, args.workers) for count in args.command]
        if len(peaks) > 1:
            _compare(args.command, peaks)
        return
    with LocalServer() as server, tempfile.TemporaryDirectory() as folder:
        server.add_file("/held", b"x")
        server.hold("/held")
        base = server.url("/held")
        files: Iterable[FileConfig | str]
        if args.configs:
            files = (FileConfig(url=f"{base}?n={i}", priority=i % 5) for i in range(args.urls))
        else:
            files = (f"{base}?n={i}" for i in range(args.urls))
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


def command(count: int, workers: int) -> float:
    """Download ``count`` files of 16 bytes with the command; print wall, files/s, peak RSS
    (returned, in MiB)."""
    shm = Path("/dev/shm")
    tmp = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=tmp, prefix="pydownloads-journal-") as folder:
        data, out = Path(folder) / "data", Path(folder) / "out"
        listing = Path(folder) / "list.txt"
        for group in range(100):
            (data / f"g{group:02d}").mkdir(parents=True)
        Path(folder).chmod(0o755)  # nginx's workers drop privileges: they must reach the data
        _files(data, count)
        with Nginx(data) as nginx:
            listing.write_text("".join(nginx.url(f"/g{i % 100:02d}/f{i}.bin") + "\n" for i in range(count)))
            wall, peak, code = _watched([sys.executable, "-m", "pydownloads", "-i", str(listing), "-d", str(out),
                                         "-j", str(workers), "-q"])
        done = sum(1 for _ in out.glob("*.bin"))
    print(f"{count:,} files of 16 bytes, -j {workers}: exit {code}, {done:,} files in the folder")
    print(f"wall {wall:.1f} s: {count / wall:,.0f} files/s; peak RSS of the command {peak:.1f} MiB")
    return peak


def _compare(counts: list[int], peaks: list[float]) -> None:
    """The peaks side by side: the last over the first, and the growth per file between them."""
    shown = " / ".join(f"{peak:.1f}" for peak in peaks)
    files = " / ".join(f"{count:,}" for count in counts)
    slope = (peaks[-1] - peaks[0]) * 1024 / (counts[-1] - counts[0]) if counts[-1] != counts[0] else 0.0
    print(f"peak RSS {shown} MiB for {files} files: the last {peaks[-1] / peaks[0]:.2f} x the first, "
          f"{slope:+.3f} KiB per file between them")


def _files(data: Path, count: int) -> None:
    for i in range(count):
        (data / f"g{i % 100:02d}" / f"f{i}.bin").write_bytes(b"0123456789abcdef")


def _watched(argv: list[str]) -> tuple[float, float, int]:
    """Run ``argv`` (stdout and stderr dropped); its wall time, peak RSS in MiB and exit code.

    VmHWM is read every 50 ms while the child lives: it only grows, so the last reading
    is the peak but for the child's final 50 ms (its report, when it has one, is printed
    before the interpreter's teardown, which frees rather than allocates).
    """
    started = time.perf_counter()
    child = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0.0
    while child.poll() is None:
        try:
            with open(f"/proc/{child.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            pass
        time.sleep(0.05)
    return time.perf_counter() - started, peak, child.returncode


if __name__ == "__main__":
    main()
