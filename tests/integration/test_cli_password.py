"""The command's -n/--netrc and --password against a real server, and -j on one host."""

from __future__ import annotations

import base64
import subprocess
import threading
from pathlib import Path

from pydownloads.cli import main
from pydownloads.localserver import AuthRequired, LocalServer
from tests.integration.clirun import run_cli

SECRET = "pa55-w0rd"
OLD = "netrc-old-pass"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The command with a home of its own and the .netrc of this test as $NETRC."""
    environment = {"HOME": str(cwd), "NETRC": str(cwd / "no-netrc-here"), **env}
    result: subprocess.CompletedProcess[str] = run_cli(*args, cwd=cwd, **environment)  # type: ignore[arg-type]
    assert SECRET not in result.stdout + result.stderr and OLD not in result.stdout + result.stderr
    return result


def netrc(path: Path, login: str) -> Path:
    path.write_text(f"machine 127.0.0.1 login {login} password {OLD}\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def test_password_alone_goes_with_the_login_of_the_netrc(local_server: LocalServer, tmp_path: Path) -> None:
    def url(user: str, password: str) -> str:  # a file that only these credentials get
        return local_server.add_file(f"/{user}-{len(password)}.bin", b"data",
                                     auth=AuthRequired(user, password, schemes=("Basic",)))

    env_netrc = netrc(tmp_path / "env.netrc", "kim")
    file_netrc = netrc(tmp_path / "file.netrc", "lou")
    runs = [
        cli(url("kim", SECRET), "--no-state", "--password", SECRET, cwd=tmp_path, NETRC=str(env_netrc)),
        cli(url("lou", SECRET), "--no-state", "--password", SECRET, "--netrc-file", str(file_netrc), cwd=tmp_path),
        cli(url("ann", SECRET), "--no-state", "--user", "ann", "--password", SECRET, cwd=tmp_path,
            NETRC=str(env_netrc)),
        cli(url("kim", OLD), "--no-state", "-n", cwd=tmp_path, NETRC=str(env_netrc)),
        cli(url("kim", OLD), "--no-state", "--netrc", cwd=tmp_path, NETRC=str(env_netrc)),
    ]
    assert [r.returncode for r in runs] == [0] * 5, [r.stderr for r in runs]
    local_server.wait_idle()
    assert [(r.status, r.headers.get("Authorization")) for r in local_server.requests] == [
        (status, basic(user, password) if status == 200 else None)
        for user, password in (("kim", SECRET), ("lou", SECRET), ("ann", SECRET), ("kim", OLD), ("kim", OLD))
        for status in (401, 200)]


def test_password_without_a_login_is_a_usage_error(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/a.bin", b"data")
    refused = [
        cli(url, "--password", SECRET, "--no-netrc", cwd=tmp_path),
        cli(url, "--password", SECRET, "--user", f"ann:{SECRET}", cwd=tmp_path),
        cli(url, "-n", "--no-netrc", cwd=tmp_path),
    ]
    assert [r.returncode for r in refused] == [2, 2, 2]
    assert local_server.requests == []


def test_netrc_is_not_taken_for_netrc_file_nor_any_abbreviation(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/a.bin", b"data")
    ran = cli(url, "--no-state", "--netrc", cwd=tmp_path)  # once: "argument --netrc-file: expected one argument"
    assert ran.returncode == 0, ran.stderr
    abbreviated = cli(url, "--no-state", "--retri", "2", cwd=tmp_path)
    assert abbreviated.returncode == 2 and "unrecognized arguments: --retri" in abbreviated.stderr
    assert local_server.request_count("/a.bin") == 1


def test_jobs_open_as_many_connections_to_one_host(local_server: LocalServer, tmp_path: Path) -> None:
    paths = [f"/j{i}.bin" for i in range(12)]
    for path in paths:
        local_server.add_file(path, b"x" * 1000)
        local_server.hold(path)
    codes: list[int] = []
    argv = [*(local_server.url(p) for p in paths), "-q", "--no-state", "-d", str(tmp_path), "-j", "12"]
    run = threading.Thread(target=lambda: codes.append(main(argv)), daemon=True)
    run.start()
    try:
        # All twelve held at once by the server: with the old --max-per-host default, 8.
        assert all(local_server.wait_for_requests(p, 1, timeout=10) for p in paths)
        assert local_server.max_concurrency == 12
    finally:
        for path in paths:
            local_server.release(path)
        run.join(30)
    assert codes == [0]
