"""What adding a download the state file holds already does: the manager's policy, not the
journal's.

A failed download goes again when the manager retries failed ones (``retry_failed``); a
completed one goes again when its file is gone or wrong (size, checksum), or when the caller
asks the server whether it changed (``if_changed``: a 304 then costs no body).  Any other
journaled download keeps its status.  The files are checked (and hashed) here, in the
caller's thread, never while the journal's lock is held.

Whatever is not completed takes the options it is added with now (the newest run's options
win): checksum, expected size, headers, mirrors, segments, rate limit, priority, if-changed.
A part file an earlier run left is then resumed under the new options and verified at the
end by the new checksum and size (a mismatch starts over from zero), never taken on trust.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from pydownloads.domain.models import FileConfig
from pydownloads.infrastructure.journal import Journal, StoredRow
from pydownloads.infrastructure.journal_format import row_values

#: The answer for a download the journal did not hold: queued as pending.
_NEW: tuple[int, str | None, str] = (0, None, "pending")
_HASH_BLOCK = 1 << 20


def add_to_journal(
    journal: Journal, configs: Sequence[FileConfig | str], *, retry_failed: bool
) -> list[tuple[int, str | None, str]]:
    """Journal ``configs`` (a plain string: a checked URL with default options) and make
    those held already pending again where the policy says so.

    :returns: ``(id or 0, status before or None if new, status now)`` for each config.
    :raises StateFileError: the journal is closed.
    """
    stored = journal.insert(configs)
    if not any(stored):  # all new: the usual case, no file to look at
        return [_NEW] * len(stored)
    journal.update_options(
        (row.id, config) for row, config in zip(stored, configs, strict=True)
        if row is not None and row.status != "completed" and row.options != row_values(config)[2])
    journal.adopt(row.id for row in stored if row is not None)  # with its options: it may go now
    return [_NEW if row is None else _revisit(journal, row, config, retry_failed=retry_failed)
            for row, config in zip(stored, configs, strict=True)]


def _revisit(journal: Journal, row: StoredRow, item: FileConfig | str, *,
             retry_failed: bool) -> tuple[int, str | None, str]:
    config = item if isinstance(item, FileConfig) else FileConfig(url=item)
    if not goes_again(row, config, retry_failed=retry_failed):
        return row.id, row.status, row.status
    if journal.requeue(row.id, config, status=row.status):
        return row.id, row.status, "pending"
    # Another caller made it pending between our read and our write: it waits already.
    return row.id, "pending", "pending"


def goes_again(row: StoredRow, config: FileConfig, *, retry_failed: bool) -> bool:
    """Whether the journaled download ``row``, added again as ``config``, is to run again."""
    if row.status == "failed":
        return retry_failed
    if row.status == "completed":
        return config.if_changed or not file_intact(row.path, row.size, config)
    return False


def file_intact(path: str | None, size: int, config: FileConfig) -> bool:
    """True when a completed download's file is still there with its size (and checksum).

    With a checksum this reads the whole file: call it with no lock held.
    """
    if not path:
        return False
    try:
        if os.stat(path).st_size != size:
            return False
    except OSError:
        return False
    checksum = config.parsed_checksum
    if checksum is None:
        return True
    hasher = checksum.new_hasher()
    with open(path, "rb") as file:
        while block := file.read(_HASH_BLOCK):
            hasher.update(block)
    return hasher.hexdigest() == checksum.hexdigest
