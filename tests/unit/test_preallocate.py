"""PartFile.preallocate: the final length at once, checked against free space, never zero-filled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pydownloads.domain.errors import FileSystemError
from pydownloads.infrastructure.files import PartFile


def test_preallocate_sets_the_length_without_writing_pages(tmp_path: Path) -> None:
    part = PartFile(tmp_path / "big.bin", url="http://h/big.bin")
    try:
        part.preallocate(64 << 20)
        assert part.size() == 64 << 20
        # Sparse: no 64 MiB of zeros written before the segments write the real bytes.
        assert os.stat(part.path).st_blocks * 512 < 1 << 20
        part.write_at((64 << 20) - 3, b"end")
    finally:
        part.close()
    with open(part.path, "rb") as file:
        file.seek((64 << 20) - 3)
        assert file.read() == b"end"


def test_preallocate_refuses_more_than_the_free_space(tmp_path: Path) -> None:
    stats = os.statvfs(tmp_path)
    too_big = stats.f_bavail * stats.f_frsize + (1 << 30)
    part = PartFile(tmp_path / "huge.bin", url="http://h/huge.bin")
    try:
        with pytest.raises(FileSystemError, match="space"):
            part.preallocate(too_big)
        assert part.size() == 0  # nothing reserved, nothing left behind to fill the disk
    finally:
        part.discard()
    assert not part.path.exists()
