"""A process killed with SIGKILL loses no final status it had reported: every download an
event or the tracker called completed is completed in the state file, and a rerun does not
fetch it again (final statuses share commits: the group commit keeps that promise)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from pydownloads import DownloadManager, RetryConfig
from pydownloads.infrastructure.journal import Journal
from pydownloads.localserver import LocalServer
from tests.integration.helpers import file_sha256, payload, sha256

ROOT = Path(__file__).resolve().parents[2]
FILES = 240
#: The child reports each completion as an event, and the tracker's count of completed
#: downloads after each: one line each, flushed, so that what the parent read was reported.
CHILD = """
import sys, threading
from pydownloads import DownloadManager
lock = threading.Lock()
with DownloadManager(sys.argv[1], max_workers=8, state_file=sys.argv[2]) as m:
    def on_completed(event):
        count = m.tracker.get_stats().completed
        with lock:
            print("completed", event.url, flush=True)
            print("count", count, flush=True)
    m.emitter.on("worker.completed", on_completed)
    m.add_to_queue(sys.stdin.read().split())
    m.queue.join()
print("done", flush=True)
"""


def _kill_after(child: subprocess.Popen[str], completions: int) -> list[str]:
    """Read the child's lines until ``completions`` were reported, kill it, and return every
    line it wrote (those written before it died included)."""
    assert child.stdout is not None
    lines: list[str] = []
    for line in child.stdout:
        lines.append(line.split())
        if sum(1 for words in lines if words[0] == "completed") >= completions:
            break
    child.send_signal(signal.SIGKILL)
    lines += [line.split() for line in child.stdout]
    child.wait(10)
    return [" ".join(words) for words in lines]


def test_sigkill_loses_no_reported_completion(local_server: LocalServer, tmp_path: Path) -> None:
    bodies = {f"/f{i}.bin": payload(2048, i) for i in range(FILES)}
    urls = [local_server.add_file(path, body, rate=64 << 10) for path, body in bodies.items()]  # ~30 ms each
    state = tmp_path / "state.db"
    out = tmp_path / "out"
    completions = random.Random(os.getpid()).randrange(10, FILES // 2)  # a moment mid-run
    with subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(state)], cwd=ROOT, text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}) as child:
        assert child.stdin is not None
        child.stdin.write("\n".join(urls))
        child.stdin.close()
        try:
            lines = _kill_after(child, completions)
        finally:
            child.kill()
    assert child.returncode == -signal.SIGKILL and "done" not in lines, "killed mid-run"
    reported = {line.split()[1] for line in lines if line.startswith("completed ")}
    counted = max(int(line.split()[1]) for line in lines if line.startswith("count "))
    assert len(reported) >= completions

    journal = Journal(state)  # what the killed run committed
    try:
        stored = {url: journal.lookup(url) for url in urls}
        completed_now = journal.counts().get("completed", 0)
    finally:
        journal.close()
    lost = sorted(url for url in reported if (info := stored[url]) is None or info.status.value != "completed")
    assert lost == [], "reported completed, not completed in the state file"
    assert completed_now >= counted, "the tracker counted completions the state file does not hold"

    assert local_server.wait_idle()
    local_server.reset_stats()
    with DownloadManager(out, max_workers=8, state_file=state,
                         retry_config=RetryConfig(max_retries=2, base_delay=0.01, max_delay=0.02)) as m:
        m.add_to_queue(urls)
        m.queue.join()
        assert m.tracker.get_stats().completed == FILES
    refetched = {record.path for record in local_server.requests if record.method == "GET"}
    assert not refetched & {url.removeprefix(local_server.base_url) for url in reported}
    for path, body in bodies.items():
        assert file_sha256(out / path.lstrip("/")) == sha256(body)
