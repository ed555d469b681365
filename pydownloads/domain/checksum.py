"""Expected checksums: ``"sha256:<hex>"`` parsed once, hashers made on demand."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

from pydownloads.domain.errors import InvalidArgumentError

#: Algorithm name → hex digest length.
ALGORITHMS: dict[str, int] = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128, "blake2b": 128}


class Hasher(Protocol):
    """What hashlib objects offer, as far as downloads use it."""

    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


@dataclass(frozen=True)
class Checksum:
    """An expected digest: ``Checksum.parse("sha256:9f86d0...")``."""

    algorithm: str
    hexdigest: str

    @classmethod
    def parse(cls, text: str) -> Checksum:
        """Read ``ALGO:HEX`` (algorithm case-insensitive, hex normalised to lower case).

        :raises InvalidArgumentError: unknown algorithm or a digest of the wrong form.
        """
        if not isinstance(text, str) or ":" not in text:
            raise InvalidArgumentError(f"checksum must look like 'sha256:<hex>', not {text!r}")
        algorithm, _, digest = text.partition(":")
        algorithm, digest = algorithm.strip().lower(), digest.strip().lower()
        if algorithm not in ALGORITHMS:
            raise InvalidArgumentError(
                f"unknown checksum algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
        if len(digest) != ALGORITHMS[algorithm] or not re.fullmatch(r"[0-9a-f]+", digest):
            raise InvalidArgumentError(
                f"a {algorithm} checksum is {ALGORITHMS[algorithm]} hex digits, not {digest!r}")
        return cls(algorithm, digest)

    def new_hasher(self) -> Hasher:
        """A fresh hashlib object for this algorithm."""
        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"
