"""A Dask job's ``max_connections_per_host`` held over the whole cluster.

Each shard's manager takes a connection slot from its own :class:`HostLimiter` first (which
orders its threads by priority and keeps at most the cap of them asking further), then a
lease of the job's ``distributed.Semaphore`` for that host, named from the job, the cap and
the host: every shard of the job, on any worker process, shares one semaphore per host, so
the cap bounds the cluster's connections to a host, not each task's.

What it costs and how it fails:

- one scheduler round trip to take a lease, per download and per extra segment lane, and
  one to give it back, which the download does not wait for (docs/BENCHMARKS.md);
- a wait polls the scheduler every ``poll`` seconds so that a shutdown ends it (the
  scheduler wakes a waiter at once when a lease comes back: the poll is only for the cancel);
- a worker that dies keeps its leases until the scheduler drops them: Dask's
  ``distributed.scheduler.locks.lease-timeout`` (30 s by default), checked every
  ``lease-validation-interval`` (10 s); live workers refresh theirs in the background.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from dataclasses import dataclass

import distributed

from pydownloads.domain.errors import DownloadCancelledError
from pydownloads.downloads.settings import DownloadSettings

#: Seconds between two looks at the cancel event while a lease is awaited.
DEFAULT_POLL = 0.5


def share_host_cap(settings: DownloadSettings, job: str) -> DownloadSettings:
    """``settings`` whose ``max_connections_per_host``, if given, holds over every shard
    of ``job`` on the cluster; as they are without one (the default cap stays per task),
    or when they bring a ``host_gate`` of their own."""
    politeness = settings.politeness
    if politeness.max_connections_per_host is None or politeness.host_gate is not None:
        return settings
    shared = dataclasses.replace(politeness, host_gate=ClusterHostCap(job))
    return dataclasses.replace(settings, politeness=shared)


@dataclass(frozen=True)
class ClusterHostCap:
    """The picklable description a job's settings carry to its shards: called on a worker
    (in the task's thread), it makes the gate of that shard's manager.

    :param job: the job's identity: every shard given the same one shares the cap.
    :param poll: seconds between two looks at the cancel event while waiting.
    """

    job: str
    poll: float = DEFAULT_POLL

    def __call__(self, limit: int) -> DaskHostGate:
        return DaskHostGate(f"pydownloads-host-{self.job}-{limit}", limit, poll=self.poll)


async def _give_back(semaphore: distributed.Semaphore) -> None:
    """On the event loop, ``release`` is a coroutine (a failure is Dask's to log: the lease
    then lapses after the lease timeout)."""
    await semaphore.release()


class DaskHostGate:
    """One ``distributed.Semaphore`` of ``limit`` leases per host, made when the host is
    first asked for; thread-safe (a HostGate for :class:`HostLimiter`).

    Made in a task's thread (or a client's), whose worker (or client) it then uses from any
    thread: the manager's threads are not Dask's.
    """

    def __init__(self, prefix: str, limit: int, *, poll: float = DEFAULT_POLL) -> None:
        self._prefix, self._limit, self._poll = prefix, limit, poll
        try:
            owner: distributed.Worker | distributed.Client = distributed.get_worker()
        except ValueError:  # not in a task: the current client's
            owner = distributed.get_client()
        if owner.loop is None:  # a client or worker not started
            raise RuntimeError("the cluster-wide host cap needs a running Dask worker or client")
        self._scheduler, self._loop = owner.scheduler, owner.loop
        self._lock = threading.Lock()
        self._semaphores: dict[str, distributed.Semaphore] = {}

    def _semaphore(self, host: str) -> distributed.Semaphore:
        with self._lock:
            semaphore = self._semaphores.get(host)
            if semaphore is None:
                semaphore = distributed.Semaphore(max_leases=self._limit, name=f"{self._prefix}-{host}",
                                                  scheduler_rpc=self._scheduler, loop=self._loop)
                self._semaphores[host] = semaphore
            return semaphore

    def acquire(self, host: str, cancel_event: threading.Event, *, wait: bool) -> bool:
        """Take a lease for ``host``; with ``wait=False`` only if one is free now.

        :raises DownloadCancelledError: ``cancel_event`` was set while waiting.
        """
        semaphore = self._semaphore(host)
        if not wait:
            return bool(semaphore.acquire(timeout=0))
        while not cancel_event.is_set():
            if semaphore.acquire(timeout=self._poll):
                return True
        raise DownloadCancelledError("cancelled while waiting for a connection slot of the cluster")

    def release(self, host: str) -> None:
        """Give a lease for ``host`` back to the scheduler, without waiting for its answer
        (the download's thread goes on at once; the lease is free one round trip later)."""
        with self._lock:
            semaphore = self._semaphores[host]
        with contextlib.suppress(RuntimeError):  # the worker is closing: the lease lapses
            self._loop.add_callback(_give_back, semaphore)

    def close(self) -> None:
        """Stop refreshing leases (any still held lapse after Dask's lease timeout).

        The semaphores stay on the scheduler: other shards of the job share them.
        """
        with self._lock:
            semaphores = list(self._semaphores.values())
        for semaphore in semaphores:
            refresh = getattr(semaphore, "refresh_callback", None)  # none with an infinite lease timeout
            if refresh is not None:
                refresh.stop()
