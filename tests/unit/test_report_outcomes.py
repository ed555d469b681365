"""The end of a run reports every download it touched, each with how it ended this time and
this run's bytes only (no sockets: snapshots built by hand)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from pydownloads.cli._main import exit_status
from pydownloads.cli._report import Console, Outcome, record, report, summary_lines
from pydownloads.domain.models import DownloadInfo, DownloadStatus
from pydownloads.results import DownloadResults

STARTED = 1000.0


def _info(name: str, status: DownloadStatus = DownloadStatus.COMPLETED, *, finished_at: float = 1500.0,
          size: int = 4096, resumed_from: int = 0, unchanged: bool = False) -> DownloadInfo:
    return DownloadInfo(url=f"https://e.com/{name}", status=status, bytes_downloaded=size, total_bytes=size,
                        path=Path(name), started_at=finished_at - 1, finished_at=finished_at, attempts=1,
                        resumed_from=resumed_from, unchanged=unchanged,
                        error="HTTP 404 Not Found" if status is DownloadStatus.FAILED else None,
                        error_type="HTTPStatusError" if status is DownloadStatus.FAILED else None)


def _records(outcome: Outcome) -> dict[str, dict[str, object]]:
    console = Console(io.StringIO(), io.StringIO())
    report(outcome, console, as_json=True)
    stdout = console.stdout.getvalue()  # type: ignore[attr-defined]
    return {str(r["url"]).rsplit("/", 1)[-1]: r for r in map(json.loads, stdout.splitlines())}


def test_each_record_says_how_it_ended_and_this_runs_bytes() -> None:
    outcome = Outcome(
        downloads=[_info("new"), _info("part", size=4096, resumed_from=3072),
                   _info("old", finished_at=500.0), _info("same", size=0, unchanged=True)],
        carried_over=[_info("left", DownloadStatus.FAILED, size=10, resumed_from=10)],
        elapsed=1.0, started_at=STARTED, state_file=Path("s.db"))
    got = _records(outcome)
    assert {name: r["outcome"] for name, r in got.items()} == {
        "new": "transferred", "part": "resumed", "old": "skipped", "same": "unchanged", "left": "carried over"}
    assert {name: r["bytes"] for name, r in got.items()} == {"new": 4096, "part": 1024, "old": 0, "same": 0,
                                                             "left": 0}
    assert (got["part"]["size"], got["part"]["resumed_from"]) == (4096, 3072)
    assert (got["old"]["size"], got["old"]["attempts"]) == (4096, 0)
    assert got["left"]["size"] is None and got["left"]["status"] == "failed"
    assert exit_status(outcome) == 1  # the carried over failure counts


def test_the_summary_counts_only_this_runs_bytes_of_a_resume() -> None:
    outcome = Outcome(downloads=[_info("part", size=64 << 20, resumed_from=48 << 20)], elapsed=2.0,
                      started_at=STARTED)
    assert outcome.bytes == 16 << 20
    assert summary_lines(outcome)[0] == "1 completed, 0 failed, 0 cancelled: 16.0 MiB in 2.0 s (8.0 MiB/s)"


def test_a_carried_over_failure_has_its_failure_line() -> None:
    outcome = Outcome(downloads=[_info("new")], carried_over=[_info("left", DownloadStatus.FAILED)],
                      elapsed=1.0, started_at=STARTED, state_file=Path("s.db"))
    assert summary_lines(outcome)[-1] == "FAILED https://e.com/left: HTTP 404 Not Found (HTTPStatusError, 1 attempt)"


def test_a_record_without_a_run_reads_its_outcome_from_the_snapshot() -> None:
    assert record(_info("part", resumed_from=1))["outcome"] == "resumed"
    assert record(_info("new", finished_at=1.0))["outcome"] == "transferred"  # no run: never skipped


def test_the_library_results_say_the_same() -> None:
    results = DownloadResults.of([_info("new"), _info("part", resumed_from=4000), _info("old", finished_at=500.0)],
                                 started_at=STARTED)
    assert [results.outcome(info) for info in results.downloads.values()] == ["transferred", "resumed", "skipped"]
    assert results.bytes_this_run == 4096 + 96
