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


def conditional_headers(path: Path) -> dict[str, str]:
    """``If-None-Match`` (the ETag kept with the file) and ``If-Modified-Since`` (its time)."""
    headers = {"If-Modified-Since": email.utils.formatdate(path.stat().st_mtime, usegmt=True)}
    with contextlib.suppress(OSError, AttributeError):  # no extended attributes here
        headers["If-None-Match"] = os.getxattr(path, _ETAG_ATTRIBUTE).decode("ascii")
    return headers


def remember_validators(path: Path, validators: tuple[str | None, str | None]) -> None:
    """Keep the server's validators with the file for the next ``if_changed`` check: the
    ETag in an extended attribute (where the file system has them), Last-Modified as the
    file's time (as wget -N does)."""
    etag, modified = validators
    if modified:
        with contextlib.suppress(TypeError, ValueError, OSError):
            when = email.utils.parsedate_to_datetime(modified).timestamp()
            os.utime(path, (when, when))
    if etag:
        with contextlib.suppress(OSError, AttributeError):
            os.setxattr(path, _ETAG_ATTRIBUTE, etag.encode("ascii", "replace"))


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
