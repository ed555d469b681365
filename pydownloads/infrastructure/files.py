"""Writing a download: bytes go to ``<name>.part``, which becomes ``<name>`` only when complete."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from pydownloads.domain.errors import FileSystemError
from pydownloads.infrastructure.paths import PART_SUFFIX

# O_NOFOLLOW: a planted symbolic link named like our part file must not redirect the write.
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def part_path(final: Path) -> Path:
    """Where the bytes of ``final`` are written until the download is complete."""
    return final.with_name(final.name + PART_SUFFIX)


class PartFile:
    """An open ``.part`` file; bytes are written at explicit offsets (``os.pwrite``), so
    several segment threads may write one file at once.

    ``commit()`` renames it over the final name atomically (``os.replace``), so a reader
    sees either the old file or the complete new one, never a half-written file.

    :param keep: keep existing bytes (resume); otherwise the file starts empty.
    """

    __slots__ = ("_fd", "_name", "_url", "final")

    def __init__(self, final: Path, *, url: str, keep: bool = False) -> None:
        self.final = final
        self._name = os.fspath(final) + PART_SUFFIX  # a string: no Path made per file unless asked
        self._url = url
        flags = _OPEN_FLAGS | (0 if keep else os.O_TRUNC)
        try:
            try:
                self._fd = os.open(self._name, flags, 0o644)
            except FileNotFoundError:  # its folder is not there yet (made only then: two calls saved per file)
                final.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self._name, flags, 0o644)
        except OSError as error:
            raise self._error(f"cannot write {self._name}", error) from error

    @property
    def path(self) -> Path:
        """The part file: ``<final>.part``."""
        return Path(self._name)

    def size(self) -> int:
        """Bytes in the file now."""
        return os.fstat(self._fd).st_size

    def write_at(self, offset: int, data: bytes | memoryview) -> None:
        """Write all of ``data`` at ``offset``."""
        view = memoryview(data)
        try:
            while view:
                written = os.pwrite(self._fd, view, offset)
                view = view[written:]
                offset += written
        except OSError as error:
            raise self._error(f"cannot write {self._name}", error) from error

    def truncate(self, size: int) -> None:
        """Cut (or extend with zeros) the file to ``size`` bytes."""
        try:
            os.ftruncate(self._fd, size)
        except OSError as error:
            raise self._error(f"cannot resize {self._name}", error) from error

    def preallocate(self, size: int) -> None:
        """Give the file its final length up front (segments write out of order), after
        checking that the file system has room for the bytes still missing, so that a full
        disk shows now rather than half-way.

        The file stays sparse: ``posix_fallocate`` would zero-fill every page first on
        file systems without extents (tmpfs: 0.1 s per 256 MiB, before any byte arrives)
        only for the segments to write them again.  Without a reservation another writer
        can still fill the disk meanwhile: that shows as a failed write, as it would anyway.
        """
        try:
            allocated = os.fstat(self._fd).st_blocks * 512
            stats = os.fstatvfs(self._fd)
            if size - allocated > stats.f_bavail * stats.f_frsize:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.ftruncate(self._fd, size)
        except OSError as error:
            raise self._error(f"cannot reserve {size} bytes for {self._name}", error) from error

    def close(self) -> None:
        """Close the descriptor and keep the file (idempotent)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def commit(self) -> Path:
        """Close and move the part file to its final name; returns the final path."""
        self.close()
        try:
            os.replace(self._name, self.final)
        except OSError as error:
            raise self._error(f"cannot rename {self._name} to {self.final.name}", error) from error
        return self.final

    def discard(self) -> None:
        """Close and delete the part file; never raises."""
        self.close()
        with contextlib.suppress(OSError):  # missing already, too
            os.unlink(self._name)

    def _error(self, what: str, error: OSError) -> FileSystemError:
        return FileSystemError(f"{what}: {error.strerror or error}", url=self._url, cause=error)
