"""What a download is: its configuration, its status and the snapshot the tracker hands out."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pydownloads.domain.checksum import Checksum
from pydownloads.domain.errors import InvalidArgumentError

SUPPORTED_SCHEMES = frozenset({"http", "https"})


class DownloadStatus(str, enum.Enum):
    """Where a download is in its life; COMPLETED, FAILED and CANCELLED are final."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True once the download will not change any more."""
        return self in _FINAL_STATUSES

    def __str__(self) -> str:
        return self.value


_FINAL_STATUSES = frozenset({DownloadStatus.COMPLETED, DownloadStatus.FAILED, DownloadStatus.CANCELLED})


#: Whitespace (Unicode too) and control characters (C0, DEL, C1) never belong in a URL.
_BAD_URL_CHARACTER = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


#: http(s)://host[:port] followed by a path, query, fragment or nothing: a name host (no
#: userinfo, no IPv6 literal) that urlsplit would accept as it is.
_PLAIN_URL = re.compile(
    r"https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::(?P<port>[0-9]{1,5}))?(?:[/?#]|\Z)", re.I)


def validate_url(url: object) -> str:
    """Return ``url`` if it is an absolute http(s) URL with a host, else raise.

    :raises InvalidArgumentError: anything else (wrong type, other scheme, no host, spaces).
    """
    if not isinstance(url, str):
        raise InvalidArgumentError(f"url must be a str, not {type(url).__name__}")
    if not url or _BAD_URL_CHARACTER.search(url):
        raise InvalidArgumentError(f"url must be non-empty with no spaces or control characters: {url!r}")
    plain = _PLAIN_URL.match(url)
    if plain and (plain["port"] is None or int(plain["port"]) <= 65535):  # common shape: no urlsplit
        return url
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for a port out of range or not a number
    except ValueError as error:  # e.g. a malformed IPv6 literal
        raise InvalidArgumentError(f"url cannot be parsed: {url!r} ({error})") from None
    if parts.scheme.lower() not in SUPPORTED_SCHEMES:
        raise InvalidArgumentError(f"only http and https URLs can be downloaded, not {url!r}")
    if not hostname:
        raise InvalidArgumentError(f"url has no host: {url!r}")
    return url


def _check_header(name: object, value: object) -> None:
    if not isinstance(name, str) or not isinstance(value, str):
        raise InvalidArgumentError("headers must map str to str")
    if not name or any(ch in name for ch in ":\r\n\0 "):
        raise InvalidArgumentError(f"invalid header name {name!r}")
    if any(ch in value for ch in "\r\n\0"):
        raise InvalidArgumentError(f"header {name!r} has a line break or NUL in its value")


def check_count(name: str, value: object, *, minimum: int) -> None:
    """Accept None or an int >= ``minimum`` (bools refused)."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < minimum):
        raise InvalidArgumentError(f"{name} must be an int >= {minimum} or None, not {value!r}")


def check_rate(name: str, value: object) -> None:
    """Accept None or a finite number > 0 (bytes per second)."""
    if value is not None and (
        not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < float("inf")
    ):
        raise InvalidArgumentError(f"{name} must be bytes per second > 0 or None, not {value!r}")


@dataclass(frozen=True)
class FileConfig:
    """One file to download.

    :param url: absolute http or https URL.
    :param priority: higher numbers are downloaded first; equal priorities keep queue order.
    :param filename: name to save under; default: Content-Disposition, else the URL's last
        path segment.  Always reduced to one safe path component.
    :param destination_subdir: folder below the manager's ``download_dir`` (``/`` separated);
        it can never lead outside ``download_dir``.
    :param headers: extra request headers for this file only.
    :param checksum: ``"ALGO:HEX"`` (md5, sha1, sha256, sha512, blake2b): the file must
        have this digest, else the download fails with ChecksumMismatchError.
    :param expected_size: the file must be this many bytes, else SizeMismatchError.
    :param segments: split this file into at most this many parallel ranges (overrides
        the manager's ``max_segments``); 1 downloads it over one connection.
    :param rate_limit: bytes per second for this file (on top of the manager's limit).
    :param mirrors: other URLs of the same file: on a failure the download moves to the next
        one and resumes there when the size agrees (and the checksum at the end, if given).
    :param if_changed: when the file is already there, ask the server whether it changed
        (``If-None-Match`` with the ETag kept from the last download, ``If-Modified-Since``
        with the file's time); a 304 completes the download with no body transferred.
    :param continue_partial: a file already under the final name, with no ``.part`` file
        of ours beside it, is taken as the first bytes (``wget -c``, ``curl -C -``): only
        the rest is asked for (``Range: bytes=SIZE-``) and appended; a server ignoring
        ranges sends the whole file, which replaces it.  Without validators or a checksum
        this trusts the server that those bytes are the start of its file, as wget and
        curl do; with a checksum the whole file is verified at the end.
    """

    url: str
    _: KW_ONLY
    priority: int = 0
    filename: str | None = None
    destination_subdir: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    checksum: str | None = None
    expected_size: int | None = None
    segments: int | None = None
    rate_limit: float | None = None
    if_changed: bool = False
    mirrors: tuple[str, ...] = ()
    continue_partial: bool = False

    def __post_init__(self) -> None:
        validate_url(self.url)
        if not isinstance(self.priority, int) or isinstance(self.priority, bool):
            raise InvalidArgumentError(f"priority must be an int, not {type(self.priority).__name__}")
        for name in ("filename", "destination_subdir"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidArgumentError(f"{name} must be a non-empty str or None, not {value!r}")
        if self.headers or type(self.headers) is not dict:  # the default {} needs no work
            if not isinstance(self.headers, Mapping):
                raise InvalidArgumentError(f"headers must be a mapping, not {type(self.headers).__name__}")
            for name, value in self.headers.items():
                _check_header(name, value)
            # A private copy: the caller's dict changing later must not change this config.
            object.__setattr__(self, "headers", dict(self.headers))
        if not isinstance(self.continue_partial, bool):
            raise InvalidArgumentError(f"continue_partial must be True or False, not {self.continue_partial!r}")
        if self.checksum is not None:
            object.__setattr__(self, "checksum", str(Checksum.parse(self.checksum)))
        if self.mirrors:
            if isinstance(self.mirrors, str):
                raise InvalidArgumentError("mirrors must be a list of URLs, not one string")
            object.__setattr__(self, "mirrors", tuple(validate_url(m) for m in self.mirrors))
        if self.expected_size is not None or self.segments is not None or self.rate_limit is not None:
            check_count("expected_size", self.expected_size, minimum=0)
            check_count("segments", self.segments, minimum=1)
            check_rate("rate_limit", self.rate_limit)

    @property
    def parsed_checksum(self) -> Checksum | None:
        """The checksum as a :class:`Checksum`, or None."""
        return Checksum.parse(self.checksum) if self.checksum is not None else None


@dataclass(frozen=True)
class DownloadInfo:
    """A snapshot of one download, as the tracker saw it at the moment it was asked.

    ``unchanged`` is True for a download completed without transferring the file: the
    server said it had not changed (``if_changed``), or it was there and ``on_existing`` said
    skip.  ``error`` is the failure's message (credentials redacted), ``error_type`` the name of the
    pydownloads exception class; both are None unless the download failed or was cancelled.
    ``resumed_from`` is how many of ``bytes_downloaded`` an earlier run had left (a kept part
    file this run went on from); :attr:`bytes_this_run` is the rest.
    """

    url: str
    status: DownloadStatus
    bytes_downloaded: int = 0
    total_bytes: int | None = None
    path: Path | None = None
    error: str | None = None
    error_type: str | None = None
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    unchanged: bool = False
    resumed_from: int = 0

    @property
    def bytes_this_run(self) -> int:
        """Bytes transferred by the run that reported this download (not an earlier run's).

        A download settled by an earlier run and not touched since still counts its bytes
        here: only its finishing time tells it apart (see ``DownloadResults.outcome``).
        """
        return max(0, self.bytes_downloaded - self.resumed_from)

    @property
    def elapsed(self) -> float | None:
        """Seconds from start to finish (or None while unknown)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@dataclass(frozen=True)
class DownloadStats:
    """Counts over every download a tracker knows, taken under its lock in O(1)."""

    total: int = 0
    pending: int = 0
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    bytes_downloaded: int = 0
