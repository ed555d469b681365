"""``continue_partial`` (``-c``): a file another tool left under the final name is the first bytes.

The transfer asks for the rest (``Range: bytes=SIZE-``, no ``If-Range``: nothing is known
of the version those bytes came from) and reads the answer here:

* an exact 206 (``Content-Range: bytes SIZE-(total-1)/total``): append.  The file moves to
  ``<name>.part`` first, so the final name only ever holds a complete file;
* a 416 naming the same total (``Content-Range: bytes */SIZE``): the file is complete;
* a 200: the server sends the whole file (it ignores ranges): it replaces the partial one;
* anything else (another total, another range): nothing proves the kept bytes, so the
  download starts from zero.

Without validators or a checksum this trusts the server that the kept bytes are the
start of its file, as ``wget -c`` and ``curl -C -`` do; a checksum decides at the end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import requests

from pydownloads.domain.errors import FileSystemError
from pydownloads.infrastructure import transport
from pydownloads.infrastructure.files import part_path


@dataclass(frozen=True, kw_only=True)
class Answer:
    """How the server answered the request for the bytes after the kept ones.

    ``total`` is the file's size when the kept bytes are its start (None: start over);
    ``body`` says whether the response carries the rest (a 206) or nothing (a 416).
    """

    total: int | None
    body: bool = False


def partial_size(continue_partial: bool, final: Path | None) -> int | None:
    """The bytes to continue from: the size of a non-empty regular file at ``final`` that
    has no part file of ours beside it (one there is resumed, or replaced, as usual)."""
    if not continue_partial or final is None or part_path(final).exists():
        return None
    try:
        if final.is_symlink() or not final.is_file():
            return None  # only a plain file of the caller's is taken as the first bytes
        size = final.stat().st_size
    except OSError:
        return None
    return size or None


def read_answer(response: requests.Response, size: int) -> Answer | None:
    """What the response to ``Range: bytes=SIZE-`` means; None for a 200 (the whole file).

    A 416 or 206 that does not fit ``size`` gives ``Answer(total=None)``: start over.
    """
    status = response.status_code
    if status == 416:
        declared = response.headers.get("Content-Range", "").replace(" ", "")
        return Answer(total=size if declared == f"bytes*/{size}" else None)
    if status == 206:
        ranged = transport.content_range(response)
        if ranged is not None and ranged[0] == size and ranged[2] is not None and ranged[1] == ranged[2] - 1:
            return Answer(total=ranged[2], body=True)
        return Answer(total=None)
    return None


def adopt(final: Path, url: str) -> None:
    """Move the kept bytes to ``<name>.part`` (an atomic rename: no copy of a large file).

    :raises FileSystemError: the rename failed.
    """
    try:
        os.replace(final, part_path(final))
    except OSError as error:
        raise FileSystemError(f"cannot rename {final.name} to {part_path(final).name}: {error.strerror or error}",
                              url=url, cause=error) from error
