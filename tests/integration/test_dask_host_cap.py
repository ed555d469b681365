"""A Dask job's max_connections_per_host holds over the whole cluster: two worker
processes with four task threads each, shards of a few files, eight download threads per
shard, and the server never answers more than the cap at once (and does reach it)."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

from pydownloads import DownloadSettings, RetryConfig  # noqa: E402
from pydownloads._dask_gate import ClusterHostCap, DaskHostGate, share_host_cap  # noqa: E402
from pydownloads.distributed import download_on_dask  # noqa: E402
from pydownloads.domain.errors import DownloadCancelledError  # noqa: E402
from tests.integration.helpers import file_sha256, payload, sha256  # noqa: E402

RETRY = RetryConfig(max_retries=2, base_delay=0.01, max_delay=0.05)
CAP = 4
HOST = "http://127.0.0.1:1"
#: A lease not refreshed for this long is dropped by the scheduler (Dask's default: 30 s).
LEASE_TIMEOUT = 3.0


class CountingServer(ThreadingHTTPServer):
    """Serves ``bodies`` (Range too) at ``rate`` bytes/s per response, and counts the
    connections with a response under way, as the kernel sees them: a response the client
    dropped stops counting when its connection closes, even between two paced writes."""

    daemon_threads = True

    def __init__(self, bodies: dict[str, bytes], rate: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies, self.rate = bodies, rate
        self.lock = threading.Lock()
        self.serving: set[socket.socket] = set()
        self.most = 0
        self.ranges = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def begin(self, connection: socket.socket, ranged: bool) -> None:
        with self.lock:
            self.serving = {c for c in self.serving if not _closed(c)}  # FINs already in: gone
            self.serving.add(connection)
            self.most = max(self.most, len(self.serving))
            self.ranges += ranged

    def end(self, connection: socket.socket) -> None:
        with self.lock:
            self.serving.discard(connection)


def _closed(connection: socket.socket) -> bool:
    """Whether the peer closed ``connection`` (its FIN is in, nothing else is)."""
    try:
        readable = select.select([connection], [], [], 0)[0]
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: CountingServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        body = self.server.bodies[self.path]
        first, last = 0, len(body) - 1
        asked = self.headers.get("Range")
        if asked:
            start, _, end = asked.removeprefix("bytes=").partition("-")
            first, last = int(start), min(int(end) if end else last, last)
        self.server.begin(self.connection, bool(asked))
        try:
            self.send_response(206 if asked else 200)
            self.send_header("Content-Length", str(last - first + 1))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", '"v1"')
            if asked:
                self.send_header("Content-Range", f"bytes {first}-{last}/{len(body)}")
            self.end_headers()
            self._pace(body[first:last + 1])
        finally:
            self.server.end(self.connection)

    def _pace(self, data: bytes) -> None:
        """Write ``data`` in pieces at the server's rate; done with the last piece (no pause
        after it: the client has every byte then and may start its next request). The
        response stops counting just before its last piece goes out: once the client holds
        every byte it may start its next request at once, and this thread, descheduled after
        its write, would otherwise still count the old one (a count too high on a busy machine)."""
        piece = max(1, self.server.rate // 50)
        for offset in range(0, len(data), piece):
            if offset:
                time.sleep(piece / self.server.rate)
            if _closed(self.connection):
                self.close_connection = True
                return
            if offset + piece >= len(data):
                self.server.end(self.connection)
            self.wfile.write(data[offset:offset + piece])


@pytest.fixture()
def counting_server(request: pytest.FixtureRequest) -> Iterator[CountingServer]:
    bodies, rate = request.param
    server = CountingServer(bodies, rate)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    short_leases = {"distributed.scheduler.locks.lease-timeout": f"{LEASE_TIMEOUT}s",
                    "distributed.scheduler.locks.lease-validation-interval": "0.2s"}
    with dask.config.set(short_leases):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=4, processes=True,
                                           dashboard_address=":0", silence_logs=40)
        with cluster, distributed.Client(cluster) as dask_client:
            yield dask_client


SMALL = {f"/c{i}.bin": payload(8000, i) for i in range(64)}


@pytest.mark.parametrize("counting_server", [(SMALL, 80_000)], indirect=True)  # 0.1 s a file
def test_the_cap_holds_over_every_worker_process_and_shard(
    client: object, counting_server: CountingServer, tmp_path: Path
) -> None:
    urls = [counting_server.url(path) for path in SMALL]

    results = download_on_dask(urls, tmp_path, client=client, shard_size=4,  # type: ignore[arg-type]
                               max_workers=8, max_connections_per_host=CAP, retry_config=RETRY)

    assert results.stats.completed == 64
    # 16 shards on 8 task threads in 2 processes, 8 threads each: without the shared cap, 32
    # connections at once; with it, the cap, and the cap is reached.
    assert counting_server.most == CAP
    for path, body in SMALL.items():
        assert file_sha256(tmp_path / path[1:]) == sha256(body)


SEGMENTED = {f"/s{i}.bin": payload(1 << 20, i) for i in range(8)}


@pytest.mark.parametrize("counting_server", [(SEGMENTED, 2 << 20)], indirect=True)
def test_segment_lanes_take_their_connections_from_the_same_cap(
    client: object, counting_server: CountingServer, tmp_path: Path
) -> None:
    # Lanes cut responses short: the server counts a dropped one until its connection
    # closes, not until its next paced write (a LocalServer would count it ~20 ms longer).
    urls = [counting_server.url(path) for path in SEGMENTED]

    results = download_on_dask(urls, tmp_path, client=client, shard_size=1,  # type: ignore[arg-type]
                               max_workers=2, max_segments=4, min_segment_size=128 << 10,
                               max_connections_per_host=CAP, retry_config=RETRY)

    assert results.stats.completed == 8
    assert counting_server.most == CAP
    assert counting_server.ranges > 0  # segments did run
    for path, body in SEGMENTED.items():
        assert file_sha256(tmp_path / path[1:]) == sha256(body)


def test_without_a_cap_given_the_settings_stay_as_they_are() -> None:
    plain = DownloadSettings.from_options(4)
    assert share_host_cap(plain, "job") is plain
    capped = share_host_cap(DownloadSettings.from_options(4, max_connections_per_host=2), "job")
    assert capped.politeness.host_gate == ClusterHostCap("job")
    assert share_host_cap(capped, "other") is capped  # a gate of the caller's own stays


def test_a_full_gate_refuses_at_once_and_ends_a_wait_on_cancel(client: object) -> None:
    gate = ClusterHostCap("full", poll=0.1)(2)
    other = DaskHostGate("pydownloads-host-full-2", 2, poll=0.1)  # another process's view: the same semaphore
    cancel = threading.Event()
    try:
        assert gate.acquire(HOST, cancel, wait=True) and gate.acquire(HOST, cancel, wait=True)
        assert not other.acquire(HOST, cancel, wait=False)
        timer = threading.Timer(0.3, cancel.set)
        timer.start()
        started = time.monotonic()
        with pytest.raises(DownloadCancelledError):
            other.acquire(HOST, cancel, wait=True)
        assert time.monotonic() - started < 2
        gate.release(HOST)  # answered later: the other side's wait ends when it lands
        bound = threading.Event()
        threading.Timer(10, bound.set).start()  # never reached: a bound on the test
        assert other.acquire(HOST, bound, wait=True)
        bound.set()
        other.release(HOST)
        gate.release(HOST)
    finally:
        gate.close()
        other.close()


def test_leases_no_longer_refreshed_come_back_after_the_lease_timeout(client: object) -> None:
    # A worker that died refreshes nothing: its leases lapse and the others go on.
    dead = ClusterHostCap("lapse")(1)
    assert dead.acquire(HOST, threading.Event(), wait=True)
    dead.close()  # stops refreshing, keeps the lease
    alive = ClusterHostCap("lapse", poll=0.1)(1)
    try:
        assert not alive.acquire(HOST, threading.Event(), wait=False)
        cancel = threading.Event()
        timer = threading.Timer(LEASE_TIMEOUT * 5, cancel.set)  # the bound of this test, never reached
        timer.start()
        started = time.monotonic()
        assert alive.acquire(HOST, cancel, wait=True)
        timer.cancel()
        assert LEASE_TIMEOUT * 0.5 < time.monotonic() - started < LEASE_TIMEOUT * 4
        alive.release(HOST)
    finally:
        alive.close()
