"""The command's input as a stream: read once to check every line, once more to queue it.

A list of a million URLs is never held: the first reading counts the entries and collects
every problem (a malformed line, a URL given twice: checked against a :class:`DiskSet` on
disk, not a set in memory), so that one bad line still rejects the whole input before
anything is downloaded; the second reading hands the entries on one by one.  Standard input,
and an input file that can be read only once (a pipe, ``<(command)``), are copied to a
temporary file on the first reading.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from typing import IO, TextIO

from pydownloads.cli._input import STDIN, InputError, InputItem, iter_items, looks_like_jsonl
from pydownloads.domain.errors import InvalidArgumentError
from pydownloads.domain.models import FileConfig
from pydownloads.infrastructure.disk_set import DiskSet

#: Entries checked for repeats at a time.
_BATCH = 5000


class InputSource:
    """The URL arguments, then the input file's entries: :meth:`check` first, then iterate
    (as often as needed) for the same entries, in the same order.  Close it when done."""

    def __init__(self, urls: Sequence[str], input_file: str | None, *, stdin: TextIO | None = None) -> None:
        self._urls = list(urls)
        self._name = input_file
        self._stdin = stdin
        self._spool: IO[str] | None = None
        self._jsonl = False
        self._identity: tuple[int, ...] | None = None  # the input file as checked
        #: How many entries there are (known once :meth:`check` passed).
        self.count = 0

    @property
    def _source(self) -> str:
        return "<stdin>" if self._name == STDIN else str(self._name)

    def check(self) -> int:
        """Read everything once; return how many entries there are.  Nothing is kept.

        :raises InputError: bad URL arguments, malformed lines or an unreadable file (every
            one of them), or else the URLs given twice.
        """
        problems: list[str] = []
        repeats: list[str] = []
        count = 0
        self._prepare(problems)
        self._identity = self._stat()
        with DiskSet() as seen:
            batch: list[InputItem] = []
            for item in self._read(problems):
                count += 1
                batch.append(item)
                if len(batch) == _BATCH:
                    repeats += _repeats(seen, batch)
                    batch = []
            repeats += _repeats(seen, batch)
        if not problems and self._stat() != self._identity:
            problems.append(self._changed("while it was checked"))
        if problems or repeats:
            raise InputError(problems or repeats)
        self.count = count
        return count

    def __iter__(self) -> Iterator[InputItem]:
        """The entries, read again (checked by :meth:`check` before).

        :raises InputError: the input file changed since it was checked (before the first
            entry when its size, time or inode tell; else once the entries read differ in
            number), or can no longer be read.
        """
        if self._stat() != self._identity:
            raise InputError([self._changed("since it was checked: nothing was queued from it")])
        problems: list[str] = []
        count = 0
        for item in self._read(problems):
            count += 1
            yield item
        if not problems and count != self.count:
            problems.append(self._changed(f"while it was read: {count} entries, not the {self.count} checked"))
        if problems:
            raise InputError(problems)

    def _stat(self) -> tuple[int, ...] | None:
        """What tells that the input file changed: inode, size, time (None: a copy, or no file)."""
        if self._name is None or self._spool is not None:
            return None
        try:
            info = os.stat(self._name)
        except OSError:
            return (-1,)
        return (info.st_ino, info.st_size, info.st_mtime_ns)

    def _changed(self, when: str) -> str:
        return f"{self._source}: the input file changed {when}; run the command again"

    def close(self) -> None:
        """Remove the copy of the input, if one was made (idempotent)."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def _prepare(self, problems: list[str]) -> None:
        """Copy an input that reads only once, and tell its format."""
        name = self._name
        if name is None:
            return
        try:
            if name == STDIN:
                if self._stdin is None:
                    problems.append("<stdin>: standard input is not available")
                    self._name = None
                    return
                self._spool = _copied(self._stdin)
            elif not stat.S_ISREG(os.stat(name).st_mode):  # a pipe: read once, then from the copy
                with open(name, encoding="utf-8-sig") as once:
                    self._spool = _copied(once)
            self._jsonl = name.endswith(".jsonl") or looks_like_jsonl(self._lines())
        except (OSError, UnicodeDecodeError) as error:
            problems.append(_unreadable(name, error))
            self._name = None

    def _read(self, problems: list[str]) -> Iterator[InputItem]:
        for number, url in enumerate(self._urls, 1):
            try:
                config = FileConfig(url=url)
            except InvalidArgumentError as error:
                problems.append(f"URL argument {number}: {error}")
                continue
            yield InputItem(config, f"URL argument {number}")
        if self._name is None:
            return
        try:
            yield from iter_items(self._lines(), self._source, problems, jsonl=self._jsonl)
        except (OSError, UnicodeDecodeError) as error:
            problems.append(_unreadable(self._name, error))

    def _lines(self) -> Iterator[str]:
        """The input's lines as ``str.splitlines`` cuts a whole text (one file line at a time)."""
        if self._spool is not None:
            self._spool.seek(0)
            for line in self._spool:
                yield from line.splitlines()
            return
        with open(str(self._name), encoding="utf-8-sig") as file:
            for line in file:
                yield from line.splitlines()


def _repeats(seen: DiskSet, batch: list[InputItem]) -> list[str]:
    """The problems of the entries of ``batch`` whose URL came before."""
    if not batch:
        return []
    firsts = seen.add_all([(item.config.url, item.where) for item in batch])
    return [f"{item.where}: {item.config.url} is already listed at {first}; give each URL once"
            for item, first in zip(batch, firsts, strict=True) if first is not None]


def _copied(stream: TextIO) -> IO[str]:
    """A temporary file holding what ``stream`` reads (removed when closed)."""
    spool = tempfile.TemporaryFile("w+", encoding="utf-8", errors="surrogatepass")  # noqa: SIM115 (the caller's)
    try:
        for line in stream:
            spool.write(line)
    except BaseException:
        spool.close()
        raise
    return spool


def _unreadable(name: str, error: BaseException) -> str:
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return f"{'<stdin>' if name == STDIN else name}: cannot read the input file: {reason}"
