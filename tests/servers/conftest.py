"""Real web servers (nginx, Apache httpd, lighttpd) started by the tests on a loopback port.

Each runs as the current user from a minimal config in ``configs/`` (filled with the port, the
document root and a temporary folder for its pid file and logs), and is always stopped. A
server that is not installed skips its part of the tier with the reason and the package to
install. The access log (``status body-bytes "Range" "request line"``) tells the tests what each
server really sent.
"""

from __future__ import annotations

import grp
import http.client
import os
import pwd
import random
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.support import wait_until

CONFIGS = Path(__file__).resolve().parent / "configs"
#: Bytes per second on /slow/ (per connection): a 6 MiB file takes 2 to 3 s (nginx sends the
#: first second's worth at once), and a run saves its progress every second
#: (DEFAULT_SAVE_INTERVAL), so it is killed mid-body after its first save.
RATE = 2 << 20
#: Modification time of every served file: long past, so Apache's ETag is strong.
MTIME = 1_700_000_000
#: name -> (executable, Debian package, command line after the executable)
SERVERS = {
    "nginx": ("nginx", "nginx", ["-p", "{run}", "-e", "{run}/error.log", "-c", "{conf}"]),
    "apache2": ("apache2", "apache2", ["-f", "{conf}", "-DFOREGROUND"]),
    "lighttpd": ("lighttpd", "lighttpd", ["-D", "-f", "{conf}"]),
}
#: path -> size of each file the document root holds.
FILES = {
    "plain.bin": 1 << 20,
    "sum.bin": 300_000,
    "ifc.bin": 500_000,
    "slow/big.bin": 16 << 20,
    "slow/kill.bin": 6 << 20,
    "slow/opts.bin": 6 << 20,
    "slow/novalid/nv.bin": 6 << 20,
}


class Served(NamedTuple):
    """One access-log line."""

    status: int
    body_bytes: int
    range: str | None
    path: str


@dataclass
class WebServer:
    """A started server: its name, base URL, document root and access log."""

    name: str
    base_url: str
    root: Path
    run: Path
    port: int
    _marks: int = 0

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def body(self, path: str) -> bytes:
        return (self.root / path).read_bytes()

    def mark(self) -> int:
        """Where :meth:`served` starts counting: after every request logged so far.

        A request is logged when it ends, which its client may see a moment before: a
        marker request, logged after them, closes the earlier ones.
        """
        self._marks += 1
        marker = f"/mark-{self._marks}"
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(f"HEAD {marker} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            s.recv(4096)
        assert wait_until(lambda: any(f" {marker} " in line for line in self._lines()), timeout=5)
        lines = self._lines()
        return next(i for i, line in enumerate(lines) if f" {marker} " in line) + 1

    def served(self, mark: int, path: str,
               until: Callable[[list[Served]], bool] = bool) -> list[Served]:
        """The requests for ``path`` logged after ``mark``; waits (bounded) ``until`` they say so."""
        def found() -> list[Served]:
            return [s for s in map(_parse, self._lines()[mark:]) if s.path == f"/{path}"]
        wait_until(lambda: until(found()), timeout=5)
        return found()

    def _lines(self) -> list[str]:
        try:
            return (self.run / "access.log").read_text().splitlines()
        except FileNotFoundError:
            return []


def _parse(line: str) -> Served:
    status, size, rest = line.split(" ", 2)
    range_header, request = rest[1:-1].split('" "', 1)
    return Served(int(status), 0 if size == "-" else int(size),
                  None if range_header in ("-", "") else range_header, request.split(" ")[1])


@pytest.fixture(scope="session")
def document_root() -> Iterator[Path]:
    """The files every server serves, readable by all (Apache as root serves as www-data)."""
    root = Path(tempfile.mkdtemp(prefix="pydownloads-servers-"))
    rng = random.Random(13)
    for path, size in FILES.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rng.randbytes(size))
        os.utime(target, (MTIME, MTIME))
        target.chmod(0o644)
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        folder.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _executable(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _existing_user(*names: str) -> str:
    """The first of ``names`` this machine has (Apache will not serve as root)."""
    for name in names:
        try:
            return pwd.getpwnam(name).pw_name
        except KeyError:
            continue
    return names[-1]


def _free_port() -> int:
    # The servers cannot listen on port 0 and report it: take one the kernel hands out.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(name: str, port: int, root: Path, run: Path) -> Path:
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    apache_user = user if os.getuid() != 0 else _existing_user("www-data", "nobody")  # root only
    values = {"port": port, "root": root, "run": run, "user": user, "group": group,
              "apache_user": apache_user,
              "apache_group": grp.getgrgid(pwd.getpwnam(apache_user).pw_gid).gr_name,
              "modules": "/usr/lib/apache2/modules", "rate_bytes": RATE, "rate_kib": RATE >> 10}
    # "@name@": the configs use "$" themselves (nginx variables, lighttpd conditions).
    text = re.sub(r"@([a-z_]+)@", lambda m: str(values[m[1]]), (CONFIGS / f"{name}.conf").read_text())
    conf = run / f"{name}.conf"
    conf.write_text(text)
    return conf


def _answers(port: int) -> bool:
    # An answer, not a listening socket: Apache listens before it has read all its config.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("HEAD", "/plain.bin")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _start(name: str, root: Path, run: Path) -> tuple[subprocess.Popen[bytes], int]:
    executable, _, arguments = SERVERS[name]
    for _ in range(3):  # another process may take the free port first: try another
        port = _free_port()
        conf = _config(name, port, root, run)
        command = [_executable(executable) or executable,
                   *(a.format(run=run, conf=conf) for a in arguments)]
        with (run / "stderr.log").open("wb") as stderr:
            process = subprocess.Popen(command, cwd=run, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=stderr)
        if _ready(process, port):
            return process, port
        _stop(process)
    errors = [(run / f).read_text(errors="replace") for f in ("stderr.log", "error.log")
              if (run / f).exists()]
    pytest.fail(f"{name} did not start: {' '.join(errors)}")


def _ready(process: subprocess.Popen[bytes], port: int) -> bool:
    """Whether the server answers within 10 s (False when it exits first)."""
    wait_until(lambda: process.poll() is not None or _answers(port), timeout=10)
    return process.poll() is None and _answers(port)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture(scope="module", params=list(SERVERS))
def web_server(request: pytest.FixtureRequest, document_root: Path) -> Iterator[WebServer]:
    """nginx, Apache httpd and lighttpd in turn, each serving ``document_root``."""
    name: str = request.param
    executable, package, _ = SERVERS[name]
    if _executable(executable) is None:
        pytest.skip(f"{name} is not installed (apt-get install {package})")
    run = Path(tempfile.mkdtemp(prefix=f"pydownloads-{name}-"))
    run.chmod(0o755)
    process, port = _start(name, document_root, run)
    try:
        yield WebServer(name, f"http://127.0.0.1:{port}", document_root, run, port)
    finally:
        _stop(process)
        shutil.rmtree(run, ignore_errors=True)
