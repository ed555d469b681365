"""A TCP proxy that adds a fixed round-trip time in front of the benchmark's nginx (W5).

    python benchmarks/latency.py serve --upstream-port 8080 --rtt-ms 20   # prints its port, serves until killed
    python benchmarks/latency.py check                                    # is the proxy the bottleneck? (~30 s)

This machine's kernel has no netem (``tc qdisc ... netem`` fails) and Debian's nginx
modules that could wait (echo's ``echo_sleep``, lua, njs) are extra packages a benchmark
user would need as root; a small asyncio proxy needs nothing and runs everywhere.  It runs in
a process of its own (its CPU time is measured apart from the tool's and nginx's).

The model, one fixed round-trip time ``RTT`` per exchange and nothing else:

* every chunk a client sends is forwarded to nginx ``RTT`` after it arrived (the whole
  round trip is charged on the way in; answers are copied back at once).  A request on a
  kept-alive connection is therefore answered one ``RTT`` later than it would be directly;
  chunks are queued, not serialised, so a chunk never waits for the previous one's delay;
* a new connection costs one more ``RTT`` (the TCP handshake): nothing it sends reaches
  nginx before ``2 x RTT`` after it was accepted.  Tools that open a connection per file pay
  for it, as they would on a network;
* no bandwidth limit, no loss, no slow start (a fresh connection would need a second round
  trip for bodies beyond its initial window, ~14 KiB: not modelled).

Timers run on the asyncio loop: on a loaded machine a delay can come out a millisecond or
two longer, the same for every tool.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
CHUNK = 256 * 1024


async def _inbound(client: asyncio.StreamReader, upstream: asyncio.StreamWriter, rtt: float,
                   accepted: float) -> None:
    """Client to nginx: each chunk leaves RTT after it arrived, none before the handshake's end."""
    loop = asyncio.get_running_loop()
    earliest = accepted + 2 * rtt
    pending: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, chunk = await pending.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                if upstream.can_write_eof():
                    upstream.write_eof()
                return
            upstream.write(chunk)
            await upstream.drain()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            chunk = await client.read(CHUNK)
            pending.put_nowait((max(loop.time() + rtt, earliest), chunk))
            if not chunk:
                break
        await sender
    finally:
        sender.cancel()


async def _outbound(upstream: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
    """nginx to client: copied at once."""
    while chunk := await upstream.read(CHUNK):
        client.write(chunk)
        await client.drain()


async def _connection(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, port: int,
                      rtt: float) -> None:
    accepted = asyncio.get_running_loop().time()
    try:
        upstream_r, upstream_w = await asyncio.open_connection(HOST, port)
    except OSError:
        client_w.close()
        return
    inbound = asyncio.create_task(_inbound(client_r, upstream_w, rtt, accepted))
    try:
        # nginx closing (or either side failing) ends the connection; a client's EOF is
        # forwarded, and nginx then closes its side.
        await _outbound(upstream_r, client_w)
    except OSError:
        pass
    finally:
        inbound.cancel()
        for writer in (client_w, upstream_w):
            writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await inbound


async def serve(upstream_port: int, rtt: float, port: int = 0, tally: Path | None = None) -> None:
    """Listen on 127.0.0.1 (``port`` 0: any free one), print the port, serve until killed.

    With ``tally``, the number of connections accepted so far is written there at each accept
    (before the connection's first byte goes on, so a client that has finished has been counted).
    """
    accepted = 0

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        if tally is not None:
            tally.write_text(str(accepted))
        await _connection(reader, writer, upstream_port, rtt)

    server = await asyncio.start_server(connection, HOST, port, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


class LatencyProxy:
    """``with LatencyProxy(nginx.port, rtt=0.02) as proxy: proxy.url("/a.bin")`` (a child process)."""

    def __init__(self, upstream_port: int, *, rtt: float) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="pydownloads-latency-"))
        self._tally = self._folder / "connections"
        self._argv = [sys.executable, str(Path(__file__).resolve()), "serve", "--upstream-port",
                      str(upstream_port), "--rtt-ms", repr(rtt * 1000), "--tally", str(self._tally)]
        self._process: subprocess.Popen[str] | None = None
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def pids(self) -> list[int]:
        return [self._process.pid] if self._process is not None else []

    def connections(self) -> int:
        """Connections accepted so far (read before and after a client: how many it opened)."""
        try:
            return int(self._tally.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def __enter__(self) -> LatencyProxy:
        self._process = subprocess.Popen(self._argv, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.strip().isdigit():
            self.__exit__(None, None, None)
            raise RuntimeError("the latency proxy did not start")
        self.port = int(line)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
        shutil.rmtree(self._folder, ignore_errors=True)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check(files: int, size: int, parallel: int, rtt: float) -> None:
    """curl alone, ``parallel`` at a time: straight to nginx, through the proxy with no delay
    (its own cost and ceiling), and with ``rtt`` (against the model's floor)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.nginx import Nginx

    with tempfile.TemporaryDirectory(prefix="pydownloads-latency-") as base:
        Path(base).chmod(0o755)  # nginx's workers drop privileges: they must reach the data
        data = Path(base) / "data"
        data.mkdir()
        names = [f"f{i:05d}.bin" for i in range(files)]
        for name in names:
            (data / name).write_bytes(os.urandom(size))
        out = Path(base) / "out"
        with Nginx(data) as nginx:
            print(f"{files} files of {size // 1024} KiB, curl --parallel --parallel-max {parallel}")
            _check_one("nginx direct", nginx.url, None, names, out, parallel)
            for delay in (0.0, rtt):
                with LatencyProxy(nginx.port, rtt=delay) as proxy:
                    floor = (-(-files // parallel) + 1) * delay  # a round trip per wave, one per handshake
                    _check_one(f"proxy, RTT {delay * 1000:g} ms (floor {floor:.2f} s)", proxy.url,
                               proxy.pids()[0], names, out, parallel)
            with LatencyProxy(nginx.port, rtt=rtt) as proxy:
                # One at a time: the delay each exchange really gets (timer slack, scheduling).
                few = names[:100]
                _check_one(f"proxy, RTT {rtt * 1000:g} ms, 1 at a time, {len(few)} files "
                           f"(floor {(len(few) + 1) * rtt:.2f} s)", proxy.url, proxy.pids()[0], few, out, 1)


def _check_one(label: str, url: Callable[[str], str], pid: int | None, names: list[str], out: Path,
               parallel: int) -> None:
    config = out.parent / "curl.conf"
    config.write_text("".join(f'url = "{url("/" + n)}"\noutput = "{out / n}"\n' for n in names))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    cpu0 = _cpu_seconds(pid) if pid else 0.0
    started = time.perf_counter()
    done = subprocess.run(["curl", "-sS", "-f", "--parallel", "--parallel-max", str(parallel), "-K", str(config)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    cpu = _cpu_seconds(pid) - cpu0 if pid else None
    got = len(list(out.iterdir()))
    print(f"  {label:56} {wall:6.2f} s  {len(names) / wall:7,.0f} files/s  "
          + (f"proxy CPU {cpu:.2f} s ({cpu / wall:.0%} of a core)" if cpu is not None else "")
          + ("" if got == len(names) and not done.returncode else f"  FAILED: {got} files, {done.stderr[-200:]}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve", help="run the proxy (prints its port)")
    serving.add_argument("--upstream-port", type=int, required=True)
    serving.add_argument("--rtt-ms", type=float, default=20.0)
    serving.add_argument("--port", type=int, default=0)
    serving.add_argument("--tally", type=Path, help="write the number of connections accepted here")
    checking = commands.add_parser("check", help="curl alone through the proxy, against nginx directly")
    checking.add_argument("--files", type=int, default=1000)
    checking.add_argument("--size-kib", type=int, default=16)
    checking.add_argument("--parallel", type=int, default=16)
    checking.add_argument("--rtt-ms", type=float, default=20.0)
    args = parser.parse_args()
    if args.command == "serve":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(args.upstream_port, args.rtt_ms / 1000, args.port, args.tally))
    else:
        check(args.files, args.size_kib * 1024, args.parallel, args.rtt_ms / 1000)


if __name__ == "__main__":
    main()
