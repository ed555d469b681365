"""Writing a download: bytes go to ``<name>.part``, which becomes ``<name>`` only when complete."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pydownloads.domain.errors import FileSystemError
from pydownloads.infrastructure.paths import PART_SUFFIX

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)


def part_path(final: Path) -> Path:
    """Where the bytes of ``final`` are written until the download is complete."""
    return final.with_name(final.name + PART_SUFFIX)


class PartFile:
    """An open ``.part`` file for one attempt; one thread at a time.

    ``commit()`` renames it over the final name atomically (``os.replace``), so a reader
    sees either the old file, or the complete new one, never a half-written file.
    """

    __slots__ = ("_fd", "_url", "final", "path")

    def __init__(self, final: Path, *, url: str) -> None:
        self.final = final
        self.path = part_path(final)
        self._url = url
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, _OPEN_FLAGS, 0o644)
        except OSError as error:
            raise self._error(f"cannot write {self.path}", error) from error

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data`` entirely."""
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as error:
            raise self._error(f"cannot write {self.path}", error) from error

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def commit(self) -> Path:
        """Close and move the part file to its final name; returns the final path."""
        self.close()
        try:
            os.replace(self.path, self.final)
        except OSError as error:
            raise self._error(f"cannot rename {self.path} to {self.final.name}", error) from error
        return self.final

    def _error(self, what: str, error: OSError) -> FileSystemError:
        return FileSystemError(f"{what}: {error.strerror or error}", url=self._url, cause=error)

    def discard(self) -> None:
        """Close and delete the part file; never raises."""
        self.close()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
