"""``pydownloads demo``: a local server, a planned batch, progress, retries, and a byte check.

Everything the demo claims is checked: each file that should arrive has the sha256 of the
bytes served, the one that should fail failed with 404, the flaky one needed a retry, and
the files of highest priority were asked for first.  The exit status is 0 only if all of that held.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydownloads.cli._args import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, PROG, build_demo_parser
from pydownloads.cli._report import Console, Outcome, report
from pydownloads.cli._run import RunSettings, command_settings, run
from pydownloads.domain.errors import FileSystemError, InvalidArgumentError
from pydownloads.domain.models import DownloadInfo, DownloadStatus, FileConfig
from pydownloads.domain.retry import RetryConfig
from pydownloads.localserver import Fault, LocalServer, Status
from pydownloads.progress import format_bytes

KIB, MIB = 1024, 1024 * 1024
RETRY = RetryConfig(max_retries=3, base_delay=0.5, max_delay=5.0)


@dataclass(frozen=True, kw_only=True)
class DemoFile:
    """One file of the demo and what is meant to happen to it."""

    name: str
    size: int = 0
    note: str = ""
    priority: int = 0
    rate: int | None = None
    faults: tuple[Fault, ...] = ()
    send_length: bool = True
    served: bool = True  # False: the server has no such file and answers 404
    attempts: int = 1  # attempts the download should take
    data: bytes = field(default=b"", repr=False)

    @property
    def expect_completed(self) -> bool:
        return self.served


PLAN: tuple[DemoFile, ...] = (
    DemoFile(name="big.iso", size=20 * MIB, rate=6 * MIB, note="throttled to 6 MiB/s a connection"),
    DemoFile(name="photo.jpg", size=3 * MIB),
    DemoFile(name="slow.bin", size=1 * MIB, rate=512 * KIB, note="throttled to 512 KiB/s"),
    DemoFile(name="flaky.bin", size=2 * MIB, rate=2 * MIB, faults=(Status(503, {"Retry-After": "1"}),),
             attempts=2, note="answers 503 (Retry-After: 1) once, then the file"),
    DemoFile(name="stream.log", size=3 * MIB // 2, rate=1 * MIB, send_length=False,
             note="sent without Content-Length (size unknown)"),
    DemoFile(name="notes.txt", size=8 * KIB, priority=5, note="priority 5"),
    DemoFile(name="urgent.bin", size=256 * KIB, priority=10, note="priority 10: listed late, asked for first"),
    DemoFile(name="missing.bin", served=False, priority=-1, note="not on the server: fails with 404, as planned"),
)
#: Seconds the demo waits for the first requests to arrive at the gate (see _Gate).
_GATE_TIMEOUT = 10.0


def run_demo(argv: Sequence[str]) -> tuple[int, Outcome | None]:
    """Run the demo with ``argv`` (the arguments after ``demo``); returns (status, outcome)."""
    parser = build_demo_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit_:
        return (exit_.code if isinstance(exit_.code, int) else EXIT_USAGE), None
    console = Console(sys.stdout, sys.stderr, quiet=args.quiet)
    plan = [_with_data(item, seed) for seed, item in enumerate(PLAN)]
    settings = RunSettings(
        download_dir=args.dir, download=command_settings(args.jobs, retry_config=RETRY),
        progress=args.progress or (not args.quiet and sys.stderr.isatty()),
    )
    with LocalServer() as server:
        configs = [_serve(server, item) for item in plan]
        _introduce(console, server, settings, plan)
        gate = _Gate(server, [f"/files/{item.name}" for item in plan], min(settings.workers, len(plan)))
        try:
            outcome = run(configs, settings, console)
        except (InvalidArgumentError, FileSystemError) as error:
            console.error(f"{PROG} demo: error: {error}")
            return EXIT_USAGE, None
        finally:
            gate.close()
    report(outcome, console, as_json=args.json)
    if outcome.interrupted:
        return EXIT_INTERRUPTED, outcome
    problems = _verify(console, plan, outcome)
    problems += _verify_priorities(console, plan, gate.first)
    if problems:
        for problem in problems:
            console.error(f"MISMATCH {problem}")
        console.error(f"Demo FAILED: {len(problems)} outcome(s) differ from the plan.")
        return EXIT_FAILED, outcome
    completed = sum(1 for item in plan if item.expect_completed)
    console.say(f"Demo OK: {completed} files verified byte for byte (sha256), "
                f"{len(plan) - completed} failed as planned. Files are in {args.dir}")
    return EXIT_OK, outcome


def _with_data(item: DemoFile, seed: int) -> DemoFile:
    if not item.served:
        return item
    data = random.Random(seed).randbytes(item.size)
    return dataclasses.replace(item, data=data)


def _serve(server: LocalServer, item: DemoFile) -> FileConfig:
    path = f"/files/{item.name}"
    if item.served:
        server.add_file(path, item.data, rate=item.rate, send_length=item.send_length)
    if item.faults:
        server.add_faults(path, *item.faults)
    return FileConfig(url=server.url(path), priority=item.priority)


def _introduce(console: Console, server: LocalServer, settings: RunSettings, plan: list[DemoFile]) -> None:
    console.say(f"{PROG} demo: a local server at {server.base_url} serves {len(plan)} generated files;")
    console.say(f"downloading them into {settings.download_dir.absolute()} with {settings.workers} workers:")
    width = max(len(item.name) for item in plan)
    for item in plan:
        size = format_bytes(item.size) if item.served else "-"
        console.say(f"  {item.name:<{width}}  {size:>9}  {item.note}".rstrip())


class _Gate:
    """Holds every planned file at the server until the first ``count`` requests wait there.

    Each worker takes one download from the queue and asks for it; held, none can finish and
    take another.  So the files of those first ``count`` requests are exactly the first
    ``count`` the queue handed out, whatever the thread timing: the priority check is exact.
    A helper thread watches the server and opens the gate (or gives up after a timeout).
    """

    def __init__(self, server: LocalServer, paths: list[str], count: int) -> None:
        self._server = server
        self._paths = paths
        self._count = count
        self._closed = threading.Event()
        self.first: list[str] = []
        for path in paths:
            server.hold(path)
        self._thread = threading.Thread(target=self._watch, name="pydownloads-demo-gate", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        deadline = time.monotonic() + _GATE_TIMEOUT
        while len(self._server.requests) < self._count and time.monotonic() < deadline:
            if self._closed.wait(0.005):  # the run ended first (an interruption)
                break
        self.first = [record.path.rsplit("/", 1)[-1] for record in self._server.requests[: self._count]]
        for path in self._paths:
            self._server.release(path)

    def close(self) -> None:
        """Open the gate if it is still shut, and wait for the watcher."""
        self._closed.set()
        self._thread.join()


def _verify(console: Console, plan: list[DemoFile], outcome: Outcome) -> list[str]:
    """Check every planned outcome; print each check; return what differs from the plan."""
    console.say("Checking every outcome against the plan:")
    problems: list[str] = []
    for item, info in zip(plan, outcome.downloads, strict=True):
        problem = _check(item, info)
        if problem is not None:
            problems.append(f"{item.name}: {problem}")
            continue
        detail = f"failed as planned ({info.error_type}: HTTP 404)" if not item.expect_completed else (
            f"sha256 {_sha256_file(info.path)[:16]}… matches the bytes served")
        if item.attempts > 1:
            detail += f", after {info.attempts} attempts"
        console.say(f"  ok  {item.name}: {detail}")
    return problems


def _verify_priorities(console: Console, plan: list[DemoFile], first: list[str]) -> list[str]:
    """The first requests must be for the files of highest priority (plan order among equals)."""
    by_priority = sorted(plan, key=lambda item: -item.priority)  # stable: plan order among equals
    expected = [item.name for item in by_priority[: len(first)]] if first else ["(no request came)"]
    if sorted(first) != sorted(expected):
        return [f"priorities: the first requests were for {', '.join(first) or 'nothing'}, "
                f"not {', '.join(expected)}"]
    shown = ", ".join(f"{item.name} ({item.priority})" for item in by_priority[: len(first)])
    console.say(f"  ok  the first {len(first)} requests were the files of highest priority: {shown}")
    return []


def _check(item: DemoFile, info: DownloadInfo) -> str | None:
    """What is wrong with ``info`` given the plan for ``item``, or None."""
    if not item.expect_completed:
        if info.status is not DownloadStatus.FAILED or "404" not in (info.error or ""):
            return f"expected to fail with HTTP 404, but it ended {info.status.value}: {info.error}"
        return None
    if info.status is not DownloadStatus.COMPLETED or info.path is None:
        return f"expected to complete, but it ended {info.status.value}: {info.error}"
    digest, expected = _sha256_file(info.path), hashlib.sha256(item.data).hexdigest()
    if digest != expected:
        return f"sha256 {digest} of {info.path} differs from the {expected} served"
    if info.attempts != item.attempts:
        return f"expected {item.attempts} attempt(s), took {info.attempts}"
    return None


def _sha256_file(path: Path | None) -> str:
    digest = hashlib.sha256()
    if path is None:
        return ""
    with path.open("rb") as file:
        while chunk := file.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()

