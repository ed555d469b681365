"""A Dask job outlives its client: on a cluster of separate processes (``dask scheduler``,
``dask worker``), the client SIGKILLed mid-run, then the same call again."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="Dask's distributed scheduler is not installed (the min-deps job)")

from pydownloads.infrastructure.journal_reader import iter_rows
from pydownloads.localserver import LocalServer
from tests.dask_cluster import DaskCluster, dask_cluster
from tests.integration.helpers import file_sha256, payload, sha256
from tests.support import wait_until

#: The client: the same call each time, its input a generator over a file of URLs.
CLIENT = """
import json, sys
import distributed
from pydownloads.distributed import download_on_dask
address, folder, listing = sys.argv[1:4]
with open(listing, encoding="utf-8") as lines, distributed.Client(address, set_as_default=False, timeout=30) as client:
    results = download_on_dask((line.strip() for line in lines), folder, client, shard_size=10, job="nightly",
                               max_workers=2, max_segments=1)
    print(json.dumps({"completed": results.stats.completed, "total": results.stats.total}))
"""
FILES = 200


def start_client(cluster: DaskCluster, folder: Path, listing: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CLIENT, cluster.address, str(folder), str(listing)],
                            env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def completed_paths(folder: Path) -> set[str]:
    """The files whose completion the shards' state files hold now (read-only)."""
    return {"/" + Path(info.url).name for path in folder.glob(".pydownloads-shards/nightly/*.db")
            for info in iter_rows(path, ("completed",))}


def finish(client: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """The client's output once it ends (killed after ``timeout`` s: its pipes closed either way)."""
    try:
        return client.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        client.kill()
        client.communicate()
        raise


# Its waits are bounded one by one (30 + 10 + 30 + 120 s at most): more than the suite's 60 s
# default on a loaded machine, where a cluster of separate processes starts slowly.
@pytest.mark.timeout(240)
def test_the_client_killed_mid_run_then_the_same_call_continues(local_server: LocalServer, tmp_path: Path) -> None:
    bodies = {f"/c{i:03d}.bin": payload(10_000, i) for i in range(FILES)}
    urls = [local_server.add_file(path, body, rate=40_000) for path, body in bodies.items()]
    listing = tmp_path / "urls.txt"
    listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    # A file of the first shard answers only when released: the first client's task for that
    # shard still runs on its worker while the second client runs the job.
    held = "/c003.bin"
    local_server.hold(held)
    with dask_cluster(tmp_path, workers=2, threads=2) as cluster:
        first = start_client(cluster, out, listing)
        try:
            started = wait_until(lambda: len(local_server.requests) >= 50, timeout=30)
        finally:
            first.kill()
            _, first_errors = finish(first, timeout=10)
        assert started and first.returncode == -9, first_errors
        at_kill = Counter(record.path for record in local_server.requests)
        done_before = completed_paths(out)
        assert 20 <= len(done_before) < FILES and held not in done_before

        second = start_client(cluster, out, listing)
        try:
            # Four shard tasks of the first client ran at the kill (40 files at most): more new
            # files than that were asked for by the second, while the held one still waits.
            assert wait_until(lambda: len({r.path for r in local_server.requests}) > len(at_kill) + 40, timeout=30)
            assert local_server.request_count(held) == 1
        finally:
            local_server.release(held)
            stdout, stderr = finish(second, timeout=120)

    assert second.returncode == 0, stderr
    assert json.loads(stdout) == {"completed": FILES, "total": FILES}
    for path, body in bodies.items():
        assert file_sha256(out / path[1:]) == sha256(body), path
    after = Counter(record.path for record in local_server.requests)
    assert {path: after[path] - at_kill[path] for path in done_before if after[path] != at_kill[path]} == {}
    assert after[held] == 1  # the first client's task finished it: the second never asked again
