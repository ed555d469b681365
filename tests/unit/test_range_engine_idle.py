"""An idle lane leaves as soon as the last running segment is let go, not at its next poll.

A lane with nothing to take waits while a running segment may yet be worth splitting; when
that segment ends, the lane (and so the download, which joins every lane) must end with it.
The poll interval is raised to 10 s here, so a lane that only polled would keep the test
waiting that long.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from pydownloads.downloads import segments
from pydownloads.downloads.segments import RangeEngine
from pydownloads.downloads.settings import TransferSettings
from pydownloads.infrastructure.files import PartFile
from pydownloads.infrastructure.sidecar import ResumeState

URL = "http://127.0.0.1:9/f.bin"  # never asked: no lane opens a connection here
MIB = 1 << 20


def _engine(tmp_path: Path) -> tuple[RangeEngine, PartFile]:
    part = PartFile(tmp_path / "f.bin", url=URL)
    engine = RangeEngine(session=requests.Session(), url=URL, headers={}, settings=TransferSettings(), part=part,
                         state=ResumeState(url=URL, total=16 * MIB), lanes=2, count_bytes=lambda count: None)
    return engine, part


def _waiting(engine: RangeEngine) -> bool:
    """True once a lane waits on the engine's condition (bounded wait for it)."""
    for _ in range(500):
        if engine._released._waiters:  # type: ignore[attr-defined]
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("how", ["done", "failed"])
def test_an_idle_lane_leaves_when_the_running_segment_ends_or_the_download_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    monkeypatch.setattr(segments, "YOUNG", 20.0)  # a lane that polled would wait 10 s
    engine, part = _engine(tmp_path)
    with engine._lock:  # the first lane's segment: the whole file, too young to split yet
        running = engine._table.claim_first(time.monotonic(), to_end=True)
    found: list[object] = []
    idle = threading.Thread(target=lambda: found.append(engine._await_segment()), daemon=True)
    idle.start()
    try:
        assert _waiting(engine)
        started = time.monotonic()
        if how == "done":
            with engine._lock:
                engine._table.advance(running, running.end)
            engine._let_go(running, requests.Response())
        else:
            engine.abort()
        idle.join(5.0)
        assert not idle.is_alive() and time.monotonic() - started < 5.0
        assert found == [None]
    finally:
        engine.abort()
        idle.join(15.0)
        part.discard()
