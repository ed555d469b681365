"""The asyncio wrapper drives the same core: async handlers, join, shutdown, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

from pydownloads import DownloadStatus, FileConfig, RetryConfig
from pydownloads.aio import AsyncDownloadManager
from pydownloads.localserver import LocalServer
from tests.integration.helpers import file_sha256, payload, sha256
from tests.support import wait_until


def test_async_manager_downloads_and_runs_async_handlers_on_the_loop(local_server: LocalServer, tmp_path: Path) -> None:
    bodies = {f"/a{i}.bin": payload(50_000, i) for i in range(5)}
    for path, body in bodies.items():
        local_server.add_file(path, body)

    async def main() -> tuple[list[str], set[int]]:
        seen: list[str] = []
        threads: set[int] = set()

        async def on_completed(event) -> None:  # type: ignore[no-untyped-def]
            threads.add(threading.get_ident())
            seen.append(event.path.name)

        async with AsyncDownloadManager(download_dir=tmp_path, max_workers=2) as manager:
            manager.worker.emitter.on("worker.completed", on_completed)
            await manager.add_to_queue([FileConfig(url=local_server.url(p)) for p in bodies])
            await manager.queue.join()
            # The handlers were scheduled on this loop: poll from a thread while it runs them.
            assert await asyncio.to_thread(wait_until, lambda: len(seen) == len(bodies))
        return seen, threads

    seen, threads = asyncio.run(main())
    assert sorted(seen) == sorted(p[1:] for p in bodies)
    assert threads == {threading.get_ident()}  # async handlers ran on the loop's thread
    for path, body in bodies.items():
        assert file_sha256(tmp_path / path[1:]) == sha256(body)


def test_cancelling_the_task_cancels_the_downloads(local_server: LocalServer, tmp_path: Path) -> None:
    urls = [local_server.add_file(f"/slow{i}.bin", payload(3_000_000, i), rate=500_000) for i in range(3)]
    holder: dict[str, AsyncDownloadManager] = {}

    async def run() -> None:
        async with AsyncDownloadManager(download_dir=tmp_path, max_workers=1,
                                        retry_config=RetryConfig(max_retries=0)) as manager:
            holder["m"] = manager
            await manager.add_to_queue(urls)
            await manager.queue.join()

    async def main() -> None:
        task = asyncio.create_task(run())
        def started() -> bool:
            return "m" in holder and holder["m"].tracker.get_stats().bytes_downloaded > 0

        assert await asyncio.to_thread(wait_until, started)  # the loop goes on running ``run`` meanwhile
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    statuses = {info.status for info in holder["m"].tracker.get_all_downloads().values()}
    assert statuses == {DownloadStatus.CANCELLED}
