"""The same job across a Dask LocalCluster of two worker processes."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from pydownloads import DownloadSettings, DownloadStatus, InvalidArgumentError, RetryConfig  # noqa: E402
from pydownloads.distributed import download_on_dask  # noqa: E402
from pydownloads.localserver import AuthRequired, LocalServer  # noqa: E402
from tests.integration.helpers import file_sha256, payload, sha256  # noqa: E402
from tests.support import wait_until  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RETRY = RetryConfig(max_retries=2, base_delay=0.01, max_delay=0.05)


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                       dashboard_address=":0", silence_logs=40)
    with cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


def test_thousands_of_files_arrive_exact_with_failures_per_url(
    client: object, local_server: LocalServer, tmp_path: Path
) -> None:
    bodies = {f"/d{i}.bin": payload(1500 + i % 97, i) for i in range(2000)}
    urls = [local_server.add_file(path, body) for path, body in bodies.items()]
    missing = [local_server.url(f"/missing{i}") for i in range(3)]

    results = download_on_dask(urls + missing, tmp_path, client=client, shard_size=250,  # type: ignore[arg-type]
                               max_workers=4, retry_config=RETRY)

    assert results.stats.completed == 2000 and results.stats.failed == 3
    for url in missing:
        info = results.downloads[url]
        assert info.status is DownloadStatus.FAILED and "404" in (info.error or "")
    for path, body in bodies.items():
        assert file_sha256(tmp_path / path[1:]) == sha256(body)
    assert pickle.loads(pickle.dumps(results)) == results
    assert max(Counter(r.path for r in local_server.requests).values()) == 1  # nothing fetched twice


def test_a_worker_killed_mid_run_costs_no_completed_file(
    client: object, local_server: LocalServer, tmp_path: Path
) -> None:
    bodies = {f"/k{i}.bin": payload(40_000, i) for i in range(240)}
    urls = [local_server.add_file(path, body, rate=200_000) for path, body in bodies.items()]
    pids = sorted(client.run(os.getpid).values())  # type: ignore[attr-defined]
    killed = threading.Event()

    def kill_one_worker() -> None:
        wait_until(lambda: len(local_server.requests) >= 60, timeout=30)  # the checks below say if it came
        os.kill(pids[0], signal.SIGKILL)
        killed.set()

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    try:
        results = download_on_dask(urls, tmp_path, client=client, shard_size=30,  # type: ignore[arg-type]
                                   max_workers=2, max_segments=1, retry_config=RETRY)
    finally:
        killer.join(30)
    assert killed.is_set()
    assert results.stats.completed == 240
    for path, body in bodies.items():
        assert file_sha256(tmp_path / path[1:]) == sha256(body)
    # Only downloads in flight on the dead worker may be asked for again (resumed with Range
    # when their progress was saved): 2 tasks x 2 downloads at most.
    again = [path for path, count in Counter(r.path for r in local_server.requests).items() if count > 1]
    assert len(again) <= 4, again


def test_one_settings_object_reaches_the_worker_processes(
    client: object, local_server: LocalServer, tmp_path: Path
) -> None:
    bodies = {f"/s{i}.bin": payload(2000, i) for i in range(6)}
    asks = AuthRequired("u", "pw", schemes=("Basic",))
    urls = [local_server.add_file(path, body, auth=asks) for path, body in bodies.items()]
    settings = DownloadSettings.from_options(2, retry_config=RETRY, headers={"X-Team": "dask"}, auth=("u", "pw"))

    results = download_on_dask(urls, tmp_path, client=client, shard_size=3, settings=settings)  # type: ignore[arg-type]

    assert results.stats.completed == 6
    assert {r.headers.get("X-Team") for r in local_server.requests} == {"dask"}  # pickled, and applied
    answered = [r for r in local_server.requests if r.status == 200]  # over HTTP, after the server's 401
    assert len(answered) == 6 and all((r.headers.get("Authorization") or "").startswith("Basic ") for r in answered)


@pytest.mark.parametrize("wrong", [
    {"settings": DownloadSettings(), "max_workers": 2},
    {"settings": DownloadSettings.from_options(state_file=Path("s.db"))},
    {"state_file": Path("s.db")},
    {"job": "../elsewhere"},
    {"max_in_flight": 0},
    {"earlier_wait": -1},
], ids=["settings-and-keywords", "settings-with-a-state-file", "a-state-file", "a-job-path", "no-window",
        "a-negative-wait"])
def test_wrong_settings_are_refused_before_anything_runs(
        client: object, tmp_path: Path, wrong: dict[str, object]) -> None:
    with pytest.raises(InvalidArgumentError):
        download_on_dask(["http://127.0.0.1:9/a.bin"], tmp_path, client=client, **wrong)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_without_dask_the_import_says_how_to_install_it() -> None:
    code = "import sys\nsys.modules['distributed'] = None\nimport pydownloads.distributed"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "pip install 'pydownloads[dask]'" in result.stderr


def test_the_same_call_again_continues_the_job(client: object, local_server: LocalServer, tmp_path: Path) -> None:
    bodies = {f"/r{i}.bin": payload(3000, i) for i in range(12)}
    urls = [local_server.add_file(path, body) for path, body in bodies.items()]
    first = download_on_dask(urls, tmp_path, client=client, shard_size=5, max_workers=2)  # type: ignore[arg-type]
    assert first.stats.completed == 12 and len(local_server.requests) == 12
    jobs = list((tmp_path / ".pydownloads-shards").iterdir())
    assert len(jobs) == 1 and len(list(jobs[0].glob("*.db"))) == 3  # a job named from its input, 3 shards

    again = download_on_dask(iter(urls), tmp_path, client=client, shard_size=5, max_workers=2)  # type: ignore[arg-type]

    assert len(local_server.requests) == 12  # nothing fetched again
    assert again.stats.completed == 12 and [i.url for i in again.downloads.values()] == urls
    assert {again.outcome(info) for info in again.downloads.values()} == {"skipped"}
    assert list((tmp_path / ".pydownloads-shards").iterdir()) == jobs


def test_a_generator_is_read_as_the_window_of_shards_moves(
    client: object, local_server: LocalServer, tmp_path: Path
) -> None:
    size, window = 4, 2
    bodies = {f"/g{i}.bin": payload(2000, i) for i in range(40)}
    urls = [local_server.add_file(path, body) for path, body in bodies.items()]
    served_when_read: list[int] = []

    def generate() -> Iterator[str]:
        for url in urls:
            served_when_read.append(len(local_server.requests))
            yield url

    results = download_on_dask(generate(), tmp_path, client=client, shard_size=size,  # type: ignore[arg-type]
                               max_in_flight=window, max_workers=2, job="window")
    assert results.stats.completed == 40
    # Item i is read for shard i // size once all but `window` shards before it are done.
    behind = [(i, seen) for i, seen in enumerate(served_when_read) if seen < (i // size - window) * size]
    assert behind == []
    assert served_when_read[-1] >= 40 - (window + 1) * size  # not read ahead: the window held
    assert [p.name[:6] for p in sorted((tmp_path / ".pydownloads-shards" / "window").glob("*.db"))] == [
        f"{n:06d}" for n in range(10)]


def test_a_shard_an_earlier_task_still_holds_waits_for_it(
    client: object, local_server: LocalServer, tmp_path: Path
) -> None:
    from pydownloads._shards import ShardDigest, shard_file
    from pydownloads.domain.errors import StateFileError
    from pydownloads.infrastructure.journal import Journal

    bodies = {f"/w{i}.bin": payload(2000, i) for i in range(6)}
    urls = [local_server.add_file(path, body) for path, body in bodies.items()]
    digest = ShardDigest()
    for url in urls[:3]:
        digest.add(url)
    held = Journal(shard_file(tmp_path, "held", 0, digest.hexdigest()))  # as a task of a dead client would
    try:
        with pytest.raises(StateFileError):
            download_on_dask(urls, tmp_path, client=client, shard_size=3, job="held",  # type: ignore[arg-type]
                             earlier_wait=0.3)
        outcome: list[object] = []
        runner = threading.Thread(target=lambda: outcome.append(download_on_dask(
            urls, tmp_path, client=client, shard_size=3, job="held")))  # type: ignore[arg-type]
        runner.start()
        assert wait_until(lambda: len({r.path for r in local_server.requests}) == 3, timeout=30)
        assert {r.path for r in local_server.requests} == set(list(bodies)[3:])  # shard 1 only, shard 0 waits
    finally:
        held.close()
    runner.join(30)
    (results,) = outcome
    assert results.stats.completed == 6  # type: ignore[attr-defined]
    for path, body in bodies.items():
        assert file_sha256(tmp_path / path[1:]) == sha256(body)


def test_nothing_to_download_and_a_bad_item_in_the_stream(client: object, tmp_path: Path) -> None:
    empty = download_on_dask(iter(()), tmp_path, client=client)  # type: ignore[arg-type]
    assert empty.stats.total == 0 and list(empty.downloads) == [] and list(tmp_path.iterdir()) == []
    with pytest.raises(InvalidArgumentError):
        download_on_dask(iter(["ftp://127.0.0.1:9/a.bin"]), tmp_path, client=client)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
