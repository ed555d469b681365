"""What a partial download needs to resume safely, kept beside its ``.part`` file.

``<name>.part.json`` holds the URL, the validators the server gave (strong ETag,
Last-Modified; none when a checksum is to prove the result), the total size and the byte
ranges already written.  It is written atomically (temporary file + ``os.replace``), so a
crash leaves the old or the new state, never a torn one; and only ranges whose bytes were
written before it count as done.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from pydownloads.domain.redact import get_logger

logger = get_logger(__name__)

SIDECAR_SUFFIX = ".part.json"
_FORMAT = 1


def sidecar_path(final: Path) -> Path:
    """Where the resume state of ``final`` is kept."""
    return final.with_name(final.name + SIDECAR_SUFFIX)


@dataclass
class ResumeState:
    """The resumable state of one partial download (owned by one download at a time).

    ``ranges`` are half-open ``[start, end)`` byte ranges of the part file known written.
    """

    url: str
    total: int
    etag: str | None = None
    last_modified: str | None = None
    ranges: list[tuple[int, int]] = field(default_factory=list)
    #: The mirror the validators came from (None: the download's own URL).
    source: str | None = None
    #: True once the state is on disk (loaded from, or saved to, its sidecar file).
    persisted: bool = field(default=False, compare=False)

    @property
    def validator(self) -> str | None:
        """What to send in ``If-Range``: the strong ETag, else Last-Modified."""
        return self.etag or self.last_modified

    @property
    def done_bytes(self) -> int:
        """Bytes already written, over all ranges."""
        return sum(end - start for start, end in self.ranges)

    def prefix(self) -> int:
        """Length of the contiguous run of done bytes from offset 0."""
        covered = 0
        for start, end in sorted(self.ranges):
            if start > covered:
                break
            covered = max(covered, end)
        return covered

    def matches(
        self, url: str, total: int | None, etag: str | None, last_modified: str | None, source: str | None = None,
        *, checksum: bool = False,
    ) -> bool:
        """True when a response describes the same file this state was written from.

        From another mirror than the one that gave the validators, the size decides (and
        the checksum at the end, when one was given).  A state written without validators
        matches on its size only with ``checksum`` (the caller gives one, which decides at
        the end); without, nothing proves the kept bytes.
        """
        if url != self.url or total != self.total:
            return False
        if self.validator is None:
            return checksum
        if source is not None and self.source not in (None, source):
            return True
        if self.etag is not None:
            return etag == self.etag
        return last_modified == self.last_modified

    def to_json(self) -> str:
        return json.dumps({
            "format": _FORMAT, "url": self.url, "total": self.total, "etag": self.etag,
            "last_modified": self.last_modified, "ranges": [list(r) for r in self.ranges],
            "source": self.source,
        })


def load(final: Path, url: str) -> ResumeState | None:
    """The saved state for ``final`` if it is intact and for ``url``; else None."""
    path = os.fspath(final) + SIDECAR_SUFFIX  # probed for every download: no Path made for it
    try:
        with open(path, encoding="utf-8") as file:
            data = json.loads(file.read())
        state = ResumeState(
            url=str(data["url"]), total=int(data["total"]), etag=data.get("etag"),
            last_modified=data.get("last_modified"),
            ranges=[(int(a), int(b)) for a, b in data["ranges"]], source=data.get("source"),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("ignoring unreadable resume state %s: %s", path, error)
        return None
    if data.get("format") != _FORMAT or state.url != url:
        return None
    if any(not 0 <= a <= b <= state.total for a, b in state.ranges):
        return None
    state.persisted = True
    return state


def save(final: Path, state: ResumeState) -> None:
    """Write ``state`` for ``final`` atomically (errors are logged, not raised: resuming
    is an optimisation, never a reason to fail a download)."""
    path = sidecar_path(final)
    temporary = path.with_name(path.name + ".tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()  # whatever is there (a planted link included) goes first
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(state.to_json())
        os.replace(temporary, path)
        state.persisted = True
    except OSError as error:
        logger.warning("cannot save resume state %s: %s", path, error)


def delete(final: Path) -> None:
    """Remove the saved state of ``final``, if any; never raises."""
    try:
        sidecar_path(final).unlink(missing_ok=True)
    except OSError as error:
        logger.warning("cannot remove resume state of %s: %s", final, error)
