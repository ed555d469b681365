"""The signals that carry events, and the emitter facade that sends and subscribes to them.

Each :class:`EventEmitter` owns a private blinker ``Namespace``: two managers never see each
other's events, and nothing is registered process-wide.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from blinker import ANY, NamedSignal, Namespace

from pydownloads.domain.errors import InvalidArgumentError
from pydownloads.domain.redact import get_logger
from pydownloads.events.types import (
    ChunkDownloaded,
    DownloadCancelled,
    DownloadCompleted,
    DownloadEvent,
    DownloadFailed,
    DownloadQueued,
    DownloadRetrying,
    DownloadStarted,
)

logger = get_logger(__name__)

Handler = Callable[[Any], object]
CoroutineRunner = Callable[[Coroutine[Any, Any, Any]], object]

#: Signal name, event type and what the signal means.
SIGNALS: dict[str, tuple[type[DownloadEvent], str]] = {
    "worker.queued": (DownloadQueued, "A download was queued; payload DownloadQueued."),
    "worker.started": (DownloadStarted, "An attempt began streaming the body; payload DownloadStarted."),
    "worker.chunk_downloaded": (ChunkDownloaded, "Body bytes were written; payload ChunkDownloaded."),
    "worker.completed": (DownloadCompleted, "The file is complete; payload DownloadCompleted."),
    "worker.failed": (DownloadFailed, "The download gave up; payload DownloadFailed."),
    "worker.retrying": (DownloadRetrying, "Another attempt follows a wait; payload DownloadRetrying."),
    "worker.cancelled": (DownloadCancelled, "Shutdown stopped the download; payload DownloadCancelled."),
}
EVENT_NAMES: dict[type[DownloadEvent], str] = {event_type: name for name, (event_type, _) in SIGNALS.items()}


class EventEmitter:
    """Publish download events to handlers registered by name.

    ``emitter.on("worker.chunk_downloaded", handler)`` calls ``handler(event)`` for every
    such event, in the thread that produced it.  A handler that raises is logged and skipped;
    it never breaks a download.  Coroutine functions are accepted when a ``coroutine_runner``
    was given (the asyncio wrapper passes one that schedules them on its loop).

    Thread-safe: handlers may be added and removed while downloads run.
    """

    def __init__(self, *, coroutine_runner: CoroutineRunner | None = None) -> None:
        self._namespace = Namespace()
        self._signals: dict[str, NamedSignal] = {
            name: self._namespace.signal(name, doc=doc) for name, (_, doc) in SIGNALS.items()
        }
        self._by_type: dict[type[DownloadEvent], NamedSignal] = {
            event_type: self._signals[name] for event_type, name in EVENT_NAMES.items()
        }
        self._coroutine_runner = coroutine_runner

    @property
    def names(self) -> list[str]:
        """The signal names handlers can subscribe to."""
        return list(self._signals)

    def on(self, name: str, handler: Handler) -> Handler:
        """Call ``handler(event)`` for every event named ``name``; returns ``handler``.

        :raises InvalidArgumentError: unknown name, handler not callable, or a coroutine
            function when this emitter has no coroutine runner.
        """
        if not callable(handler):
            raise InvalidArgumentError(f"handler for {name!r} is not callable")
        if inspect.iscoroutinefunction(handler) and self._coroutine_runner is None:
            raise InvalidArgumentError(
                "async handlers need pydownloads.aio.AsyncDownloadManager; use a plain function here"
            )
        # weak=False: a lambda or local function must stay registered until .off().
        self._signal(name).connect(handler, sender=ANY, weak=False)
        return handler

    def off(self, name: str, handler: Handler) -> None:
        """Stop calling ``handler`` for ``name`` (no error if it was not registered).

        Matched by equality, so ``off(name, items.append)`` works although each
        ``items.append`` is a new object.
        """
        signal = self._signal(name)
        for receiver in list(signal.receivers.values()):
            if receiver == handler:
                signal.disconnect(receiver)

    def is_listening(self, event_type: type[DownloadEvent]) -> bool:
        """True when at least one handler would receive events of ``event_type`` (O(1))."""
        return bool(self._by_type[event_type].receivers)

    def emit(self, event: DownloadEvent) -> None:
        """Deliver ``event`` to its handlers.  Never raises because of a handler."""
        signal = self._by_type.get(type(event))
        if signal is None:
            raise InvalidArgumentError(f"{type(event).__name__} is not an event this emitter carries")
        if not signal.receivers:
            return
        for receiver in signal.receivers_for(event):
            try:
                result = receiver(event)
                if inspect.iscoroutine(result):
                    self._run_coroutine(result)
            except Exception:
                logger.exception("event handler %r failed on %s", receiver, type(event).__name__)

    def _run_coroutine(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        if self._coroutine_runner is None:
            coroutine.close()
            logger.error("an event handler returned a coroutine, but no event loop is attached")
            return
        self._coroutine_runner(coroutine)

    def _signal(self, name: str) -> NamedSignal:
        try:
            return self._signals[name]
        except KeyError:
            raise InvalidArgumentError(
                f"unknown event name {name!r}; known: {', '.join(self._signals)}"
            ) from None
