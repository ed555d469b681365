"""How downloads are carried out: one frozen object shared by the worker and its transfers."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from pydownloads.domain.errors import InvalidArgumentError
from pydownloads.domain.models import check_count, check_rate
from pydownloads.infrastructure.transport import Timeout

DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 60.0)
DEFAULT_CHUNK_SIZE = 1 << 20
#: Reads are capped at this when more than MANY_LANES connections share a file: bigger
#: buffers per connection then cost memory (16 lanes: +30 MiB) for no speed.
MANY_LANES_READ = 256 << 10
MANY_LANES = 4
#: A file's first connection at least this fast (bytes/s) runs alone: on loopback or a LAN
#: one connection copies about as fast as the machine can, and more lanes would only cost
#: memory and CPU.  A slower one gets its extra lanes as soon as that shows: the rate is
#: measured over its first LANE_PROBE seconds, then again every LANE_RECHECK seconds.
FAST_LANE = 300_000_000
LANE_PROBE = 0.02
LANE_RECHECK = 0.5
#: A body this small goes through one pass with no resume state (the range machinery would
#: cost more than it could save).
SMALL_BODY = 256 << 10
DEFAULT_MAX_SEGMENTS = 4
DEFAULT_MIN_SEGMENT_SIZE = 4 << 20
DEFAULT_MAX_CONNECTIONS_PER_HOST = 8
#: A stream under 1,000 bytes/s for a whole minute is stalled, not slow (curl users set
#: --speed-limit 1000 --speed-time 60 for the same reason).
DEFAULT_MIN_SPEED = 1000.0
DEFAULT_MIN_SPEED_WINDOW = 60.0
#: How often the resume state of a running download is written beside its part file.
DEFAULT_SAVE_INTERVAL = 1.0
#: What to do when the destination file exists already (and ``if_changed`` is not set).
ON_EXISTING = ("replace", "skip", "rename")


def validate_timeout(timeout: object) -> Timeout:
    """``timeout`` as requests takes it: seconds, or (connect, read) seconds, all > 0."""
    values = timeout if isinstance(timeout, tuple) else (timeout,)
    if not 1 <= len(values) <= 2 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf") for v in values
    ):
        raise InvalidArgumentError(f"timeout must be seconds > 0 or a (connect, read) pair, not {timeout!r}")
    return timeout  # type: ignore[return-value]


@dataclass(frozen=True, kw_only=True)
class TransferSettings:
    """Options of the byte-moving machinery (see DownloadManager for each meaning)."""

    timeout: Timeout = DEFAULT_TIMEOUT
    chunk_size: int = DEFAULT_CHUNK_SIZE
    max_segments: int = DEFAULT_MAX_SEGMENTS
    min_segment_size: int = DEFAULT_MIN_SEGMENT_SIZE
    min_speed: float | None = None
    min_speed_window: float = DEFAULT_MIN_SPEED_WINDOW
    deadline: float | None = None
    save_interval: float = DEFAULT_SAVE_INTERVAL
    on_existing: str = "replace"
    #: A file's first connection at least this fast (bytes/s) runs alone (see FAST_LANE).
    fast_lane: float = FAST_LANE
    cancel_event: threading.Event = field(default_factory=threading.Event, compare=False)

    def __post_init__(self) -> None:
        validate_timeout(self.timeout)
        check_count("chunk_size", self.chunk_size, minimum=1)
        check_count("max_segments", self.max_segments, minimum=1)
        check_count("min_segment_size", self.min_segment_size, minimum=1)
        check_rate("min_speed", self.min_speed)
        check_rate("min_speed_window", self.min_speed_window)
        check_rate("deadline", self.deadline)
        check_rate("save_interval", self.save_interval)
        check_rate("fast_lane", self.fast_lane)
        if self.on_existing not in ON_EXISTING:
            raise InvalidArgumentError(f"on_existing must be one of {', '.join(ON_EXISTING)}, not {self.on_existing!r}")
