"""A download run's settings: one frozen, validated object built once and handed down.

:class:`DownloadSettings` is what the manager, the command and Dask all build; its groups go
to the layer that uses them: :class:`TransferSettings` to the worker and its transfers,
:class:`PolitenessSettings` to the host limiter and the rate limit,
:class:`~pydownloads.infrastructure.http_settings.SessionSettings` to ``build_session``,
:class:`JournalSettings` to the state file.  Vary one with ``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from typing import TYPE_CHECKING, Any, TypedDict

from pydownloads.domain.errors import InvalidArgumentError
from pydownloads.domain.models import FileConfig, check_count, check_rate
from pydownloads.domain.retry import RetryConfig
from pydownloads.infrastructure.http_settings import Auth, SessionSettings
from pydownloads.infrastructure.limits import HostGateFactory, HostLimiter
from pydownloads.infrastructure.transport import Timeout

if TYPE_CHECKING:
    import http.cookiejar
    from collections.abc import Mapping

    from typing_extensions import Unpack

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
#: How far a FileConfig's ``segments`` may raise the default per-host cap; the pooled session
#: keeps at least this many connections per host, so that none opened is dropped on return
#: (an idle pool slot costs nothing).  aria2c allows 16 connections per server at most.
MAX_RAISED_CONNECTIONS_PER_HOST = 32
DEFAULT_MAX_WORKERS = 4
#: How long a hard shutdown lets in-flight downloads notice it before it cancels them.
DEFAULT_CANCEL_GRACE = 1.0
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
    """Options of the byte-moving machinery (see DownloadManager for each meaning).

    ``cancel_event`` is the run's own: a manager gives its transfers a new one (so two
    managers built from the same settings never cancel each other), and a pickled copy
    (on its way to a Dask worker) gets a new one, as an Event cannot cross processes.
    """

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
        for name in ("min_speed_window", "save_interval", "fast_lane"):  # check_rate lets None through
            if getattr(self, name) is None:
                raise InvalidArgumentError(f"{name} must be a number > 0, not None")
        if self.on_existing not in ON_EXISTING:
            raise InvalidArgumentError(f"on_existing must be one of {', '.join(ON_EXISTING)}, not {self.on_existing!r}")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["cancel_event"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, cancel_event=threading.Event())


@dataclass(frozen=True, kw_only=True)
class PolitenessSettings:
    """How hard one run may press on servers.

    :param max_connections_per_host: connections open at once to one host, over files and
        segments; None (the default): never below what the run asks (see
        :attr:`DownloadSettings.connections_per_host`).
    :param rate_limit: bytes per second over all downloads; None: no limit.
    :param host_gate: makes, where the run happens, a gate that bounds
        ``max_connections_per_host`` over everyone sharing it as well (the shards of a Dask
        job: :func:`pydownloads.distributed.download_on_dask` sets it); it must pickle.
        None (the default): the cap holds for this run alone.
    """

    max_connections_per_host: int | None = None
    rate_limit: float | None = None
    host_gate: HostGateFactory | None = None

    def __post_init__(self) -> None:
        check_count("max_connections_per_host", self.max_connections_per_host, minimum=1)
        check_rate("rate_limit", self.rate_limit)
        if self.host_gate is not None and not callable(self.host_gate):
            raise InvalidArgumentError(f"host_gate must be callable, not {type(self.host_gate).__name__}")
        if self.host_gate is not None and self.max_connections_per_host is None:
            raise InvalidArgumentError("host_gate needs max_connections_per_host: the cap it shares")


@dataclass(frozen=True, kw_only=True)
class JournalSettings:
    """The state file that lets a rerun continue (see DownloadManager's ``state_file``).

    :param state_file: the SQLite journal; None (the default): keep no state.
    :param retry_failed: with a state file, downloads that failed in an earlier run are
        tried again.
    """

    state_file: str | PathLike[str] | None = None
    retry_failed: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.retry_failed, bool):
            raise InvalidArgumentError(f"retry_failed must be True or False, not {self.retry_failed!r}")


def default_transfer() -> TransferSettings:
    """The transfer settings of a manager built without any: a speed floor of
    DEFAULT_MIN_SPEED, unlike a bare TransferSettings (which a lone DownloadWorker keeps)."""
    return TransferSettings(min_speed=DEFAULT_MIN_SPEED)


@dataclass(frozen=True, kw_only=True)
class DownloadSettings:
    """Everything a DownloadManager is told, but its folder and its collaborators.

    Build one with :meth:`from_options` (the manager's keywords, same defaults), or field by
    field; vary it with ``dataclasses.replace``.  It pickles (for Dask workers) when its
    ``auth`` and ``cookies`` do; the run's cancel event is not carried.

    :param max_workers: downloads running at once, at most.
    :param adaptive_workers: True: fewer of them transfer at once while the process is
        bound by its interpreter (a core's worth of Python) and more would not add
        throughput (``downloads/slots.py``); False: ``max_workers`` always.
    :param retry_config: retries of both layers.
    :param transfer: timeouts, chunk size, segments, speed floor, deadline, on_existing;
        default :func:`default_transfer` (a speed floor of 1,000 bytes/s over 60 s).
    :param politeness: connections per host and the overall rate limit.
    :param session: headers, proxies, credentials, cookies, TLS, the environment.
    :param journal: the state file.
    :param cancel_grace: seconds a hard shutdown lets in-flight downloads stop.
    :param progress: tqdm bars until the manager shuts down.
    :raises InvalidArgumentError: a value out of range or of the wrong type.
    """

    max_workers: int = DEFAULT_MAX_WORKERS
    retry_config: RetryConfig = field(default_factory=RetryConfig)
    transfer: TransferSettings = field(default_factory=default_transfer)
    politeness: PolitenessSettings = field(default_factory=PolitenessSettings)
    session: SessionSettings = field(default_factory=SessionSettings)
    journal: JournalSettings = field(default_factory=JournalSettings)
    cancel_grace: float = DEFAULT_CANCEL_GRACE
    progress: bool = False
    adaptive_workers: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.max_workers, int) or isinstance(self.max_workers, bool) or self.max_workers < 1:
            raise InvalidArgumentError(f"max_workers must be an int >= 1, not {self.max_workers!r}")
        if not isinstance(self.retry_config, RetryConfig):
            raise InvalidArgumentError(f"retry_config must be a RetryConfig, not {type(self.retry_config).__name__}")
        if isinstance(self.cancel_grace, bool) or not isinstance(self.cancel_grace, (int, float)) or not (
                0 <= self.cancel_grace < float("inf")):
            raise InvalidArgumentError(f"cancel_grace must be seconds >= 0, not {self.cancel_grace!r}")
        for flag in ("progress", "adaptive_workers"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidArgumentError(f"{flag} must be True or False, not {getattr(self, flag)!r}")
        for name, kind in _GROUPS.items():
            value = getattr(self, name)
            if not isinstance(value, kind):
                raise InvalidArgumentError(f"{name} must be a {kind.__name__}, not {type(value).__name__}")

    @property
    def connections_per_host(self) -> int:
        """``politeness.max_connections_per_host``, or by default the largest of 8,
        ``max_workers`` and ``transfer.max_segments``: the concurrency a run asks for is never
        silently cut on a single host (the manager raises it further, up to
        ``MAX_RAISED_CONNECTIONS_PER_HOST``, for a FileConfig whose ``segments`` asks more)."""
        given = self.politeness.max_connections_per_host
        if given is not None:
            return given
        return max(DEFAULT_MAX_CONNECTIONS_PER_HOST, self.max_workers, self.transfer.max_segments)

    @property
    def pool_size(self) -> int:
        """Connections the pooled session keeps per host: :attr:`connections_per_host`, or
        the cap a FileConfig's ``segments`` may raise it to when that is more."""
        return max(self.connections_per_host, MAX_RAISED_CONNECTIONS_PER_HOST)

    @classmethod
    def from_options(cls, max_workers: int = DEFAULT_MAX_WORKERS, **options: Unpack[Options]) -> DownloadSettings:
        """The settings of the DownloadManager keywords ``options`` (same names, same defaults).

        ``retry_config=None`` means the default RetryConfig().

        :raises InvalidArgumentError: a value out of range or of the wrong type.
        :raises TypeError: a keyword that is not a setting.
        """
        given: dict[str, Any] = dict(options)
        unknown = given.keys() - OPTION_NAMES
        if unknown:
            raise TypeError(f"unexpected keyword argument {min(unknown)!r}")
        if given.get("retry_config", RetryConfig) is None:
            del given["retry_config"]
        transfer = TransferSettings(**{"min_speed": DEFAULT_MIN_SPEED, **_pick(TransferSettings, given)})
        return cls(max_workers=max_workers, transfer=transfer,
                   politeness=PolitenessSettings(**_pick(PolitenessSettings, given)),
                   session=SessionSettings(**_pick(SessionSettings, given)),
                   journal=JournalSettings(**_pick(JournalSettings, given)), **given)


class Options(TypedDict, total=False):
    """The DownloadManager's keywords, one per setting (their defaults: DownloadSettings')."""

    retry_config: RetryConfig | None
    timeout: Timeout
    chunk_size: int
    cancel_grace: float
    headers: Mapping[str, str] | None
    proxies: Mapping[str, str] | None
    trust_env: bool
    auth: Auth | None
    cookies: http.cookiejar.CookieJar | None
    verify: bool | str
    netrc: bool | str | PathLike[str]
    auth_no_challenge: bool
    max_segments: int
    min_segment_size: int
    max_connections_per_host: int | None
    rate_limit: float | None
    min_speed: float | None
    min_speed_window: float
    deadline: float | None
    progress: bool
    adaptive_workers: bool
    on_existing: str
    state_file: str | PathLike[str] | None
    retry_failed: bool


_GROUPS: dict[str, type[Any]] = {
    "transfer": TransferSettings, "politeness": PolitenessSettings, "session": SessionSettings,
    "journal": JournalSettings,
}
#: Fields of the groups that are not the caller's to set through a keyword.
_INTERNAL = frozenset({"cancel_event", "save_interval", "host_gate"})
#: Every keyword ``from_options`` takes.
OPTION_NAMES = frozenset(Options.__annotations__)


def fit_host_cap(
    files: Iterable[FileConfig | str], settings: DownloadSettings, limiter: HostLimiter
) -> Iterator[FileConfig | str]:
    """``files`` as they pass, ``limiter``'s default per-host cap raised to the ``segments``
    of any FileConfig asking more, up to ``settings.pool_size`` (threads waiting for a slot
    get the new ones at once).

    The cap is one for every host (the limiter has no other), so such a file raises it for
    the rest of the run; an explicit ``max_connections_per_host`` is never changed.
    """
    default = settings.politeness.max_connections_per_host is None
    for item in files:
        asked = item.segments or 0 if isinstance(item, FileConfig) else 0
        if default and asked > limiter.limit:
            limiter.raise_limit(min(asked, settings.pool_size))
        yield item


def _pick(kind: type[Any], given: dict[str, Any]) -> dict[str, Any]:
    """Remove from ``given`` and return the keywords that are fields of the group ``kind``."""
    names = [f.name for f in dataclasses.fields(kind) if f.name not in _INTERNAL]
    return {name: given.pop(name) for name in names if name in given}
