"""The ``pydownloads`` command through a real subprocess against the local server."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from importlib import metadata
from pathlib import Path

import pytest

from pydownloads import __version__
from pydownloads.localserver import LocalServer, StallHeaders, Status
from tests.integration.clirun import cli_command, cli_env, run_cli
from tests.integration.helpers import file_sha256, files_under, payload, sha256


def serve(server: LocalServer, count: int, *, size: int = 20_000, prefix: str = "f", **options: object) -> list[str]:
    return [server.add_file(f"/{prefix}{i}.bin", payload(size, i), **options) for i in range(count)]  # type: ignore[arg-type]


def wait_until(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


# -- the basics -------------------------------------------------------------------------------


def test_help_version_and_the_console_script(tmp_path: Path) -> None:
    helped = run_cli("--help", cwd=tmp_path)
    assert helped.returncode == 0
    for text in ("usage: pydownloads [options] URL... | -i FILE", "pydownloads demo", "what to download",
                 "--input-file", "--jobs", "--retries", "--timeout", "--header", "--user-agent", "--proxy",
                 "--quiet", "--progress", "--json", "exit status:", "130 interrupted", "key=value"):
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
    assert files_under(tmp_path) == [tmp_path / "f0.bin"]


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
    assert set(records[0]) == {"url", "status", "path", "bytes", "total_bytes", "attempts", "error",
                               "error_type", "elapsed"}
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
    assert files_under(tmp_path) == [tmp_path / "out" / "renamed.dat"]


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
    assert files_under(out) == sorted([out / "f0.bin", out / "nested" / "deeper" / "second.bin", out / "f2.bin"])
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
    assert sorted(p.name for p in files_under(tmp_path)) == ["a.bin", "f1.bin"]
    jsonl = run_cli("-i", "-", "-d", "j", cwd=tmp_path, stdin=json.dumps({"url": urls[0]}) + "\n")
    assert jsonl.returncode == 0 and (tmp_path / "j" / "f0.bin").is_file()


def test_malformed_input_lines_start_nothing(local_server: LocalServer, tmp_path: Path) -> None:
    urls = serve(local_server, 2)
    (tmp_path / "bad.txt").write_text(f"{urls[0]}\n  colour=red\n{urls[1]}\n  priority=high\n", encoding="utf-8")
    result = run_cli("-i", "bad.txt", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "bad.txt:2: unknown option 'colour'; known: dir, header, out, priority",
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
    assert f"retrying {url} in 0.0 s (HTTP 503; attempt 2)" in enough.stderr
    assert f"retrying {url} in 0.0 s (HTTP 503; attempt 3)" in enough.stderr
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


@pytest.fixture
def running() -> object:
    started: list[Running] = []

    def start(*args: str, cwd: Path) -> Running:
        started.append(Running(*args, cwd=cwd))
        return started[-1]

    yield start
    for process in started:
        process.close()


def test_first_ctrl_c_finishes_in_flight_and_cancels_the_rest(
    local_server: LocalServer, tmp_path: Path, running
) -> None:  # type: ignore[no-untyped-def]
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
    assert "Run the same command again" in stderr


def test_second_ctrl_c_stops_at_once(local_server: LocalServer, tmp_path: Path, running) -> None:  # type: ignore[no-untyped-def]
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
