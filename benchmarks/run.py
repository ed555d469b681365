"""Side by side: pydownloads against curl, wget, aria2c, a naive requests loop, parfive, pypdl.

    python benchmarks/run.py                          # every workload and tool found, 3 runs
    python benchmarks/run.py --quick --runs 1         # tiny sizes: a few seconds
    python benchmarks/run.py --only W2,W4 --tools pydownloads,curl,aria2c --runs 5
    python benchmarks/run.py --json results.json --chart docs/benchmarks.png   # and draw the table
    python benchmarks/run.py --from-json results.json --chart docs/benchmarks.png   # redraw only

Workloads (full size; ``--quick`` shrinks them):
  W1  one 1 GiB file
  W2  5,000 files of 16 KiB, 16 at a time
  W3  200 files of 4 MiB, 16 at a time
  W4  one 256 MiB file from a location capped at 20 MB/s per connection
  W5  1,000 files of 16 KiB behind a 20 ms round trip (benchmarks/latency.py), 16 at a time
  W1s W1's file over HTTPS (TLS 1.3, keep-alive, a CA made for the run: benchmarks/tls.py)
  W2s W2's files over HTTPS, 16 at a time

The data is generated (seeded, so every run serves the same bytes) into a temporary folder
(on /dev/shm when it has room, so that no disk takes part) and served by a private nginx
(benchmarks/nginx.py: sendfile, keep-alive, ``/limited/`` for W4; W5 goes through a proxy that
adds a fixed round-trip time, benchmarks/latency.py, in a process of its own; W1s and W2s come
over TLS 1.3 from a second port, with a CA made for the run, benchmarks/tls.py, that every tool is
told to trust).  Every tool runs in a
child process of its own; within each run the tools take turns (in a rotating order) on
each workload, and every file each tool writes is checked against its sha256.

Columns: see benchmarks/README.md.  Exit status 1 when any download failed or any file
came out wrong.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import chart  # noqa: E402
from benchmarks.latency import LatencyProxy  # noqa: E402
from benchmarks.nginx import Nginx  # noqa: E402
from benchmarks.tls import Authority, make_ca  # noqa: E402

CLIENTS = ROOT / "benchmarks" / "clients.py"
OTHERS_VENV = ROOT / "benchmarks" / ".venv-others"
GNU_TIME = "/usr/bin/time"
KIB, MIB = 1 << 10, 1 << 20
RATE_LIMIT = 20_000_000  # bytes per second per connection on /limited/ (W4)
CONCURRENCY = 16
RTT = 0.020  # seconds added to every request/response exchange by the latency proxy (W5)


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    count: int
    size: int
    limited: bool = False
    #: behind the latency proxy (a round trip of RTT per request, one more per new connection)
    delayed: bool = False
    #: over HTTPS (TLS 1.3) from nginx's TLS port, every tool trusting the run's CA
    tls: bool = False
    #: the workload whose files it serves (the TLS variants share their plain twin's data)
    data: str = ""

    @property
    def many(self) -> bool:
        return self.count > 1

    @property
    def unit(self) -> str:
        """files/s for many small files (measured per file), MB/s for the rest (per byte)."""
        return "files/s" if self.many and self.size < MIB else "MB/s"

    @property
    def folder(self) -> str:
        return (self.data or self.key).lower()

    def names(self) -> list[str]:
        return [f"{self.folder}.bin"] if self.count == 1 else [f"f{i:05d}.bin" for i in range(self.count)]

    def cpu_per_unit(self, cpu: float) -> float:
        """ms of CPU per file (files/s workloads) or s of CPU per GB (10^9 bytes)."""
        return cpu / self.count * 1000 if self.unit == "files/s" else cpu / (self.count * self.size / 1e9)

    @property
    def cpu_unit(self) -> str:
        return "ms/file" if self.unit == "files/s" else "s/GB"

    def rate(self, wall: float) -> float:
        return self.count / wall if self.unit == "files/s" else self.count * self.size / wall / 1e6


def workloads(quick: bool) -> list[Workload]:
    if quick:
        return [
            Workload("W1", "one 16 MiB file", 1, 16 * MIB),
            Workload("W2", "200 x 16 KiB, 16 at a time", 200, 16 * KIB),
            Workload("W3", "16 x 1 MiB, 16 at a time", 16, MIB),
            Workload("W4", "one 16 MiB file at 20 MB/s per connection", 1, 16 * MIB, limited=True),
            Workload("W5", "40 x 16 KiB behind 20 ms, 16 at a time", 40, 16 * KIB, delayed=True),
            Workload("W1s", "one 16 MiB file over TLS 1.3", 1, 16 * MIB, tls=True, data="W1"),
            Workload("W2s", "200 x 16 KiB over TLS 1.3, 16 at a time", 200, 16 * KIB, tls=True, data="W2"),
        ]
    return [
        Workload("W1", "one 1 GiB file", 1, 1024 * MIB),
        Workload("W2", "5,000 x 16 KiB, 16 at a time", 5000, 16 * KIB),
        Workload("W3", "200 x 4 MiB, 16 at a time", 200, 4 * MIB),
        Workload("W4", "one 256 MiB file at 20 MB/s per connection", 1, 256 * MIB, limited=True),
        Workload("W5", "1,000 x 16 KiB behind a 20 ms round trip, 16 at a time", 1000, 16 * KIB, delayed=True),
        Workload("W1s", "one 1 GiB file over TLS 1.3", 1, 1024 * MIB, tls=True, data="W1"),
        Workload("W2s", "5,000 x 16 KiB over TLS 1.3, 16 at a time", 5000, 16 * KIB, tls=True, data="W2"),
    ]


# -- the tools ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tool:
    """How one tool downloads a workload: a clients.py client (Python) or a command line.

    ``family`` groups variants of one tool: the ratio column compares against other families.
    """

    name: str
    family: str
    client: str | None = None  # clients.py name, run by ``python``
    python: str = sys.executable
    options: Callable[[Workload], dict[str, Any]] = lambda w: {}
    command: Callable[[Workload, list[str], Path, Path], list[str]] | None = None
    only: frozenset[str] = frozenset()
    #: glob patterns of files the tool leaves beside the downloads by design (not checked)
    leaves: tuple[str, ...] = ()
    #: where the child imports pydownloads from (the repository unless ``--compare`` says)
    python_path: Path = ROOT

    def applies(self, workload: Workload) -> bool:
        return not self.only or workload.key in self.only


def _pydownloads_options(w: Workload) -> dict[str, Any]:
    if w.limited:
        return {"max_segments": CONCURRENCY, "max_connections_per_host": CONCURRENCY}
    return {"max_workers": CONCURRENCY} if w.many else {}


def _cli_options(w: Workload) -> dict[str, Any]:
    """The command line's flags for what the API row sets (it leaves its state file at its default)."""
    if w.limited:
        return {"args": ["-x", str(CONCURRENCY), "--max-per-host", str(CONCURRENCY)]}
    return {"args": ["-j", str(CONCURRENCY)]} if w.many else {}


def _url_list(urls: list[str], scratch: Path) -> Path:
    listing = scratch / "urls.txt"
    listing.write_text("\n".join(urls) + "\n")
    return listing


def _curl(w: Workload, urls: list[str], out: Path, scratch: Path) -> list[str]:
    if not w.many:
        return ["curl", "-sS", "-f", "-o", str(out / w.names()[0]), urls[0]]
    config = scratch / "curl.conf"
    config.write_text("".join(f'url = "{u}"\noutput = "{out / n}"\n' for u, n in zip(urls, w.names(), strict=True)))
    return ["curl", "-sS", "-f", "--parallel", "--parallel-max", str(CONCURRENCY), "-K", str(config)]


def _wget(w: Workload, urls: list[str], out: Path, scratch: Path) -> list[str]:
    if not w.many:
        return ["wget", "-q", "-O", str(out / w.names()[0]), urls[0]]
    return ["wget", "-q", "-P", str(out), "-i", str(_url_list(urls, scratch))]


def _aria2c(w: Workload, urls: list[str], out: Path, scratch: Path) -> list[str]:
    base = ["aria2c", "-q", "--allow-overwrite=true", "--auto-file-renaming=false", "-d", str(out)]
    if w.limited:
        return [*base, f"-x{CONCURRENCY}", f"-s{CONCURRENCY}", "-k1M", urls[0]]
    if not w.many:
        return [*base, urls[0]]
    return [*base, f"-j{CONCURRENCY}", "-i", str(_url_list(urls, scratch))]


def _parfive_options(w: Workload) -> dict[str, Any]:
    if w.limited:
        return {"max_conn": CONCURRENCY, "max_splits": CONCURRENCY}
    return {"max_conn": CONCURRENCY, "max_splits": 1} if w.many else {"max_conn": CONCURRENCY}


def _pypdl_options(w: Workload) -> dict[str, Any]:
    if w.limited:
        return {"segments": CONCURRENCY}
    return {"multisegment": False} if w.many else {}


#: How each command-line tool is told to trust the run's CA (the TLS workloads); the flags go
#: right after the program's name.  The Python clients take it from their spec (clients.py).
TRUST_FLAGS: dict[str, Callable[[Path], list[str]]] = {
    "curl": lambda ca: ["--cacert", str(ca)],
    "wget": lambda ca: [f"--ca-certificate={ca}"],
    "aria2c": lambda ca: [f"--ca-certificate={ca}"],
}


def all_tools() -> list[Tool]:
    others = str(OTHERS_VENV / "bin" / "python")
    return [
        Tool("pydownloads", "pydownloads", client="pydownloads", options=_pydownloads_options),
        Tool("pydownloads+events", "pydownloads", client="pydownloads", only=frozenset({"W2"}),
             options=lambda w: {**_pydownloads_options(w), "progress": True}),
        Tool("pydownloads-cli", "pydownloads", client="pydownloads-cli", leaves=(".pydownloads-state.db*",),
             options=_cli_options),
        Tool("requests", "requests", client="requests", options=lambda w: {"workers": CONCURRENCY}),
        Tool("curl", "curl", command=_curl),
        Tool("wget", "wget", command=_wget),
        Tool("aria2c", "aria2c", command=_aria2c),
        Tool("parfive", "parfive", client="parfive", python=others, options=_parfive_options),
        Tool("pypdl", "pypdl", client="pypdl", python=others, options=_pypdl_options),
    ]


def missing_reason(tool: Tool) -> str | None:
    """Why ``tool`` cannot run here, or None."""
    if tool.command is not None:
        return None if shutil.which(tool.name) else f"{tool.name} is not installed"
    if tool.client == "pydownloads-cli":
        probe = subprocess.run([sys.executable, "-m", "pydownloads", "--help"], capture_output=True, cwd=ROOT,
                               env=child_env(python_path=True), timeout=60)
        return None if probe.returncode == 0 else "python -m pydownloads --help failed (no CLI yet)"
    if tool.python != sys.executable:
        if not Path(tool.python).exists():
            return f"no {OTHERS_VENV.relative_to(ROOT)} (see benchmarks/README.md)"
        probe = subprocess.run([tool.python, "-c", f"import {tool.client}"], capture_output=True, timeout=60)
        return None if probe.returncode == 0 else f"{tool.client} is not importable in {OTHERS_VENV.name}"
    return None


def child_env(*, python_path: bool, root: Path = ROOT) -> dict[str, str]:
    """The environment without proxies (every tool must talk to 127.0.0.1 directly)."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and k != "PYTHONPATH"}
    if python_path:
        env["PYTHONPATH"] = str(root)
    return env


def compared_tools(specs: list[str]) -> list[Tool]:
    """``NAME=DIR``: the pydownloads API row again, importing the package found in DIR."""
    tools = []
    for spec in specs:
        name, _, folder = spec.partition("=")
        path = Path(folder).expanduser().resolve()
        if not name or not (path / "pydownloads" / "__init__.py").exists():
            raise SystemExit(f"--compare {spec!r}: expected NAME=DIR with DIR/pydownloads/__init__.py")
        tools.append(Tool(f"pydownloads@{name}", "pydownloads", client="pydownloads", options=_pydownloads_options,
                          python_path=path))
    return tools


# -- the data ---------------------------------------------------------------------------------

def data_sets(items: list[Workload]) -> list[Workload]:
    """One workload per data folder (a TLS variant and its plain twin share theirs)."""
    first: dict[str, Workload] = {}
    for w in items:
        twin = first.setdefault(w.folder, w)
        if (twin.count, twin.size) != (w.count, w.size):
            raise ValueError(f"{w.key} and {twin.key} share {w.folder}/ but not its size")
    return list(first.values())


def generate(folder: Path, items: list[Workload]) -> dict[str, dict[str, str]]:
    """Write each workload's files under ``folder/<its data folder>/``; returns their sha256 by
    name, per data folder."""
    digests: dict[str, dict[str, str]] = {}
    for number, w in enumerate(data_sets(items)):
        rng = random.Random(number + 1)
        target = folder / w.folder
        target.mkdir(parents=True)
        digests[w.folder] = {}
        for name in w.names():
            h = hashlib.sha256()
            with open(target / name, "wb") as f:
                left = w.size
                while left:
                    block = rng.randbytes(min(left, MIB))
                    f.write(block)
                    h.update(block)
                    left -= len(block)
            digests[w.folder][name] = h.hexdigest()
    return digests


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MIB):
            h.update(block)
    return h.hexdigest()


def verify(out: Path, expected: dict[str, str], leaves: tuple[str, ...] = ()) -> str | None:
    """None when ``out`` holds exactly the expected files with the expected bytes (and
    whatever matches ``leaves``)."""
    found = {p.name for p in out.iterdir() if not any(p.match(pattern) for pattern in leaves)}
    if found != set(expected):
        missing, extra = sorted(set(expected) - found), sorted(found - set(expected))
        return f"{len(missing)} files missing {missing[:3]}, {len(extra)} unexpected {extra[:3]}"
    wrong = [name for name, value in expected.items() if digest(out / name) != value]
    return f"{len(wrong)} files with wrong bytes, e.g. {wrong[0]}" if wrong else None


def scratch_root(requested: str | None, needed: int) -> str | None:
    if requested:
        return requested
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2 * needed:
        return str(shm)
    return None


# -- measuring ----------------------------------------------------------------------------------

@dataclass
class Sample:
    wall: float  # seconds, process start to exit, as its user waits
    cpu: float  # user + system seconds of the child and its children
    inner: float | None = None  # seconds inside the Python client, imports excluded
    inner_cpu: float | None = None  # CPU seconds of the Python client over ``inner`` (all its threads)
    rss: float | None = None  # peak RSS in MiB
    others: float = 0.0  # cores busy with other processes (not the tool, not nginx) meanwhile
    server: float = 0.0  # nginx CPU seconds meanwhile
    proxy: float = 0.0  # the latency proxy's CPU seconds meanwhile (W5)
    connections: int | None = None  # connections the tool opened through the latency proxy (W5)
    accepted: int | None = None  # connections nginx accepted from the tool (W5: from the proxy)
    error: str | None = None


def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all cores from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle, sum(fields[:8])


def _process_jiffies(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def measure(argv: list[str], env: dict[str, str], timeout: float, server_pids: list[int],
            rss_file: Path | None, proxy_pids: list[int]) -> Sample:
    tick = os.sysconf("SC_CLK_TCK")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, server0, proxy0 = _busy_jiffies()[0], _process_jiffies(server_pids), _process_jiffies(proxy_pids)
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Sample(wall=timeout, cpu=0.0, error=f"timed out after {timeout:.0f} s")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy, server = _busy_jiffies()[0] - busy0, _process_jiffies(server_pids) - server0
    proxy = _process_jiffies(proxy_pids) - proxy0
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    sample = Sample(wall=wall, cpu=cpu, server=server / tick, proxy=proxy / tick,
                    others=max(0.0, (busy / tick - cpu - (server + proxy) / tick) / wall))
    if done.returncode != 0:
        sample.error = f"exit {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}"
        return sample
    if rss_file is not None:
        sample.rss = int(rss_file.read_text().split()[-1]) / 1024 if rss_file.exists() else None
    else:
        result = json.loads(done.stdout.strip().splitlines()[-1])
        sample.inner, sample.inner_cpu, sample.rss = result["wall"], result.get("cpu"), result["peak_rss_mib"]
    return sample


def run_tool(tool: Tool, w: Workload, urls: list[str], expected: dict[str, str], scratch: Path,
             server_pids: list[int], timeout: float, proxy: LatencyProxy | None, ca: Path | None = None,
             accepted: Callable[[], int] | None = None) -> Sample:
    """One measured run of ``tool`` on ``w``; ``ca``: the CA certificate it must trust (TLS);
    ``accepted``: nginx's count of accepted connections (its query counts itself)."""
    out = scratch / "out"
    out.mkdir()
    try:
        rss_file: Path | None = None
        if tool.command is not None:
            argv = tool.command(w, urls, out, scratch)
            if ca is not None:
                argv = [argv[0], *TRUST_FLAGS[tool.name](ca), *argv[1:]]
            if Path(GNU_TIME).exists():  # its fork-then-exec keeps the parent's pages out of ru_maxrss
                rss_file = scratch / "rss"
                argv = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *argv]
            env = child_env(python_path=False)
        else:
            spec = scratch / "spec.json"
            spec.write_text(json.dumps({"urls": urls, "folder": str(out), "options": tool.options(w),
                                        "ca": str(ca) if ca is not None else None}))
            argv = [tool.python, str(CLIENTS), str(tool.client), str(spec)]
            env = child_env(python_path=tool.python == sys.executable, root=tool.python_path)
        opened = proxy.connections() if proxy is not None else 0
        before = accepted() if accepted is not None else 0
        sample = measure(argv, env, timeout, server_pids, rss_file, proxy.pids() if proxy is not None else [])
        if accepted is not None:
            sample.accepted = accepted() - before - 1
        if proxy is not None:
            sample.connections = proxy.connections() - opened
        if sample.error is None:
            sample.error = verify(out, expected, tool.leaves)
        return sample
    finally:
        for leftover in scratch.iterdir():
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()


def others_busy(seconds: float = 1.0) -> float:
    """Cores busy (with anything: we are idle meanwhile) over ``seconds``."""
    busy0, total0 = _busy_jiffies()
    time.sleep(seconds)
    busy1, total1 = _busy_jiffies()
    return (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)


def wait_until_quiet(limit: float, max_wait: float) -> float:
    """Poll every 20 s (at most ``max_wait`` in all) until other processes use under
    ``limit`` cores; returns the last figure."""
    deadline = time.monotonic() + max_wait
    busy = others_busy()
    while busy > limit and time.monotonic() < deadline:
        print(f"  machine busy ({busy:.2f} cores used by others, load {os.getloadavg()[0]:.2f}); "
              "waiting 20 s", file=sys.stderr)
        time.sleep(20)
        busy = others_busy()
    return busy


# -- the report ---------------------------------------------------------------------------------

@dataclass
class Row:
    workload: Workload
    tool: Tool
    samples: list[Sample] = field(default_factory=list)

    @property
    def good(self) -> list[Sample]:
        return [s for s in self.samples if s.error is None]

    def median(self, attribute: str) -> float | None:
        values = [getattr(s, attribute) for s in self.good if getattr(s, attribute) is not None]
        return statistics.median(values) if values else None

    def rate(self) -> float | None:
        wall = self.median("wall")
        return self.workload.rate(wall) if wall else None


def table(rows: list[Row]) -> str:
    header = ("work", "tool", "wall s", "rate", "unit", "in-proc", "CPU s", "CPU per", "RSS MiB",
              "vs best other", "conns", "others", "ok")
    lines = [header]
    for row in rows:
        w, rate = row.workload, row.rate()
        rivals = [r.rate() for r in rows if r.workload is w and r.tool.family != row.tool.family]
        best = max((r for r in rivals if r), default=None)
        inner, cpu = row.median("inner"), row.median("cpu")
        rss = max((s.rss for s in row.good if s.rss is not None), default=None)
        lines.append((
            w.key, row.tool.name, _fmt(row.median("wall"), ".2f"), _fmt(rate, ",.0f"), w.unit,
            _fmt(w.rate(inner) if inner else None, ",.0f"), _fmt(cpu, ".2f"),
            _fmt(w.cpu_per_unit(cpu) if cpu is not None else None, ".3f" if w.unit == "files/s" else ".2f",
                 " " + w.cpu_unit),
            _fmt(rss, ".1f"), _fmt(rate / best if rate and best else None, ".2f", "x"), _span(row),
            _fmt(statistics.median(s.others for s in row.samples) if row.samples else None, ".2f"),
            f"{len(row.good)}/{len(row.samples)}",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for number, line in enumerate(lines):
        out.append("  ".join(cell.ljust(width) if i < 2 else cell.rjust(width)
                             for i, (cell, width) in enumerate(zip(line, widths, strict=True))).rstrip())
        if number == 0:
            out.append("-" * len(out[0]))
    return "\n".join(out)


def _span(row: Row) -> str:
    """The connections nginx accepted from the tool per run: one figure, or the least-most."""
    counts = [s.accepted for s in row.good if s.accepted is not None]
    if not counts:
        return "-"
    return str(counts[0]) if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else format(value, spec) + suffix


def target_checks(rows: list[Row]) -> list[str]:
    """The issue's targets, for the rows this run measured."""
    def find(key: str, tool: str) -> Row | None:
        return next((r for r in rows if r.workload.key == key and r.tool.name == tool and r.good), None)

    checks: list[tuple[str, float | None, float | None, bool]] = []  # what, value, bound, higher is better
    w1, req = find("W1", "pydownloads"), find("W1", "requests")
    if w1 and req:
        checks.append(("W1 MB/s vs naive requests (>= 1.2x)", _ratio(w1.rate(), req.rate()), 1.2, True))
    if w1:
        checks.append(("W1 peak RSS MiB (<= 40)", max(s.rss or 0 for s in w1.good), 40, False))
    w2, w2e = find("W2", "pydownloads"), find("W2", "pydownloads+events")
    if w2:
        checks.append(("W2 files/s (>= 3,200)", w2.rate(), 3200, True))
    if w2 and w2e:
        overhead = _ratio(w2e.median("wall"), w2.median("wall"))
        checks.append(("W2 wall with events+progress / without (< 1.10)", overhead, 1.10, False))
    w3, curl3 = find("W3", "pydownloads"), find("W3", "curl")
    if w3 and curl3:
        checks.append(("W3 MB/s vs curl (>= 1.0x)", _ratio(w3.rate(), curl3.rate()), 1.0, True))
    w4, aria4 = find("W4", "pydownloads"), find("W4", "aria2c")
    if w4 and aria4:
        checks.append(("W4 wall vs aria2c -x16 (<= 1.0x)", _ratio(w4.median("wall"), aria4.median("wall")), 1.0,
                       False))
        # Not the issue's measure, shown beside it: the download alone (interpreter start-up and
        # imports excluded, as for a program that has imported pydownloads) against aria2c's wall.
        checks.append(("W4 in-process vs aria2c -x16 wall (<= 1.0x; start-up excluded)",
                       _ratio(w4.median("inner"), aria4.median("wall")), 1.0, False))
    # Issue 14, item 5: "-j 16" took 6.9 s where curl took 3.3 s (1,000 small files behind latency).
    curl5 = find("W5", "curl")
    for name in ("pydownloads", "pydownloads-cli"):
        w5 = find("W5", name)
        if w5 and curl5:
            checks.append((f"W5 wall {name} vs curl --parallel-max 16 (<= 1.0x)",
                           _ratio(w5.median("wall"), curl5.median("wall")), 1.0, False))
    w5 = find("W5", "pydownloads")
    if w5 and curl5:  # as for W4: the download alone, start-up and imports excluded
        checks.append(("W5 in-process pydownloads vs curl wall (<= 1.0x; start-up excluded)",
                       _ratio(w5.median("inner"), curl5.median("wall")), 1.0, False))
    checks += issue_17_checks(find)
    mine = [s.rss for r in rows if r.tool.family == "pydownloads" and "@" not in r.tool.name
            for s in r.good if s.rss is not None]
    if mine:
        checks.append(("pydownloads peak RSS MiB, any workload (<= 60)", max(mine), 60, False))
    lines = []
    for what, value, bound, higher in checks:
        met = value is not None and bound is not None and (value >= bound if higher else value <= bound)
        lines.append(f"  {'met ' if met else 'MISS'}  {what}: {_fmt(value, ',.2f')}")
    return lines


def issue_17_checks(find: Callable[[str, str], Row | None]) -> list[tuple[str, float | None, float | None, bool]]:
    """Issue 17's targets: one large file at the naive loop's MB/s and CPU per byte or better
    (plain and TLS), many small files at parfive's files/s (plain and TLS), the command at
    0.95x the library on many small files."""
    checks: list[tuple[str, float | None, float | None, bool]] = []
    for key in ("W1", "W1s"):
        mine, loop = find(key, "pydownloads"), find(key, "requests")
        if mine and loop:
            checks.append((f"{key} MB/s vs naive requests (>= 1.0x, issue 17)", _ratio(mine.rate(), loop.rate()),
                           1.0, True))
            checks.append((f"{key} CPU per byte vs naive requests (<= 1.0x, issue 17)",
                           _ratio(mine.median("cpu"), loop.median("cpu")), 1.0, False))
    for key in ("W2", "W2s"):
        mine, parfive = find(key, "pydownloads"), find(key, "parfive")
        if mine and parfive:
            checks.append((f"{key} files/s vs parfive (>= 1.0x, issue 17)", _ratio(mine.rate(), parfive.rate()),
                           1.0, True))
        command = find(key, "pydownloads-cli")
        if mine and command:
            checks.append((f"{key} files/s, command vs library (>= 0.95x, issue 17)",
                           _ratio(command.rate(), mine.rate()), 0.95, True))
    return checks


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


# -- main -----------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    names = [t.name for t in all_tools()]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds, not minutes)")
    parser.add_argument("--runs", type=int, default=3, help="runs of every tool on every workload (default 3)")
    parser.add_argument("--only", default="W1,W2,W3,W4,W5,W1s,W2s",
                        help="workloads, comma-separated (default all; W1s and W2s are W1 and W2 over TLS)")
    parser.add_argument("--tools", default=",".join(names), help=f"comma-separated, of: {', '.join(names)}")
    parser.add_argument("--tmp", help="folder for the served data and the downloads (default /dev/shm if roomy)")
    parser.add_argument("--max-busy", type=float, default=None,
                        help="before each run, wait (20 s polls, at most --max-wait) while other processes "
                             "use more cores than this (default 0.5; with --quick: do not wait)")
    parser.add_argument("--max-wait", type=float, default=300.0, help="seconds to wait for a quiet machine")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    parser.add_argument("--chart", type=Path, help="also draw the table as a chart into this PNG (or SVG) file; "
                                                   "needs matplotlib (benchmarks/requirements.txt)")
    parser.add_argument("--from-json", type=Path, metavar="JSON",
                        help="measure nothing: redraw --chart from the file an earlier --json wrote")
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=DIR",
                        help="also run the pydownloads API row with the package in DIR (a copy with a change "
                             "to measure), as tool pydownloads@NAME; repeatable")
    args = parser.parse_args(argv)
    unknown = set(args.tools.split(",")) - set(names)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    if args.max_busy is None:
        args.max_busy = float("inf") if args.quick else 0.5
    return args


@dataclass(frozen=True)
class Servers:
    """The private nginx and, when a workload asks for it, the latency proxy in front of it."""

    nginx: Nginx
    proxy: LatencyProxy | None
    #: the run's CA when a workload is over TLS
    authority: Authority | None = None

    def urls(self, w: Workload) -> list[str]:
        prefix = "/limited/" if w.limited else "/"
        paths = [f"{prefix}{w.folder}/{n}" for n in w.names()]
        if w.tls:
            return [self.nginx.url(path, tls=True) for path in paths]
        front: Nginx | LatencyProxy = self.proxy_for(w) or self.nginx
        return [front.url(path) for path in paths]

    def proxy_for(self, w: Workload) -> LatencyProxy | None:
        return self.proxy if w.delayed else None

    def ca_for(self, w: Workload) -> Path | None:
        """The CA certificate the tools must trust for ``w`` (None over plain HTTP)."""
        return self.authority.cert if w.tls and self.authority is not None else None


@contextmanager
def served(items: list[Workload], tmp: str | None) -> Iterator[tuple[Servers, dict[str, dict[str, str]], Path]]:
    with tempfile.TemporaryDirectory(prefix="pydownloads-bench-", dir=tmp) as base:
        Path(base).chmod(0o755)  # nginx's workers drop privileges: they must reach the data
        data, scratch = Path(base) / "data", Path(base) / "scratch"
        data.mkdir()
        scratch.mkdir()
        digests = generate(data, items)
        authority = make_ca(Path(base) / "ca") if any(w.tls for w in items) else None
        with Nginx(data, rate=RATE_LIMIT, tls=authority) as nginx:
            if not any(w.delayed for w in items):
                yield Servers(nginx, None, authority), digests, scratch
                return
            with LatencyProxy(nginx.port, rtt=RTT) as proxy:
                yield Servers(nginx, proxy, authority), digests, scratch


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        return redraw(args.from_json, args.chart)
    if args.chart and not chart.available():
        print(f"no chart will be drawn: {chart.MISSING}", file=sys.stderr)
    only = {key.strip().upper() for key in args.only.split(",")}
    items = [w for w in workloads(args.quick) if w.key.upper() in only]
    wanted = args.tools.split(",")
    tools = []
    for tool in [t for t in all_tools() if t.name in wanted] + compared_tools(args.compare):
        reason = missing_reason(tool)
        if reason:
            print(f"skipping {tool.name}: {reason}", file=sys.stderr)
        else:
            tools.append(tool)
    rows = [Row(w, t) for w in items for t in tools if t.applies(w)]
    if not rows:
        print("nothing to run", file=sys.stderr)
        return 2
    measure_all(rows, items, args)
    print(describe(items, args))
    print(table(rows))
    print(proxy_report(rows))
    print("\ntargets (issue): ")
    print("\n".join(target_checks(rows)))
    failures = [(r, s) for r in rows for s in r.samples if s.error]
    for row, sample in failures:
        print(f"FAILED {row.workload.key} {row.tool.name}: {sample.error}")
    records = [record(r) for r in rows]
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))
    if args.chart:
        problem = chart.draw(records, args.chart, caption(args))
        print(f"chart not drawn: {problem}" if problem else f"chart: {args.chart}", file=sys.stderr)
    return 1 if failures else 0


def measure_all(rows: list[Row], items: list[Workload], args: argparse.Namespace) -> None:
    """``args.runs`` runs of every row, the tools in a rotating order on each workload."""
    timeout = 120.0 if args.quick else 900.0
    needed = sum(w.count * w.size for w in data_sets(items)) + max(w.count * w.size for w in items)
    with served(items, scratch_root(args.tmp, needed)) as (servers, digests, scratch):
        for run in range(args.runs):
            busy = wait_until_quiet(args.max_busy, args.max_wait) if args.max_busy != float("inf") else None
            print(f"run {run + 1}/{args.runs}" + (f" (others used {busy:.2f} cores before it)" if busy is not None
                                                   else ""), file=sys.stderr)
            for w in items:
                here = [r for r in rows if r.workload is w]
                shift = run % len(here)
                for row in here[shift:] + here[:shift]:  # a rotating order: no tool always goes first
                    sample = run_tool(row.tool, w, servers.urls(w), digests[w.folder], scratch, servers.nginx.pids(),
                                      timeout, servers.proxy_for(w), servers.ca_for(w), servers.nginx.accepted)
                    row.samples.append(sample)
                    print(f"  {w.key} {row.tool.name:18} {sample.wall:7.2f} s  "
                          f"{sample.error or 'ok'}", file=sys.stderr)


def record(row: Row) -> dict[str, Any]:
    """A row as ``--json`` writes it (and ``--from-json`` reads it back for the chart)."""
    w = row.workload
    return {"workload": w.key, "title": w.title, "count": w.count, "size": w.size, "unit": w.unit, "tls": w.tls,
            "tool": row.tool.name, "family": row.tool.family, "samples": [vars(s) for s in row.samples]}


def caption(args: argparse.Namespace) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return (f"pydownloads benchmarks, commit {commit.stdout.strip() or '?'}, {time.strftime('%Y-%m-%d')}: "
            f"medians of {args.runs} run(s), {os.cpu_count()} cores, loopback nginx")


def redraw(source: Path, target: Path | None) -> int:
    """``--from-json``: the chart again from a run's ``--json`` file, nothing measured."""
    if target is None:
        print("--from-json draws a chart: give --chart PATH", file=sys.stderr)
        return 2
    records = json.loads(source.read_text())
    runs = max((len(r["samples"]) for r in records), default=0)
    problem = chart.draw(records, target, f"pydownloads benchmarks, from {source.name}: medians of {runs} run(s)")
    print(f"chart not drawn: {problem}" if problem else f"chart: {target}", file=sys.stderr)
    return 2 if problem else 0


def describe(items: list[Workload], args: argparse.Namespace) -> str:
    lines = [f"\n{args.runs} run(s), medians; {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} now"]
    for w in items:
        lines.append(f"  {w.key}: {w.title}")
        if w.delayed:
            lines.append(f"      floor with {CONCURRENCY} connections kept alive: {latency_floor(w):.2f} s "
                         f"(a round trip per wave of {CONCURRENCY} requests, one more for the handshakes)")
    return "\n".join(lines) + "\n"


def latency_floor(w: Workload) -> float:
    """The least wall time the latency model allows for ``w``: ceil(count / 16) + 1 round trips."""
    return (-(-w.count // CONCURRENCY) + 1) * RTT


def proxy_report(rows: list[Row]) -> str:
    """Per tool behind the latency proxy: the proxy's CPU time (it must not be the bottleneck)
    and the connections the tool opened (each costs a round trip)."""
    lines = [f"  {r.workload.key} {r.tool.name:18} proxy CPU {statistics.median(s.proxy for s in r.samples):.2f} s "
             f"({statistics.median(s.proxy / s.wall for s in r.samples):.0%} of a core), "
             f"connections opened {'/'.join(str(s.connections) for s in r.samples)}"
             for r in rows if r.workload.delayed and r.samples]
    return "\nlatency proxy, per run of each tool (medians; connections per run):\n" + "\n".join(lines) if lines \
        else ""


if __name__ == "__main__":
    sys.exit(main())
