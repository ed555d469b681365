"""What a transfer reads back from the disk: a kept file's validators, a part file's length,
a finished file's digest."""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import os
from pathlib import Path

from pydownloads.domain.checksum import Checksum
from pydownloads.domain.errors import FileSystemError
from pydownloads.infrastructure.files import part_path
from pydownloads.infrastructure.sidecar import ResumeState

_ETAG_ATTRIBUTE = "user.pydownloads.etag"
#: ``"<size> <mtime in ns>"`` of the file as it was completed: a file changed since (truncated,
#: written to) is no longer the one the server's 304 would vouch for.
_RECORD_ATTRIBUTE = "user.pydownloads.record"


def conditional_headers(path: Path, checksum: Checksum | None = None) -> dict[str, str]:
    """``If-None-Match`` (the ETag kept with the file) and ``If-Modified-Since`` (its time);
    empty when the file is not the one recorded at its completion, so that the server sends
    it whole.

    The file is the one recorded when its size and time are those kept with it and, with a
    ``checksum``, its digest matches.  Where the file system keeps no extended attributes
    (or the file came from elsewhere) nothing is recorded: only a checksum can prove the file
    then, and without one it is fetched again.

    :raises FileSystemError: the file cannot be read back to check it against ``checksum``.
    """
    recorded = _recorded(path)
    info = path.stat()
    if recorded is not None and recorded != _fingerprint(info):
        return {}
    if checksum is not None:
        if hash_file(path, checksum) != checksum.hexdigest:
            return {}
    elif recorded is None:
        return {}
    headers = {"If-Modified-Since": email.utils.formatdate(info.st_mtime, usegmt=True)}
    with contextlib.suppress(OSError, AttributeError):  # no extended attributes here
        headers["If-None-Match"] = os.getxattr(path, _ETAG_ATTRIBUTE).decode("ascii")
    return headers


def remember_validators(path: Path, validators: tuple[str | None, str | None]) -> None:
    """Keep the server's validators with the file for the next ``if_changed`` check: the
    ETag (weak ones too: ``If-None-Match`` compares weakly) in an extended attribute (where
    the file system has them), Last-Modified as the file's time (as wget -N does), and the
    file's size and time as completed."""
    etag, modified = validators
    if modified:
        with contextlib.suppress(TypeError, ValueError, OSError):
            when = email.utils.parsedate_to_datetime(modified).timestamp()
            os.utime(path, (when, when))
    with contextlib.suppress(OSError, AttributeError):  # no extended attributes here
        if etag:
            os.setxattr(path, _ETAG_ATTRIBUTE, etag.encode("ascii", "replace"))
        os.setxattr(path, _RECORD_ATTRIBUTE, _fingerprint(path.stat()).encode("ascii"))


def _fingerprint(info: os.stat_result) -> str:
    return f"{info.st_size} {info.st_mtime_ns}"


def _recorded(path: Path) -> str | None:
    """The fingerprint kept with the file at its completion; None when there is none."""
    try:
        return os.getxattr(path, _RECORD_ATTRIBUTE).decode("ascii", "replace")
    except (OSError, AttributeError):
        return None


def part_holds(final: Path, state: ResumeState) -> bool:
    """True when the part file exists and is long enough for the ranges said done."""
    try:
        size = part_path(final).stat().st_size
    except OSError:
        return False
    return all(end <= size for _, end in state.ranges)


def hash_file(path: Path, checksum: Checksum) -> str:
    """The hex digest of the file at ``path`` under ``checksum``'s algorithm.

    :raises FileSystemError: the file cannot be read back.
    """
    hasher = hashlib.new(checksum.algorithm)
    try:
        with open(path, "rb") as file:
            while block := file.read(1 << 20):
                hasher.update(block)
    except OSError as error:
        raise FileSystemError(f"cannot read {path} back to check it: {error.strerror or error}",
                              cause=error) from error
    return hasher.hexdigest()
