"""Memory flat in the number of files with a state file: what a run no longer holds per file,
and what the state file answers for instead (input order, path conflicts, old files)."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest

from pydownloads import DownloadManager, DownloadStatus, FileConfig
from pydownloads.cli import main
from pydownloads.cli._input import InputError
from pydownloads.cli._report import Console, Outcome, report
from pydownloads.cli._source import InputSource
from pydownloads.infrastructure.journal import Journal
from pydownloads.infrastructure.journal_format import SCHEMA_VERSION
from pydownloads.localserver import LocalServer


def test_a_journaled_run_holds_no_record_or_claim_per_completed_file(local_server: LocalServer,
                                                                        tmp_path: Path) -> None:
    """The tracker gives finished downloads back to the state file, and the path claims of the
    completed ones go too (they stayed for the whole run: one string per file)."""
    urls = [local_server.add_file(f"/d/f{i}.bin", b"x" * 16) for i in range(40)]
    with DownloadManager(tmp_path / "out", state_file=tmp_path / "state.db", max_workers=4) as manager:
        manager.add_to_queue(urls)
        manager.queue.join()
        assert manager.tracker.get_stats().completed == 40
        assert manager.tracker._records == {}
        assert manager.worker.claims._owners == {}
        # What library users read still works, from the state file.
        assert list(manager.tracker.get_all_downloads()) == urls
        assert manager.tracker.get_download(urls[7]).status is DownloadStatus.COMPLETED  # type: ignore[union-attr]


def test_a_released_name_is_still_defended_through_the_state_file(local_server: LocalServer, tmp_path: Path) -> None:
    """A download completed to ``x.bin``, its claim given up: another URL of the same run
    naming its file ``x.bin`` is refused (with ``rename``: goes to ``x (1).bin``)."""
    first = local_server.add_file("/a/x.bin", b"first")
    second = local_server.add_file("/b/x.bin", b"second")
    third = local_server.add_file("/c/x.bin", b"third")
    with DownloadManager(tmp_path / "out", state_file=tmp_path / "state.db", max_workers=1) as manager:
        manager.add_to_queue([first])
        manager.queue.join()
        assert manager.worker.claims._owners == {}
        manager.add_to_queue([second])
        manager.queue.join()
        refused = manager.tracker.get_download(second)
    assert refused is not None and refused.status is DownloadStatus.FAILED
    assert refused.error_type == "DestinationConflictError" and first in (refused.error or "")
    assert (tmp_path / "out" / "x.bin").read_bytes() == b"first"
    with DownloadManager(tmp_path / "out2", state_file=tmp_path / "state2.db", max_workers=1,
                         on_existing="rename") as manager:
        manager.add_to_queue([first])
        manager.queue.join()
        manager.add_to_queue([third])
        manager.queue.join()
    assert (tmp_path / "out2" / "x.bin").read_bytes() == b"first"
    assert (tmp_path / "out2" / "x (1).bin").read_bytes() == b"third"


def test_the_json_report_follows_the_input_order_of_a_rerun(local_server: LocalServer, tmp_path: Path) -> None:
    """The report reads the run's downloads back from the state file in the order of this
    run's input, not the order the state file first saw them."""
    urls = [local_server.add_file(f"/f{i}.bin", b"y" * (i + 1)) for i in range(12)]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(urls[:6]) + "\n")
    assert main(["-i", str(listing), "-d", str(tmp_path / "out"), "-q"]) == 0
    listing.write_text("\n".join(reversed(urls)) + "\n")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdout", out)
        assert main(["-i", str(listing), "-d", str(tmp_path / "out"), "--json"]) == 0
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["url"] for r in records] == list(reversed(urls))
    assert [r["outcome"] for r in records] == ["transferred"] * 6 + ["skipped"] * 6


def test_a_rerun_of_many_files_streams_its_input_and_report(local_server: LocalServer, tmp_path: Path) -> None:
    """A rerun over 3,000 downloads, reported as JSON: neither the input nor the records are
    held (as FileConfigs and DownloadInfos they were about 5 MiB here)."""
    url = local_server.add_file("/one.bin", b"z")
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{url}?n={i}\n  out=f{i}.bin\n" for i in range(3000)))
    command = ["-i", str(listing), "-d", str(tmp_path / "out"), "-j", "8", "-q"]
    assert main(command) == 0
    out = _Counting()
    held: list[int] = []

    def measured(outcome: Outcome, console: Console, *, as_json: bool) -> None:
        held.append(tracemalloc.get_traced_memory()[0])  # what the run holds when its report begins
        tracemalloc.reset_peak()
        report(outcome, console, as_json=as_json)
        held.append(tracemalloc.get_traced_memory()[1])  # and the most the report held on top

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdout", out)
        patch.setattr("pydownloads.cli._main.report", measured)
        tracemalloc.start()
        try:
            assert main([*command, "--json"]) == 0
        finally:
            tracemalloc.stop()
    assert out.lines == 3000
    # Held as FileConfigs and DownloadInfos, the 3,000 took over 3 MiB; the report reads a page at a time.
    assert held[0] < 2**20 and held[1] < held[0] + 3 * 2**20, held


class _Counting(io.StringIO):
    """A stdout that counts lines and keeps none."""

    def __init__(self) -> None:
        super().__init__()
        self.lines = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return len(text)


def test_an_old_state_file_opens_and_keeps_every_row(tmp_path: Path) -> None:
    """A version 2 state file (no run or seq, no path index) is migrated in place."""
    state = tmp_path / "old.db"
    db = sqlite3.connect(state)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE downloads (id INTEGER PRIMARY KEY, url TEXT NOT NULL, destination TEXT NOT NULL,
            config TEXT NOT NULL, priority INTEGER NOT NULL, status TEXT NOT NULL,
            bytes INTEGER NOT NULL DEFAULT 0, total INTEGER, attempts INTEGER NOT NULL DEFAULT 0, path TEXT,
            error TEXT, error_type TEXT, started_at REAL, finished_at REAL,
            unchanged INTEGER NOT NULL DEFAULT 0, UNIQUE (url, destination));
        INSERT INTO meta VALUES ('schema_version', '2');
        INSERT INTO downloads (url, destination, config, priority, status, bytes, path, finished_at)
            VALUES ('http://h/a', char(0), '{"url":"http://h/a"}', 0, 'completed', 3, '/x/a', 5.0),
                   ('http://h/b', char(0), '{"url":"http://h/b"}', 0, 'failed', 0, NULL, 6.0);
    """)
    db.commit()
    db.close()
    journal = Journal(state)
    try:
        assert [(info.url, info.status) for info in journal.rows()] == [
            ("http://h/a", DownloadStatus.COMPLETED), ("http://h/b", DownloadStatus.FAILED)]
        again, new = journal.insert(["http://h/b", "http://h/c"])
        assert again is not None and new is None
        assert [info.url for info in journal.run_rows()] == ["http://h/c"]  # b: once its options are written
        journal.adopt([again.id])
        assert [info.url for info in journal.run_rows()] == ["http://h/b", "http://h/c"]
        assert list(journal.carried_rows(0.0)) == [next(journal.rows())]  # the row this run did not add
    finally:
        journal.close()
    db = sqlite3.connect(state)
    try:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
        assert {row[1] for row in db.execute("PRAGMA index_list(downloads)")} >= {"by_run", "by_path"}
    finally:
        db.close()


def test_each_run_of_a_state_file_has_its_own_rows(tmp_path: Path) -> None:
    for run in (1, 2):
        journal = Journal(tmp_path / "state.db")
        try:
            assert journal.run == run
            journal.insert([f"http://h/{run}"])
            assert [info.url for info in journal.run_rows()] == [f"http://h/{run}"]
        finally:
            journal.close()


def test_the_input_is_checked_against_repeats_on_disk_across_batches(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    lines = [f"http://h/{i}" for i in range(12_000)] + ["http://h/3"]
    listing.write_text("\n".join(lines) + "\n")
    source = InputSource(["http://h/11999"], str(listing))
    with pytest.raises(InputError) as raised:
        source.check()
    assert raised.value.problems == [
        f"{listing}:12000: http://h/11999 is already listed at URL argument 1; give each URL once",
        f"{listing}:12001: http://h/3 is already listed at {listing}:4; give each URL once"]


def test_an_input_that_reads_once_is_read_twice_from_a_copy(tmp_path: Path) -> None:
    """A pipe (``-i <(command)``) and standard input: checked, then queued, from a copy."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=('{"url": "http://h/a", "filename": "b"}\n',))
    writer.start()
    source = InputSource([], str(fifo))
    try:
        assert source.check() == 1
        writer.join()
        assert [item.config for item in source] == [FileConfig(url="http://h/a", filename="b")] * 1
        assert [item.where for item in source] == [f"{fifo}:1"]
    finally:
        source.close()
    piped = InputSource(["http://h/0"], "-", stdin=io.StringIO("http://h/1\n  out=one\n\nhttp://h/2\n"))
    try:
        assert piped.check() == 3
        assert [(i.config.url, i.where) for i in piped] == [
            ("http://h/0", "URL argument 1"), ("http://h/1", "<stdin>:1"), ("http://h/2", "<stdin>:4")]
    finally:
        piped.close()


def test_an_input_file_changed_after_its_check_is_refused(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("http://h/a\nhttp://h/b\n", encoding="utf-8")
    source = InputSource([], str(listing))
    try:
        assert source.check() == 2
        with listing.open("a", encoding="utf-8") as more:
            more.write("http://h/c\n")
        with pytest.raises(InputError) as refused:
            next(iter(source))  # before the first entry: its size tells
        assert "changed since it was checked" in refused.value.problems[0]
    finally:
        source.close()
    # Same size and time, other lines: the count read again differs, said once it is known.
    listing.write_text("http://h/a\nhttp://h/b\n", encoding="utf-8")
    source = InputSource([], str(listing))
    try:
        assert source.check() == 2
        when = listing.stat().st_mtime_ns
        listing.write_text("http://h/" + "a" * 12 + "\n", encoding="utf-8")
        os.utime(listing, ns=(when, when))
        with pytest.raises(InputError) as refused:
            list(source)
        assert "1 entries, not the 2 checked" in refused.value.problems[0]
    finally:
        source.close()


def test_the_command_stops_with_status_2_when_its_input_changes(local_server: LocalServer, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    url = local_server.add_file("/a.bin", b"a" * 100)
    listing = tmp_path / "list.txt"
    listing.write_text(url + "\n", encoding="utf-8")
    checked = InputSource.check

    def check_then_change(source: InputSource) -> int:
        count = checked(source)
        listing.write_text(url + "\n" + url.replace("a.bin", "b.bin") + "\n", encoding="utf-8")
        return count

    monkeypatch.setattr(InputSource, "check", check_then_change)
    assert main(["-i", str(listing), "-d", str(tmp_path / "out"), "-q"]) == 2
    assert "the input file changed since it was checked" in capsys.readouterr().err
    assert local_server.requests == []


NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx); the benchmark needs it")
def test_the_end_to_end_memory_benchmark_compares_two_counts() -> None:
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "journal.py"), "--command", "200", "400", "--workers", "4"],
        capture_output=True, text=True, cwd=root, timeout=60, env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "exit 0, 200 files in the folder" in result.stdout and "exit 0, 400 files in the folder" in result.stdout
    assert "MiB for 200 / 400 files: the last" in result.stdout and "KiB per file between them" in result.stdout
