"""A real Dask cluster of separate processes for the tests: ``dask scheduler`` and ``dask
worker`` started as commands on 127.0.0.1 (random ports, a scheduler file in a temporary
folder), waited for with bounded waits, always torn down.

    from tests.dask_cluster import dask_cluster

    with dask_cluster(tmp_path, workers=2, threads=2) as cluster:
        ...  # cluster.address, cluster.scheduler_file, cluster.env (for a client process)

Needs Dask (``distributed``); a test module skips without it (``pytest.importorskip``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[1]
#: Seconds to wait for the scheduler and every worker to be up (a loaded 2-core machine).
START_TIMEOUT = 60.0
#: Seconds a process has to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class DaskCluster:
    """A running cluster: the scheduler's address and file, and the environment that makes
    a child process import this checkout's pydownloads (and the tests')."""

    address: str
    scheduler_file: Path
    env: dict[str, str]


def cluster_env() -> dict[str, str]:
    """This environment with the checkout first on ``PYTHONPATH`` and Dask's logs quiet."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["DASK_LOGGING__DISTRIBUTED"] = "error"
    return env


@contextlib.contextmanager
def dask_cluster(folder: Path, *, workers: int = 2, threads: int = 2) -> Iterator[DaskCluster]:
    """Start ``dask scheduler`` and ``workers`` ``dask worker`` processes of ``threads``
    threads each; stop them all on the way out, whatever happened.

    :raises TimeoutError: the cluster was not up within ``START_TIMEOUT`` seconds.
    """
    scheduler_file = folder / "scheduler.json"
    env = cluster_env()
    dask = [sys.executable, "-m", "dask"]
    processes: list[subprocess.Popen[bytes]] = []
    logs = folder / "dask-logs"
    logs.mkdir(exist_ok=True)

    def start(name: str, *args: str) -> None:
        with open(logs / f"{name}.log", "wb") as log:
            processes.append(subprocess.Popen([*dask, *args], env=env, cwd=folder, stdout=log,
                                              stderr=subprocess.STDOUT))

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(scheduler_file))
        if not wait_until(lambda: _address(scheduler_file) is not None, timeout=START_TIMEOUT):
            raise TimeoutError(f"no Dask scheduler after {START_TIMEOUT} s: {_tail(logs)}")
        for number in range(workers):
            start(f"worker{number}", "worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1",
                  "--nthreads", str(threads), "--no-nanny", "--no-dashboard", "--name", f"w{number}")
        address = _address(scheduler_file)
        assert address is not None
        _wait_for_workers(address, workers)
        yield DaskCluster(address, scheduler_file, env)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)


def _address(scheduler_file: Path) -> str | None:
    try:
        return str(json.loads(scheduler_file.read_text(encoding="utf-8"))["address"])
    except (OSError, ValueError, KeyError):  # not written yet, or half written
        return None


def _wait_for_workers(address: str, count: int) -> None:
    import distributed

    with distributed.Client(address, timeout=START_TIMEOUT, set_as_default=False) as client:
        client.wait_for_workers(count, timeout=START_TIMEOUT)


def _tail(logs: Path) -> str:
    return " | ".join(f"{p.name}: {p.read_text(errors='replace')[-400:]}" for p in sorted(logs.glob("*.log")))
