"""The one loop that moves a response body into a part file, chunk by chunk.

Used by a single stream (``Transfer._stream_whole``) and by each lane of a segmented
download (``RangeEngine``).  It is the hot path of every download: per chunk it makes no
allocation (reads go into one reused buffer, sliced only for a short last read), takes no
lock of its own, and calls exactly one hook, for what differs between its users.

A chunk is as many reads as fill the buffer within FILL_SECONDS: over TLS one read returns
one record (16 KiB), and a write, a count, an event and the rate and speed checks per record
cost more than the bytes (a 1 GiB file: 65,540 writes in 16 KiB, against 1,024 in 1 MiB).
Within a rate limit a chunk is at most one burst of the bucket, so waits stay short.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from pydownloads.domain.checksum import Hasher
from pydownloads.domain.errors import DownloadCancelledError
from pydownloads.downloads.pace import Pace
from pydownloads.infrastructure import transport
from pydownloads.infrastructure.files import PartFile
from pydownloads.infrastructure.limits import TokenBucket

#: Called with the number of body bytes just written (counts them for tracker and events).
ByteCounter = Callable[[int], None]
#: Called after each chunk with the position reached; returns where the loop must stop
#: (a position at or before it stops the loop at once).
Step = Callable[[int], int]
#: ``end`` of a body that runs until the server ends it.
UNBOUNDED = 1 << 62
#: How long one chunk may go on filling its buffer after its first read: the bound on how
#: late progress, the speed floor, the rate limit and a cancel see bytes that have arrived.
FILL_SECONDS = 0.02
#: ... for a lane of a file that other lanes may share: a split can cut its range while a
#: chunk fills, and what it reads past the cut is fetched twice (16 MiB over 4 lanes at
#: 8 MiB/s each, on a busy machine: 6 % more than the file with 20 ms).
SHARED_FILL = 0.005
#: The smallest chunk under a rate limit (a bucket's burst is a tenth of a second of its rate).
LIMITED_CHUNK = 16 << 10


@dataclass(frozen=True, kw_only=True, slots=True)
class ChunkCopy:
    """What every chunk of one download goes through, whichever response it comes from.

    :param part: where bytes are written, at their position.
    :param count: told the size of every chunk written (tracker, events).
    :param buckets: rate limits, each consumed per chunk; their waits pause ``Pace``.
    :param cancel_event: set by a hard shutdown: the loop raises DownloadCancelledError.
    :param url: the download's URL, for its errors.
    """

    part: PartFile
    count: ByteCounter
    buckets: tuple[TokenBucket, ...]
    cancel_event: threading.Event
    url: str

    def run(self, reader: transport.BodyReader, buffer: memoryview, pos: int, end: int, *,
            pace: Pace, hasher: Hasher | None = None, step: Step | None = None, fill: float = FILL_SECONDS) -> int:
        """Copy ``reader``'s body to ``[pos, end)`` of the part file; return the position
        reached: ``end`` (or where ``step`` said to stop), or less if the body ended first
        (for a body with a known end, the caller decides whether that is an error).

        :param buffer: reused for every read; reads ask for ``len(buffer)`` bytes at most.
        :param hasher: fed the bytes in order, if given.
        :param step: called after every chunk, see :data:`Step`.
        :param fill: seconds a chunk may go on filling after its first read.
        :raises DownloadCancelledError: ``cancel_event`` was set.
        :raises DownloadError: from the reader, the part file, ``pace`` or ``step``.
        """
        read, write, count, buckets = reader.read_into, self.part.write_at, self.count, self.buckets
        cancel = self.cancel_event
        if buckets:  # one chunk never owes a bucket more than its burst
            burst = min(bucket.burst for bucket in buckets)
            buffer = buffer[:max(LIMITED_CHUNK, min(len(buffer), int(burst)))]
        size = len(buffer)
        while pos < end:
            data = read(buffer if end - pos >= size else buffer[:end - pos], fill=fill)
            if not data:
                return pos
            got = len(data)
            write(pos, data)
            if hasher is not None:
                hasher.update(data)
            pos += got
            if step is not None:
                end = step(pos)
            # A split that cut the range inside this chunk: the bytes past the cut are the new
            # owner's to count (they were read, though: the limits and the pace see them).
            count(got if end >= pos else max(0, got - (pos - end)))
            waited = 0.0
            for bucket in buckets:  # a plain loop: no generator made per chunk
                waited += bucket.consume(got, cancel)
            pace.check(got, paused=waited)
            if cancel.is_set():
                raise DownloadCancelledError("cancelled", url=self.url)
        return pos
