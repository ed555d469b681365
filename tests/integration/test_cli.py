"""The ``pydownloads`` command through a real subprocess against the local server."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import pytest

from pydownloads import __version__
from pydownloads.localserver import LocalServer, ResetAfter, StallHeaders, Status
from tests.integration.clirun import cli_command, cli_env, run_cli
from tests.integration.helpers import file_sha256, files_under, payload, sha256
from tests.support import wait_until

STATE = ".pydownloads-state.db"


def serve(server: LocalServer, count: int, *, size: int = 20_000, prefix: str = "f", **options: object) -> list[str]:
    return [server.add_file(f"/{prefix}{i}.bin", payload(size, i), **options) for i in range(count)]  # type: ignore[arg-type]


def downloaded(root: Path) -> list[Path]:
    """Every file below ``root`` but the state file the command keeps (and SQLite's companions)."""
    return [p for p in files_under(root) if not p.name.startswith(STATE)]




# -- the basics -------------------------------------------------------------------------------


def test_help_version_and_the_console_script(tmp_path: Path) -> None:
    helped = run_cli("--help", cwd=tmp_path)
    assert helped.returncode == 0
    for text in ("usage: pydownloads [options] URL... | -i FILE", "pydownloads demo", "what to download",
                 "--input-file", "--jobs", "--retries", "--timeout", "--header", "--user-agent", "--proxy",
                 "--quiet", "--progress", "--json", "exit status:", "130 interrupted", "key=value",
                 "--segments", "--max-per-host", "--limit-rate", "--min-speed", "--min-speed-time", "--deadline",
                 "--checksum", "--state", "--no-state", "--retry-failed", "pydownloads status", "limit-rate=500K",
                 "--if-changed", "--on-existing", "--user", "--netrc-file", "--no-netrc", "--cookies", "--ca-bundle",
                 "--insecure", "--dask-scheduler", "--shard-size", "if-changed=true", "<TAB>"):
        assert text in helped.stdout
    version = run_cli("--version", cwd=tmp_path)
    assert (version.returncode, version.stdout.strip()) == (0, f"pydownloads {__version__}")
    demo_help = run_cli("demo", "--help", cwd=tmp_path)
    assert demo_help.returncode == 0 and "usage: pydownloads demo" in demo_help.stdout
    scripts = {ep.name: ep.value for ep in metadata.entry_points(group="console_scripts")}
    assert scripts.get("pydownloads") == "pydownloads.cli:main"


def test_downloads_every_url_and_prints_a_summary(local_server: LocalServer, tmp_path: Path) -> None:
    urls = serve(local_server, 3)
    result = run_cli(*urls, "-d", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for i in range(3):
        assert file_sha256(tmp_path / "out" / f"f{i}.bin") == sha256(payload(20_000, i))
    assert result.stdout == ""
    assert "3 completed, 0 failed, 0 cancelled: 58.6 KiB in " in result.stderr
    assert "total:" not in result.stderr  # no bars when standard error is not a terminal


def test_the_default_folder_is_the_current_one(local_server: LocalServer, tmp_path: Path) -> None:
    (url,) = serve(local_server, 1)
    assert run_cli(url, "-q", cwd=tmp_path).returncode == 0
    assert downloaded(tmp_path) == [tmp_path / "f0.bin"]


def test_a_failure_exits_1_and_the_summary_gives_its_reason(local_server: LocalServer, tmp_path: Path) -> None:
    (good,) = serve(local_server, 1)
    missing = local_server.url("/missing.bin")
    result = run_cli(good, missing, cwd=tmp_path)
    assert result.returncode == 1
    assert "1 completed, 1 failed, 0 cancelled" in result.stderr
    assert f"FAILED {missing}: HTTP 404 Not Found (HTTPStatusError, 1 attempt)" in result.stderr


def test_json_prints_one_record_per_download_in_input_order(local_server: LocalServer, tmp_path: Path) -> None:
    urls = serve(local_server, 2)
    missing = local_server.url("/missing.bin")
    result = run_cli(urls[1], missing, urls[0], "--json", cwd=tmp_path)
    assert result.returncode == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["url"] for r in records] == [urls[1], missing, urls[0]]
    assert set(records[0]) == {"url", "status", "outcome", "path", "bytes", "size", "resumed_from", "total_bytes",
                               "attempts", "unchanged", "error", "error_type", "elapsed"}
    assert records[0]["unchanged"] is False
    assert (records[0]["outcome"], records[0]["size"], records[0]["resumed_from"]) == ("transferred", 20_000, 0)
    assert records[0]["status"] == "completed" and records[0]["path"] == str(tmp_path / "f1.bin")
    assert (records[0]["bytes"], records[0]["total_bytes"], records[0]["attempts"]) == (20_000, 20_000, 1)
    assert records[0]["error"] is None and records[0]["elapsed"] >= 0
    assert records[1]["status"] == "failed" and records[1]["path"] is None
    assert records[1]["error_type"] == "HTTPStatusError" and "404" in records[1]["error"]
    assert "completed," not in result.stderr  # the records replace the summary


def test_quiet_prints_only_errors(local_server: LocalServer, tmp_path: Path) -> None:
    (url,) = serve(local_server, 1)
    ok = run_cli(url, "--quiet", cwd=tmp_path)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    local_server.add_faults("/f0.bin", Status(503, {"Retry-After": "0"}))
    missing = local_server.url("/missing.bin")
    failed = run_cli(url, missing, "-q", "-d", "again", cwd=tmp_path)
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.splitlines() == [f"FAILED {missing}: HTTP 404 Not Found (HTTPStatusError, 1 attempt)"]


def test_progress_bars_on_request_even_without_a_terminal(local_server: LocalServer, tmp_path: Path) -> None:
    urls = serve(local_server, 2)
    result = run_cli(*urls, "--progress", cwd=tmp_path)
    assert result.returncode == 0
    assert "total: 2/2 files, 39.1 KiB" in result.stderr
    assert "2 completed, 0 failed" in result.stderr


# -- where files go ---------------------------------------------------------------------------


def test_output_names_the_file_of_a_single_url(local_server: LocalServer, tmp_path: Path) -> None:
    (url,) = serve(local_server, 1)
    result = run_cli(url, "-o", "renamed.dat", "-d", "out", cwd=tmp_path)
    assert result.returncode == 0
    assert downloaded(tmp_path) == [tmp_path / "out" / "renamed.dat"]


def test_output_with_more_than_one_url_is_a_usage_error(local_server: LocalServer, tmp_path: Path) -> None:
    urls = serve(local_server, 2)
    result = run_cli(*urls, "-o", "one.dat", cwd=tmp_path)
    assert result.returncode == 2
    assert "pydownloads: error: -o/--output needs exactly one URL, not 2" in result.stderr
    assert "usage:" in result.stderr
    path = run_cli(urls[0], "-o", "sub/one.dat", cwd=tmp_path)
    assert path.returncode == 2 and "is a path" in path.stderr
    assert local_server.requests == [] and files_under(tmp_path) == []


def test_a_download_folder_that_cannot_be_made_is_a_usage_error(local_server: LocalServer, tmp_path: Path) -> None:
    (url,) = serve(local_server, 1)
    (tmp_path / "file").write_text("not a folder")
    result = run_cli(url, "-d", "file/sub", cwd=tmp_path)
    assert result.returncode == 2 and "pydownloads: error: cannot create download_dir" in result.stderr
    assert local_server.requests == []


# -- input files ------------------------------------------------------------------------------


def test_an_aria2c_style_input_file(local_server: LocalServer, tmp_path: Path) -> None:
    urls = serve(local_server, 3)
    (tmp_path / "list.txt").write_text(
        f"# three files\n{urls[0]}\n\n{urls[1]}\n  priority=5\n  out=second.bin\n  dir=nested/deeper\n"
        f"{urls[2]}\n  priority=10\n  header=X-Token: abc\n  header=X-Other: 1\n",
        encoding="utf-8",
    )
    result = run_cli("-i", "list.txt", "-j", "1", "-d", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert file_sha256(out / "nested" / "deeper" / "second.bin") == sha256(payload(20_000, 1))
    assert downloaded(out) == sorted([out / "f0.bin", out / "nested" / "deeper" / "second.bin", out / "f2.bin"])
    # one worker: the highest priority is asked for first
    assert [r.path for r in local_server.requests] == ["/f2.bin", "/f1.bin", "/f0.bin"]
    headers = local_server.requests[0].headers
    assert (headers.get("X-Token"), headers.get("X-Other")) == ("abc", "1")
    assert "X-Token" not in local_server.requests[1].headers


def test_a_json_lines_input_file_with_urls_as_arguments_too(local_server: LocalServer, tmp_path: Path) -> None:
    urls = serve(local_server, 3)
    lines = [{"url": urls[0], "filename": "zero.bin", "destination_subdir": "j", "headers": {"X-A": "1"}},
             {"url": urls[1], "priority": 7}]
    (tmp_path / "list.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    result = run_cli(urls[2], "-i", "list.jsonl", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["url"] for line in result.stdout.splitlines()] == [urls[2], urls[0], urls[1]]
    assert (tmp_path / "j" / "zero.bin").is_file() and (tmp_path / "f1.bin").is_file()
    assert next(r for r in local_server.requests if r.path == "/f0.bin").headers.get("X-A") == "1"


def test_input_from_standard_input(local_server: LocalServer, tmp_path: Path) -> None:
    urls = serve(local_server, 2)
    result = run_cli("-i", "-", cwd=tmp_path, stdin=f"{urls[0]}\n  out=a.bin\n{urls[1]}\n")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in downloaded(tmp_path)) == ["a.bin", "f1.bin"]
    jsonl = run_cli("-i", "-", "-d", "j", cwd=tmp_path, stdin=json.dumps({"url": urls[0]}) + "\n")
    assert jsonl.returncode == 0 and (tmp_path / "j" / "f0.bin").is_file()


def test_malformed_input_lines_start_nothing(local_server: LocalServer, tmp_path: Path) -> None:
    urls = serve(local_server, 2)
    (tmp_path / "bad.txt").write_text(f"{urls[0]}\n  colour=red\n{urls[1]}\n  priority=high\n", encoding="utf-8")
    result = run_cli("-i", "bad.txt", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "bad.txt:2: unknown option 'colour'; known: checksum, continue, dir, header, if-changed, limit-rate, out, "
        "priority, segments",
        "bad.txt:4: priority must be a whole number, not 'high'",
        "pydownloads: nothing was downloaded: fix the input and run again",
    ]
    (tmp_path / "bad.jsonl").write_text(f'{{"url": "{urls[0]}"}}\n{{"url": \n', encoding="utf-8")
    jsonl = run_cli("-i", "bad.jsonl", cwd=tmp_path)
    assert jsonl.returncode == 2 and jsonl.stderr.startswith("bad.jsonl:2: not valid JSON: ")
    assert local_server.requests == [] and sorted(p.name for p in files_under(tmp_path)) == ["bad.jsonl", "bad.txt"]


def test_usage_errors_exit_2(
    local_server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydownloads.cli import main

    process = run_cli(cwd=tmp_path)  # one through a real process; the rest in this one, for speed
    assert process.returncode == 2 and "give at least one URL, or -i FILE" in process.stderr
    (url,) = serve(local_server, 1)
    monkeypatch.chdir(tmp_path)
    cases = {
        ("ftp://example.com/a",): "URL argument 1: only http and https URLs can be downloaded",
        (url, url): f"URL argument 2: {url} is already listed at URL argument 1",
        ("-i", "nowhere.txt"): "nowhere.txt: cannot read the input file: No such file or directory",
        ("-j", "0", url): "argument -j/--jobs: 0 is less than 1",
        ("--header", "Bad Name: x", url): "pydownloads: error: invalid header name 'Bad Name'",
        ("--bogus", url): "unrecognized arguments: --bogus",
        ("-x", "0", url): "argument -x/--segments: 0 is less than 1",
        ("--max-per-host", "0", url): "argument --max-per-host: 0 is less than 1",
        ("--limit-rate", "0", url): "argument --limit-rate: '0' is not a number of bytes per second > 0",
        ("--limit-rate", "fast", url): "argument --limit-rate: invalid size 'fast'",
        ("--deadline", "-1", url): "argument --deadline: -1 is not a number of seconds > 0",
        ("--min-speed-time", "5", url): "pydownloads: error: --min-speed-time needs --min-speed",
        ("--checksum", "md5:zz", url): "argument --checksum: a md5 checksum is 32 hex digits, not 'zz'",
        ("--checksum", "crc32:00", url): "argument --checksum: unknown checksum algorithm 'crc32'",
        (url, local_server.url("/b"), "--checksum", "md5:" + "0" * 32): "--checksum needs exactly one URL, not 2",
        ("--no-state", "--retry-failed", url): "--retry-failed needs a state file: it cannot go with --no-state",
        ("--state", "s.db", "--no-state", url): "argument --no-state: not allowed with argument --state",
        ("--on-existing", "keep", url): "argument --on-existing: invalid choice: 'keep'",
        ("--shard-size", "10", url): "--shard-size needs --dask-scheduler",
        ("--dask-scheduler", "tcp://127.0.0.1:1", "--state", "s.db", url):
            "--state does not apply with --dask-scheduler: each shard keeps a state file of its own",
        ("--dask-scheduler", "tcp://127.0.0.1:1", "--retry-failed", url): "--retry-failed does not apply with",
        ("--dask-scheduler", "tcp://127.0.0.1:1", "--no-netrc", url): "do not reach the Dask workers",
        ("--netrc-file", "n", "--no-netrc", url): "argument --no-netrc: not allowed with argument --netrc-file",
    }
    for args, message in cases.items():
        assert main(list(args)) == 2, args
        assert message in capsys.readouterr().err, args
    assert local_server.requests == []


def test_an_empty_input_file_has_nothing_to_do(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("# nothing yet\n", encoding="utf-8")
    result = run_cli("-i", "empty.txt", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "Nothing to download: the input has no URL.\n")


# -- requests ---------------------------------------------------------------------------------


def test_headers_and_user_agent_go_with_every_request(local_server: LocalServer, tmp_path: Path) -> None:
    urls = serve(local_server, 2)
    result = run_cli(*urls, "-H", "X-One: 1", "--header", "X-Two:  two words ", "--user-agent", "agent/9",
                     cwd=tmp_path)
    assert result.returncode == 0
    for record in local_server.requests:
        assert record.headers.get("X-One") == "1" and record.headers.get("X-Two") == "two words"
        assert record.headers.get("User-Agent") == "agent/9"
    default = run_cli(urls[0], "-d", "d", cwd=tmp_path)
    assert default.returncode == 0
    assert local_server.requests[-1].headers.get("User-Agent") == f"pydownloads/{__version__}"


def test_retries_are_announced_and_bounded_by_the_option(local_server: LocalServer, tmp_path: Path) -> None:
    (url,) = serve(local_server, 1)
    local_server.add_faults("/f0.bin", *[Status(503, {"Retry-After": "0"})] * 2)
    enough = run_cli(url, "--retries", "2", "--json", cwd=tmp_path)
    assert enough.returncode == 0, enough.stderr
    assert json.loads(enough.stdout)["attempts"] == 3
    assert f"retrying {url} in 0.0 s (HTTP 503 Service Unavailable; attempt 2)" in enough.stderr
    assert f"retrying {url} in 0.0 s (HTTP 503 Service Unavailable; attempt 3)" in enough.stderr
    local_server.add_faults("/f0.bin", *[Status(503, {"Retry-After": "0"})] * 2)
    too_few = run_cli(url, "--retries", "1", "--json", "-d", "again", cwd=tmp_path)
    assert too_few.returncode == 1
    record = json.loads(too_few.stdout)
    assert (record["status"], record["attempts"], record["error_type"]) == ("failed", 2, "HTTPStatusError")


def test_timeout_bounds_the_wait_for_a_silent_server(local_server: LocalServer, tmp_path: Path) -> None:
    (url,) = serve(local_server, 1)
    local_server.add_faults("/f0.bin", StallHeaders(3.0))
    started = time.monotonic()
    result = run_cli(url, "--timeout", "0.3", "--retries", "0", "--json", cwd=tmp_path)
    assert time.monotonic() - started < 2.5
    assert result.returncode == 1
    record = json.loads(result.stdout)
    # DownloadTimeoutError would be the precise type; the transport boundary currently reports a
    # read timeout whose retries ran out as TransferError, with the same message.
    assert record["error_type"] in {"DownloadTimeoutError", "TransferError"}
    assert "timed out" in record["error"].lower()


def test_proxy_option_and_proxy_environment(local_server: LocalServer, tmp_path: Path) -> None:
    local_server.add_file("/via-proxy.bin", b"proxied bytes")
    url = "http://files.example.invalid/via-proxy.bin"  # resolvable only through the proxy
    result = run_cli(url, "--proxy", local_server.base_url, "-d", "option", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "option" / "via-proxy.bin").read_bytes() == b"proxied bytes"
    assert local_server.requests[-1].target == url  # the absolute form a proxy receives
    from_env = run_cli(url, "-d", "env", cwd=tmp_path, http_proxy=local_server.base_url)
    assert from_env.returncode == 0, from_env.stderr
    assert (tmp_path / "env" / "via-proxy.bin").read_bytes() == b"proxied bytes"
    assert len(local_server.requests) == 2


def test_the_proxy_option_wins_over_the_proxy_environment(local_server: LocalServer, tmp_path: Path) -> None:
    local_server.add_file("/via-proxy.bin", b"proxied bytes")
    url = "http://files.example.invalid/via-proxy.bin"
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens there
    result = run_cli(url, "--proxy", local_server.base_url, "-d", "option", "--retries", "0", cwd=tmp_path,
                     http_proxy=dead, HTTP_PROXY=dead)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "option" / "via-proxy.bin").read_bytes() == b"proxied bytes"
    assert [request.target for request in local_server.requests] == [url]


# -- Ctrl-C -----------------------------------------------------------------------------------


class Running:
    """The command running in the background, its standard error read line by line."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.process = subprocess.Popen(
            cli_command(*args), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=cli_env(),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert self.process.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stderr,), daemon=True)
        self._reader.start()

    def _read(self, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            self.lines.put(line)

    def wait_for_line(self, text: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return False
            self.seen.append(line)
            if text in line:
                return True
        return False

    def finish(self, timeout: float) -> tuple[int, str, str]:
        self.process.wait(timeout)
        assert self.process.stdout is not None
        stdout = self.process.stdout.read()
        self._reader.join(timeout)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.process.returncode, stdout, "".join(self.seen)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self._reader.join(5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


Start = Callable[..., Running]


@pytest.fixture
def running() -> Iterator[Start]:
    started: list[Running] = []

    def start(*args: str, cwd: Path) -> Running:
        started.append(Running(*args, cwd=cwd))
        return started[-1]

    yield start
    for process in started:
        process.close()


def test_first_ctrl_c_finishes_in_flight_and_cancels_the_rest(
    local_server: LocalServer, tmp_path: Path, running: Start
) -> None:
    urls = serve(local_server, 5, size=800_000, prefix="slow", rate=1_000_000)  # ~0.8 s each
    command = running(*urls, "-j", "2", "--json", cwd=tmp_path)
    assert wait_until(lambda: sum(local_server.bytes_sent(f"/slow{i}.bin") > 0 for i in range(5)) == 2)
    command.process.send_signal(signal.SIGINT)
    code, stdout, stderr = command.finish(timeout=20)
    assert code == 130
    requested = {r.path.strip("/").removesuffix(".bin") for r in local_server.requests}
    records = {Path(json.loads(line)["url"]).stem: json.loads(line) for line in stdout.splitlines()}
    assert {name for name, r in records.items() if r["status"] == "completed"} == requested
    assert len(requested) == 2
    assert {name for name, r in records.items() if r["status"] == "cancelled"} == set(records) - requested
    for name in requested:
        assert file_sha256(tmp_path / f"{name}.bin") == sha256(payload(800_000, int(name[4:])))
    assert "Interrupted: letting the downloads in progress finish and cancelling the rest" in stderr
    assert "Interrupted: 3 download(s) did not finish:" in stderr
    assert f"Run the same command again to continue (the state is kept in {STATE})." in stderr
    # ... and it is true: the rerun downloads only what was left.
    assert local_server.wait_idle()
    local_server.reset_stats()
    again = run_cli(*urls, "-j", "2", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert {r.path.strip("/").removesuffix(".bin") for r in local_server.requests} == set(records) - requested
    assert [json.loads(line)["status"] for line in again.stdout.splitlines()] == ["completed"] * 5


def test_second_ctrl_c_stops_at_once(local_server: LocalServer, tmp_path: Path, running: Start) -> None:
    urls = serve(local_server, 4, size=5_000_000, prefix="slow", rate=500_000)  # ~10 s each
    command = running(*urls, "-j", "2", cwd=tmp_path)
    assert wait_until(lambda: sum(local_server.bytes_sent(f"/slow{i}.bin") > 0 for i in range(4)) == 2)
    command.process.send_signal(signal.SIGINT)
    assert command.wait_for_line("press Ctrl-C again to stop at once"), command.seen
    stopped = time.monotonic()
    command.process.send_signal(signal.SIGINT)
    code, _, stderr = command.finish(timeout=10)
    assert time.monotonic() - stopped < 3.0
    assert code == 130
    assert "Stopping at once." in stderr and "0 completed, 0 failed, 4 cancelled" in stderr
    assert not any(tmp_path.glob("slow*.bin"))  # nothing complete under a final name


def test_ctrl_c_handler_is_restored_after_a_run(local_server: LocalServer) -> None:
    """In-process: main() installs its handler only while a batch runs."""
    import tempfile

    from pydownloads.cli import main

    (url,) = serve(local_server, 1)
    before = signal.getsignal(signal.SIGINT)
    with tempfile.TemporaryDirectory() as folder:
        assert main([url, "-q", "-d", folder]) == 0
    assert signal.getsignal(signal.SIGINT) is before


# -- speed and limits -------------------------------------------------------------------------

MIB = 1 << 20


def ranged(server: LocalServer, path: str) -> list[str]:
    return [r.range for r in server.requests if r.path == path and r.range]


def test_segments_split_a_large_file_and_an_input_line_can_say_one(local_server: LocalServer, tmp_path: Path) -> None:
    split = local_server.add_file("/split.bin", payload(12 * MIB, 1), rate=8 * MIB)  # per connection: ~0.5 s
    whole = local_server.add_file("/whole.bin", payload(12 * MIB, 2))
    (tmp_path / "list.txt").write_text(f"{split}\n{whole}\n  segments=1\n", encoding="utf-8")
    result = run_cli("-i", "list.txt", "-x", "3", "-j", "1", "--no-state", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert file_sha256(tmp_path / "split.bin") == sha256(payload(12 * MIB, 1))
    assert file_sha256(tmp_path / "whole.bin") == sha256(payload(12 * MIB, 2))
    assert local_server.wait_idle()
    assert local_server.max_concurrency == 3  # -x 3: three connections on one file at once, never more
    assert len(ranged(local_server, "/split.bin")) >= 2
    assert local_server.request_count("/whole.bin") == 1 and ranged(local_server, "/whole.bin") == []


def test_limit_rate_over_all_downloads_and_per_file(local_server: LocalServer, tmp_path: Path) -> None:
    shared = local_server.add_file("/shared.bin", payload(256 * 1024, 1))
    own = local_server.add_file("/own.bin", payload(128 * 1024, 2))
    (tmp_path / "list.txt").write_text(f"{shared}\n{own}\n  limit-rate=64K\n", encoding="utf-8")
    result = run_cli("-i", "list.txt", "--limit-rate", "256K", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    elapsed = {Path(r["url"]).name: r["elapsed"] for r in map(json.loads, result.stdout.splitlines())}
    # A bucket lets a burst of 0.1 s of traffic (at least 16 KiB) through at once; the rest waits.
    assert elapsed["shared.bin"] >= (256 - 25.6) / 256 * 0.95, elapsed
    assert elapsed["own.bin"] >= (128 - 16) / 64 * 0.95, elapsed


def test_max_per_host_bounds_the_connections_to_one_server(
    local_server: LocalServer, tmp_path: Path, running: Start
) -> None:
    urls = serve(local_server, 3)
    for i in range(3):
        local_server.hold(f"/f{i}.bin")
    command = running(*urls, "-j", "3", "--max-per-host", "2", cwd=tmp_path)
    assert wait_until(lambda: len(local_server.requests) >= 2)  # two held at the server; the third waits
    for i in range(3):
        local_server.release(f"/f{i}.bin")
    code, _, stderr = command.finish(timeout=20)
    assert code == 0, stderr
    assert local_server.wait_idle()
    assert local_server.max_concurrency == 2 and len(local_server.requests) == 3


def test_min_speed_and_deadline_end_a_download_that_drags(local_server: LocalServer, tmp_path: Path) -> None:
    (url,) = serve(local_server, 1, size=200_000, rate=4_000)  # 50 s at this pace
    started = time.monotonic()
    slow = run_cli(url, "--min-speed", "20K", "--min-speed-time", "0.5", "--retries", "0", "--json",
                   "--no-state", cwd=tmp_path)
    late = run_cli(url, "--deadline", "0.5", "--json", "--no-state", "-d", "late", cwd=tmp_path)
    assert time.monotonic() - started < 15
    assert slow.returncode == 1 and late.returncode == 1
    slow_record, late_record = json.loads(slow.stdout), json.loads(late.stdout)
    assert (slow_record["error_type"], slow_record["attempts"]) == ("DownloadTimeoutError", 1), slow_record
    assert (late_record["error_type"], late_record["attempts"]) == ("DeadlineExceededError", 1), late_record
    assert not (tmp_path / "f0.bin").exists() and not (tmp_path / "late" / "f0.bin").exists()


# -- checksums --------------------------------------------------------------------------------


def test_checksum_option_and_input_key(local_server: LocalServer, tmp_path: Path) -> None:
    urls = serve(local_server, 2)
    good, bad = f"sha256:{sha256(payload(20_000, 0))}", f"sha256:{sha256(b'other bytes')}"
    ok = run_cli(urls[0], "--checksum", good.upper().replace("SHA256", "sha256"), "-d", "ok", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert file_sha256(tmp_path / "ok" / "f0.bin") == sha256(payload(20_000, 0))
    wrong = run_cli(urls[0], "--checksum", bad, "--retries", "0", "--json", "-d", "wrong", cwd=tmp_path)
    assert wrong.returncode == 1
    record = json.loads(wrong.stdout)
    assert record["error_type"] == "ChecksumMismatchError" and bad.partition(":")[2] in record["error"]
    assert downloaded(tmp_path / "wrong") == []  # nothing under the final name, no part file kept
    (tmp_path / "list.txt").write_text(f"{urls[0]}\n  checksum={good}\n{urls[1]}\n  checksum={bad}\n",
                                       encoding="utf-8")
    listed = run_cli("-i", "list.txt", "--retries", "0", "-d", "listed", cwd=tmp_path)
    assert listed.returncode == 1
    assert f"FAILED {urls[1]}: sha256 is {sha256(payload(20_000, 1))}, expected" in listed.stderr
    assert downloaded(tmp_path / "listed") == [tmp_path / "listed" / "f0.bin"]


# -- state: continuing where a run stopped ----------------------------------------------------


def test_a_rerun_skips_what_is_done_and_keeps_failures_unless_told(local_server: LocalServer, tmp_path: Path) -> None:
    urls = serve(local_server, 2)
    missing = local_server.url("/later.bin")
    command = (*urls, missing, "-d", "out")
    first = run_cli(*command, cwd=tmp_path)
    assert first.returncode == 1 and "2 completed, 1 failed, 0 cancelled" in first.stderr
    assert (tmp_path / "out" / STATE).is_file()
    local_server.reset_stats()
    second = run_cli(*command, cwd=tmp_path)
    assert second.returncode == 1
    assert local_server.requests == []  # nothing asked again: done is done, failed stays failed
    assert ("2 completed (2 skipped: already done), 1 failed (1 in an earlier run: --retry-failed tries again), "
            "0 cancelled: 0 B in ") in second.stderr
    assert f"FAILED {missing}: HTTP 404 Not Found (HTTPStatusError, 1 attempt)" in second.stderr
    local_server.add_file("/later.bin", b"here now")
    third = run_cli(*command, "--retry-failed", cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    assert [r.path for r in local_server.requests] == ["/later.bin"]
    assert "3 completed (2 skipped: already done), 0 failed, 0 cancelled" in third.stderr
    (tmp_path / "out" / "f0.bin").unlink()  # a completed file that is gone is downloaded again
    fourth = run_cli(*command, "--json", cwd=tmp_path)
    assert fourth.returncode == 0 and [r.path for r in local_server.requests] == ["/later.bin", "/f0.bin"]
    assert [json.loads(line)["status"] for line in fourth.stdout.splitlines()] == ["completed"] * 3


def test_no_state_and_a_state_file_elsewhere(local_server: LocalServer, tmp_path: Path) -> None:
    (url,) = serve(local_server, 1)
    for _ in range(2):
        assert run_cli(url, "--no-state", "-d", "none", cwd=tmp_path).returncode == 0
    assert files_under(tmp_path / "none") == [tmp_path / "none" / "f0.bin"]
    assert local_server.request_count("/f0.bin") == 2  # without state the second run downloads again
    for _ in range(2):
        assert run_cli(url, "--state", "states/run.db", "-d", "there", cwd=tmp_path).returncode == 0
    assert (tmp_path / "states" / "run.db").is_file() and not (tmp_path / "there" / STATE).exists()
    assert local_server.request_count("/f0.bin") == 3
    from pydownloads.journal import read_status

    assert read_status(tmp_path / "states" / "run.db").counts == {"completed": 1}


def test_a_killed_run_continues_where_it_stopped(local_server: LocalServer, tmp_path: Path, running: Start) -> None:
    from pydownloads import StateFileError
    from pydownloads.journal import read_status

    fast = serve(local_server, 2)
    body = payload(2 * MIB, 9)
    slow = local_server.add_file("/slow.bin", body, rate=500_000)  # ~4 s
    command = running(slow, *fast, "-j", "3", cwd=tmp_path)
    state = tmp_path / STATE

    def two_done_and_slow_saved() -> bool:
        try:
            done = read_status(state).counts.get("completed", 0) == 2
        except StateFileError:  # not there yet
            return False
        return done and (tmp_path / "slow.bin.part.json").is_file()

    assert wait_until(two_done_and_slow_saved), command.seen
    command.process.kill()
    command.finish(timeout=10)
    local_server.add_file("/slow.bin", body)  # the same file, served at full speed now
    assert local_server.wait_idle(5)
    local_server.reset_stats()
    again = run_cli(slow, *fast, "-j", "3", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert [r.path for r in local_server.requests] == ["/slow.bin"]  # the completed ones are not asked again
    assert local_server.requests[0].range is not None and local_server.bytes_sent("/slow.bin") < len(body)
    assert file_sha256(tmp_path / "slow.bin") == sha256(body)
    assert "3 completed (2 skipped: already done), 0 failed, 0 cancelled" in again.stderr


def test_an_unusable_state_file_is_a_clear_usage_error(
    local_server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    from pydownloads.cli import main

    (url,) = serve(local_server, 1)
    (tmp_path / STATE).write_bytes(b"this is not a database, just some text " * 100)
    corrupt = run_cli(url, cwd=tmp_path)
    assert corrupt.returncode == 2
    assert f"pydownloads: error: {STATE} is not a usable state file: " in corrupt.stderr
    assert "give another state file with --state FILE, or none with --no-state" in corrupt.stderr
    monkeypatch.chdir(tmp_path)  # the rest in this process, for speed
    assert main(["status"]) == 2
    assert f"pydownloads status: error: {STATE} is not a usable state file" in capsys.readouterr().err
    (tmp_path / "busy.db").touch()
    with open(tmp_path / "busy.db", "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running pydownloads holds it
        assert main([url, "--state", "busy.db", "-q"]) == 2
    assert "busy.db is in use by another pydownloads process" in capsys.readouterr().err
    assert local_server.requests == [] and not (tmp_path / "f0.bin").exists()


# -- mirrors, --if-changed, files already there -----------------------------------------------


def test_a_tab_separated_mirror_takes_over_a_file_that_breaks_off(
    local_server: LocalServer, other_server: LocalServer, tmp_path: Path
) -> None:
    body = payload(1_000_000, 7)
    # Throttled, so that the command has read what was sent when the connection is reset.
    primary = local_server.add_file("/iso/image.bin", body, etag='"primary"', rate=4_000_000)
    mirror = other_server.add_file("/pub/image.bin", body, etag='"mirror-has-its-own"')
    local_server.add_faults("/iso/image.bin", ResetAfter(400_000), *[ResetAfter(0)] * 5)
    (tmp_path / "list.txt").write_text(f"{primary}\t{mirror}\n  out=image.iso\n", encoding="utf-8")
    result = run_cli("-i", "list.txt", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert file_sha256(tmp_path / "image.iso") == sha256(body)
    record = json.loads(result.stdout)
    assert (record["url"], record["status"], record["path"]) == (primary, "completed", str(tmp_path / "image.iso"))
    [resumed] = other_server.requests  # the mirror carried on from the bytes the first one sent
    assert resumed.range is not None and 0 < other_server.bytes_sent("/pub/image.bin") < len(body)
    # JSON Lines: a dead first URL (404) is not asked again; its mirror serves the file.
    dead = local_server.url("/gone.bin")
    (tmp_path / "list.jsonl").write_text(json.dumps({"url": dead, "mirrors": [mirror], "filename": "b.iso"}) + "\n",
                                         encoding="utf-8")
    listed = run_cli("-i", "list.jsonl", "-d", "jsonl", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert file_sha256(tmp_path / "jsonl" / "b.iso") == sha256(body)
    assert local_server.request_count("/gone.bin") == 1


def test_if_changed_costs_a_304_and_no_body(local_server: LocalServer, tmp_path: Path) -> None:
    urls = serve(local_server, 2, size=50_000)
    first = run_cli(*urls, "--if-changed", cwd=tmp_path)
    assert first.returncode == 0 and "2 completed, 0 failed" in first.stderr, first.stderr
    assert (tmp_path / STATE).exists()  # journaled, yet completed files are asked about again
    local_server.add_file("/f1.bin", payload(50_000, 99), last_modified=1_800_000_000)  # a newer version
    assert local_server.wait_idle()
    local_server.reset_stats()
    second = run_cli(*urls, "--if-changed", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "2 completed (1 unchanged), 0 failed, 0 cancelled: 48.8 KiB in " in second.stderr
    [asked] = [r for r in local_server.requests if r.path == "/f0.bin"]
    assert asked.status == 304 and local_server.bytes_sent("/f0.bin") == 0
    assert file_sha256(tmp_path / "f1.bin") == sha256(payload(50_000, 99))
    # An input line may say otherwise than the option: f0 is downloaded again, f1 is asked about.
    (tmp_path / "list.txt").write_text(f"{urls[0]}\n  if-changed=false\n{urls[1]}\n", encoding="utf-8")
    third = run_cli("-i", "list.txt", "--if-changed", "--json", "--no-state", cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    records = [json.loads(line) for line in third.stdout.splitlines()]
    assert [(r["unchanged"], r["bytes"]) for r in records] == [(False, 50_000), (True, 0)]


def test_on_existing_skip_and_rename(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/doc.txt", b"from the server")
    (tmp_path / "doc.txt").write_bytes(b"mine")
    skip = run_cli(url, "--on-existing", "skip", "--no-state", cwd=tmp_path)
    assert skip.returncode == 0, skip.stderr
    assert "1 completed (1 unchanged), 0 failed" in skip.stderr
    assert local_server.request_count("/doc.txt") == 0 and (tmp_path / "doc.txt").read_bytes() == b"mine"
    rename = run_cli(url, "--on-existing", "rename", "--no-state", "--json", cwd=tmp_path)
    assert rename.returncode == 0, rename.stderr
    assert json.loads(rename.stdout)["path"] == str(tmp_path / "doc (1).txt")
    assert (tmp_path / "doc.txt").read_bytes() == b"mine"
    assert (tmp_path / "doc (1).txt").read_bytes() == b"from the server"


# -- Dask -------------------------------------------------------------------------------------


def test_dask_scheduler_runs_the_job_on_the_cluster(local_server: LocalServer, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    from pydownloads.cli._args import DASK_SHARD_SIZE
    from pydownloads.distributed import DEFAULT_SHARD_SIZE

    assert DASK_SHARD_SIZE == DEFAULT_SHARD_SIZE  # what --help says is the library's default
    urls = serve(local_server, 3)
    # In this process, over TCP, so that the command (another process) can reach it.
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=":0", protocol="tcp",
                                  host="127.0.0.1") as cluster:
        command = (*urls, "--dask-scheduler", cluster.scheduler_address, "--shard-size", "2", "--json", "-d", "out")
        result = run_cli(*command, cwd=tmp_path, timeout=60)
        again = run_cli(*command, cwd=tmp_path, timeout=60)  # continues the job: nothing to fetch
    assert result.returncode == 0, result.stderr
    assert again.returncode == 0, again.stderr
    assert len(local_server.requests) == 3
    assert [json.loads(line)["outcome"] for line in again.stdout.splitlines()] == ["skipped"] * 3
    (job,) = (tmp_path / "out" / ".pydownloads-shards").iterdir()
    status = run_cli("status", "out", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert status.stdout == f"out/.pydownloads-shards/{job.name}: 3 downloads: 3 completed\n"
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["url"], r["status"], r["bytes"]) for r in records] == [(url, "completed", 20_000) for url in urls]
    for i in range(3):
        assert file_sha256(tmp_path / "out" / f"f{i}.bin") == sha256(payload(20_000, i))
    assert len(list((tmp_path / "out" / ".pydownloads-shards").glob("*/*.db"))) == 2  # a state file per shard
    assert not (tmp_path / "out" / STATE).exists()


def test_dask_scheduler_without_dask_says_what_to_install(local_server: LocalServer, tmp_path: Path) -> None:
    (url,) = serve(local_server, 1)
    (tmp_path / "distributed.py").write_text("raise ImportError('no Dask here')\n", encoding="utf-8")
    result = run_cli(url, "--dask-scheduler", "tcp://127.0.0.1:1", cwd=tmp_path,
                     PYTHONPATH=f"{tmp_path}:{cli_env()['PYTHONPATH']}")
    assert result.returncode == 2
    assert "--dask-scheduler needs Dask's distributed scheduler: pip install 'pydownloads[dask]'" in result.stderr
    assert local_server.requests == []


# -- pydownloads status -----------------------------------------------------------------------


def test_status_counts_and_failures_as_text_and_json(
    local_server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydownloads.cli import main

    urls = serve(local_server, 2)
    missing = local_server.url("/missing.bin")
    assert run_cli(*urls, missing, "-d", "out", cwd=tmp_path).returncode == 1
    text = run_cli("status", "-d", "out", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines() == [
        f"out/{STATE}: 3 downloads: 2 completed, 1 failed",
        f"FAILED {missing}: HTTP 404 Not Found (HTTPStatusError, 1 attempt)",
    ]
    monkeypatch.chdir(tmp_path)  # the rest in this process, for speed
    assert main(["status", "out", "--json"]) == 0  # a folder, as the argument
    record = json.loads(capsys.readouterr().out)
    assert record["state_file"] == f"out/{STATE}" and record["total"] == 3
    assert record["counts"] == {"completed": 2, "failed": 1, "cancelled": 0, "pending": 0, "in_progress": 0}
    (failure,) = record["failures"]
    assert (failure["url"], failure["status"], failure["error_type"]) == (missing, "failed", "HTTPStatusError")
    monkeypatch.chdir(tmp_path / "out")
    assert main(["status", "--json"]) == 0  # the current folder by default
    assert json.loads(capsys.readouterr().out)["counts"] == record["counts"]
    assert main(["status", "elsewhere"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "pydownloads status: error: no state file at elsewhere" in err
    assert main(["status", ".", "-d", "."]) == 2 and "not both" in capsys.readouterr().err
