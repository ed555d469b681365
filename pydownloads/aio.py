"""An asyncio face on the synchronous manager: every blocking call runs in ``asyncio.to_thread``::

    results = await pydownloads.aio.download(urls, download_dir="downloads")

or, to queue as you go::

    from pydownloads.aio import AsyncDownloadManager

    async with AsyncDownloadManager(download_dir=Path("downloads"), max_workers=3) as manager:
        await manager.add_to_queue(files)
        await manager.queue.join()

No download logic lives here: the threads of :class:`DownloadManager` do the work, and this
wrapper only keeps the event loop free while it waits.  Async event handlers are scheduled
on the loop that entered the ``async with`` block.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine, Iterable
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pydownloads.api import Keywords
from pydownloads.api import download as _download
from pydownloads.domain.models import FileConfig
from pydownloads.domain.redact import get_logger
from pydownloads.downloads.manager import DownloadManager
from pydownloads.downloads.queue import PriorityDownloadQueue
from pydownloads.downloads.worker import DownloadWorker
from pydownloads.events.emitter import EventEmitter
from pydownloads.results import DownloadResults
from pydownloads.tracking.tracker import DownloadTracker

if TYPE_CHECKING:
    from typing_extensions import Unpack

logger = get_logger(__name__)

__all__ = ["AsyncDownloadManager", "AsyncQueue", "download"]


async def download(
    files: Iterable[FileConfig | str] | FileConfig | str,
    download_dir: str | PathLike[str] = Path("downloads"),
    **kwargs: Unpack[Keywords],
) -> DownloadResults:
    """:func:`pydownloads.download` without blocking the event loop: the same arguments, the
    same results, run in ``asyncio.to_thread``.

    Cancelling the awaiting task does not stop the downloads (a thread cannot be
    interrupted): the call runs to its end in its thread.  Event handlers given through an
    ``emitter`` run in the download threads.
    """
    return await asyncio.to_thread(_download, files, download_dir, **kwargs)


class AsyncQueue:
    """``await queue.join()`` over the manager's thread-safe queue."""

    def __init__(self, queue: PriorityDownloadQueue[Any]) -> None:
        self._queue = queue

    async def join(self) -> None:
        """Wait until every queued download reached a final state."""
        await asyncio.to_thread(self._queue.join)

    def qsize(self) -> int:
        """How many downloads wait."""
        return self._queue.qsize()


class AsyncDownloadManager:
    """The DownloadManager for asyncio code; takes the same arguments.

    Handlers registered with ``manager.worker.emitter.on`` may be coroutine functions: they
    run on the event loop of the ``async with`` block (a plain function runs in the download
    thread, as with the sync manager).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "emitter" not in kwargs:
            kwargs["emitter"] = EventEmitter(coroutine_runner=self._schedule)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._manager = DownloadManager(*args, **kwargs)
        self.queue = AsyncQueue(self._manager.queue)

    @property
    def manager(self) -> DownloadManager:
        """The synchronous manager underneath."""
        return self._manager

    @property
    def emitter(self) -> EventEmitter:
        """The event emitter (same as ``manager.worker.emitter``)."""
        return self._manager.emitter

    @property
    def worker(self) -> DownloadWorker:
        """The shared worker (``manager.worker.emitter.on(...)``)."""
        return self._manager.worker

    @property
    def tracker(self) -> DownloadTracker:
        """The tracker holding every download's state."""
        return self._manager.tracker

    async def add_to_queue(self, files: Iterable[FileConfig | str]) -> int:
        """Queue downloads (see :meth:`DownloadManager.add_to_queue`)."""
        self._bind_loop()
        items = list(files) if not isinstance(files, (str, FileConfig)) else [files]
        return await asyncio.to_thread(self._manager.add_to_queue, items)

    async def shutdown(self, wait_for_current: bool = True) -> None:
        """Stop (see :meth:`DownloadManager.shutdown`)."""
        await asyncio.to_thread(self._manager.shutdown, wait_for_current)

    async def __aenter__(self) -> AsyncDownloadManager:
        self._bind_loop()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            try:
                await asyncio.to_thread(self._manager.close)
            except BaseException:
                await asyncio.to_thread(self._manager.shutdown, False)
                raise
        else:
            await asyncio.to_thread(self._manager.shutdown, False)

    def _bind_loop(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()

    def _schedule(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            coroutine.close()
            logger.error("an async event handler ran with no event loop attached; skipped")
            return
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        future.add_done_callback(_log_handler_failure)


def _log_handler_failure(future: concurrent.futures.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.error("async event handler failed", exc_info=future.exception())
