"""Start and stop a private nginx on 127.0.0.1 serving a folder (for benchmarks only).

Locations: ``/`` serves the folder with sendfile and keep-alive; ``/limited/`` serves the
same files at ``limit_rate`` bytes per second per connection (the W4 workload).  Given a
made CA (benchmarks/tls.py), a second port serves ``/`` over TLS 1.3 only, keep-alive too
(``url(path, tls=True)``).  ``/nginx-status`` (stub_status) counts the connections accepted,
on both ports: ``accepted()``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from benchmarks.tls import Authority

CONFIG = """
worker_processes 2;
daemon off;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    types {{ application/octet-stream bin; }}
{tls_server}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /limited/ {{
            alias {root}/;
            limit_rate {rate};
        }}
        location = /nginx-status {{
            stub_status;
        }}
    }}
}}
"""

TLS_SERVER = """
    server {{
        listen 127.0.0.1:{port} ssl;
        root {root};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        ssl_session_cache shared:TLS:10m;
    }}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nginx:
    """``with Nginx(folder, rate=20_000_000) as server: server.url("/a.bin")``."""

    def __init__(self, root: Path, *, rate: int = 20_000_000, tls: Authority | None = None) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        self._binary, self._root, self._rate = binary, root.resolve(), rate
        self._run = Path(tempfile.mkdtemp(prefix="pydownloads-nginx-"))
        self.port = free_port()
        self.tls, self.tls_port = tls, free_port() if tls is not None else None
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, path: str, *, tls: bool = False) -> str:
        if tls:
            if self.tls_port is None:
                raise ValueError("this nginx serves no TLS: give it an Authority")
            return f"https://127.0.0.1:{self.tls_port}{path}"
        return f"http://127.0.0.1:{self.port}{path}"

    def accepted(self) -> int:
        """Connections nginx has accepted since it started, on either port, this query's own included."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
        with opener.open(self.url("/nginx-status"), timeout=10) as response:
            lines = response.read().decode().splitlines()
        return int(lines[2].split()[0])  # "server accepts handled requests" / " A H R"

    def pids(self) -> list[int]:
        """The master's process id and its workers' (for measuring the server's CPU time)."""
        if self._process is None:
            return []
        master = self._process.pid
        try:
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        except OSError:
            children = []
        return [master, *map(int, children)]

    def __enter__(self) -> Nginx:
        # nginx's workers drop privileges: the folder (often a 0700 temporary one) must be readable.
        self._root.chmod(0o755)
        for path in self._root.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        config = self._run / "nginx.conf"
        tls_server = "" if self.tls is None else TLS_SERVER.format(
            port=self.tls_port, root=self._root, cert=self.tls.server_cert, key=self.tls.server_key)
        config.write_text(CONFIG.format(run=self._run, port=self.port, root=self._root, rate=self._rate,
                                        tls_server=tls_server))
        self._process = subprocess.Popen([self._binary, "-c", str(config), "-p", str(self._run)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError(f"nginx did not start; see {self._run}/error.log")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
        shutil.rmtree(self._run, ignore_errors=True)
