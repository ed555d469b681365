"""Input files: aria2c-style URL lists and JSON Lines, read into FileConfigs with line numbers.

URL list (several URLs of the same file on one line, separated by TABs, as aria2c reads
them: the first is the URL, the others its mirrors)::

    # comment
    https://example.com/a.iso<TAB>https://mirror.example.org/a.iso
      out=debian.iso
      dir=isos
      priority=10
      header=Cookie: x=1
      checksum=sha256:9f86d081884c7d65...
      segments=2
      limit-rate=500K
      if-changed=true

JSON Lines (a ``.jsonl`` file, or any input whose first line starts with ``{``)::

    {"url": "https://example.com/a.iso", "filename": "debian.iso", "priority": 10}

Every problem is reported as ``source:line: message``; one bad line rejects the whole input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydownloads.cli._args import parse_header, parse_size
from pydownloads.domain.checksum import Checksum
from pydownloads.domain.errors import InvalidArgumentError
from pydownloads.domain.models import FileConfig
from pydownloads.infrastructure.paths import subdir_parts

STDIN = "-"
#: Options of a URL-list entry (aria2c's names where it has one) and the FileConfig field each sets.
OPTION_KEYS = {
    "out": "filename", "dir": "destination_subdir", "priority": "priority", "header": "headers",
    "checksum": "checksum", "segments": "segments", "limit-rate": "rate_limit", "if-changed": "if_changed",
    "continue": "continue_partial",
}
JSON_FIELDS = frozenset({
    "url", "priority", "filename", "destination_subdir", "headers", "checksum", "expected_size", "segments",
    "rate_limit", "if_changed", "mirrors", "continue_partial",
})


@dataclass(frozen=True)
class InputItem:
    """One file to download and where it was given (``list.txt:3``, ``argument 2``).

    ``given`` names the FileConfig fields the input set for this file, so that an option of
    the command (``--if-changed``) applies only where the line did not say otherwise.
    """

    config: FileConfig
    where: str
    given: frozenset[str] = frozenset()


class InputError(ValueError):
    """The input has problems; ``problems`` lists them, each as ``source:line: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_input(name: str, *, stdin: TextIO | None = None) -> list[InputItem]:
    """Read the input file ``name`` (``"-"``: ``stdin``) in whichever format it is in.

    :raises InputError: the file cannot be read, or any of its lines is malformed.
    """
    if name == STDIN:
        if stdin is None:
            raise InputError(["<stdin>: standard input is not available"])
        return parse_input(stdin.read(), "<stdin>")
    try:
        text = Path(name).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise InputError([f"{name}: cannot read the input file: {reason}"]) from error
    return parse_input(text, name, jsonl=True if name.endswith(".jsonl") else None)


def parse_input(text: str, source: str, *, jsonl: bool | None = None) -> list[InputItem]:
    """Parse ``text`` read from ``source`` (the name used in messages).

    :param jsonl: True for JSON Lines, False for a URL list, None to tell by the first line.
    :raises InputError: one or more lines are malformed (all of them are reported).
    """
    lines = text.splitlines()
    problems: list[str] = []
    items = list(iter_items(lines, source, problems, jsonl=looks_like_jsonl(lines) if jsonl is None else jsonl))
    if problems:
        raise InputError(problems)
    return items


def looks_like_jsonl(lines: Iterable[str]) -> bool:
    """True when the first line that is not blank or a comment starts with ``{``."""
    first = next((s for line in lines if (s := line.strip()) and not s.startswith("#")), "")
    return first.startswith("{")


def iter_items(lines: Iterable[str], source: str, problems: list[str], *, jsonl: bool) -> Iterator[InputItem]:
    """The entries of ``lines`` (read from ``source``) one by one, as they are parsed; each
    malformed line is appended to ``problems`` as ``source:line: message`` and skipped."""
    return (_parse_jsonl if jsonl else _parse_url_list)(lines, source, problems)


def check_unique(items: Iterable[InputItem]) -> None:
    """Each URL once: a second entry would never be downloaded (downloads are keyed by URL).

    :raises InputError: a URL is listed twice.
    """
    seen: dict[str, str] = {}
    problems = []
    for item in items:
        first = seen.setdefault(item.config.url, item.where)
        if first != item.where:
            problems.append(f"{item.where}: {item.config.url} is already listed at {first}; give each URL once")
    if problems:
        raise InputError(problems)


def _meaningful(lines: Iterable[str]) -> Iterator[tuple[int, str, str]]:
    """(line number, line, stripped line) of every line that is not blank or a comment."""
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, line, stripped

_NONE_GIVEN: frozenset[str] = frozenset()


class _Entry:
    """A URL line of a URL list and the option lines below it, until it is complete."""

    def __init__(self, urls: list[str], where: str) -> None:
        self.url, *self.mirrors = urls
        self.where = where
        self.fields: dict[str, Any] = {}
        self.headers: dict[str, str] = {}

    def set(self, key: str, value: str) -> None:
        """Apply one ``key=value`` line; raises ValueError with the message to show."""
        if key not in OPTION_KEYS:
            raise ValueError(f"unknown option {key!r}; known: {', '.join(sorted(OPTION_KEYS))}")
        if key == "header":
            name, header_value = parse_header(value)
            self.headers[name] = header_value
            return
        field = OPTION_KEYS[key]
        if field in self.fields:
            raise ValueError(f"option {key!r} is given twice for this URL")
        self.fields[field] = _VALUE_READERS.get(key, str)(value)

    def config(self) -> FileConfig:
        mirrors = {"mirrors": tuple(self.mirrors)} if self.mirrors else {}
        return _file_config({"url": self.url, **mirrors, **self.fields, "headers": self.headers})

    def given(self) -> frozenset[str]:
        if not self.fields and not self.headers:
            return _NONE_GIVEN  # shared: an empty frozenset each is ~200 bytes a line of a long list
        return frozenset(self.fields) | ({"headers"} if self.headers else set())


def _whole_number(key: str, minimum: int | None = None) -> Callable[[str], int]:
    def read(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or (minimum is not None and number < minimum):
            at_least = "" if minimum is None else f" >= {minimum}"
            raise ValueError(f"{key} must be a whole number{at_least}, not {value!r}")
        return number

    return read


def _rate(value: str) -> int:
    try:
        rate = parse_size(value)
    except ValueError as error:
        raise ValueError(f"limit-rate: {error}") from None
    if rate <= 0:
        raise ValueError(f"limit-rate must be more than 0 bytes per second, not {value!r}")
    return rate


def _checksum(value: str) -> str:
    return str(Checksum.parse(value))  # checked here, so that the error names this line


def _flag(key: str) -> Callable[[str], bool]:
    def read(value: str) -> bool:
        flag = {"true": True, "false": False}.get(value.lower())
        if flag is None:
            raise ValueError(f"{key} must be true or false, not {value!r}")
        return flag

    return read


#: How the value of an option line is read (others are taken as they are).
_VALUE_READERS: dict[str, Callable[[str], Any]] = {
    "priority": _whole_number("priority"),
    "segments": _whole_number("segments", 1),
    "limit-rate": _rate,
    "checksum": _checksum,
    "if-changed": _flag("if-changed"),
    "continue": _flag("continue"),
}


def _parse_url_list(lines: Iterable[str], source: str, problems: list[str]) -> Iterator[InputItem]:
    entry: _Entry | None = None
    for number, line, stripped in _meaningful(lines):
        where = f"{source}:{number}"
        if line[0] in " \t":
            if entry is None:
                problems.append(f"{where}: an indented option line must follow a URL line")
                continue
            key, equals, value = stripped.partition("=")
            try:
                if not equals:
                    raise ValueError(f"expected key=value, not {stripped!r}")
                entry.set(key.strip(), value.strip())
            except ValueError as error:
                problems.append(f"{where}: {error}")
            continue
        if entry is not None:
            yield from _finish(entry, problems)
        urls = [part.strip() for part in stripped.split("\t") if part.strip()]
        if any(len(url.split()) > 1 for url in urls):
            problems.append(f"{where}: one URL a line (mirrors of the same file follow it after TABs; "
                            "options go on indented key=value lines below it)")
            entry = None
            continue
        entry = _Entry(urls, where)
    if entry is not None:
        yield from _finish(entry, problems)


def _finish(entry: _Entry, problems: list[str]) -> Iterator[InputItem]:
    try:
        yield InputItem(entry.config(), entry.where, entry.given())
    except ValueError as error:
        problems.append(f"{entry.where}: {error}")


def _parse_jsonl(lines: Iterable[str], source: str, problems: list[str]) -> Iterator[InputItem]:
    for number, _, stripped in _meaningful(lines):
        where = f"{source}:{number}"
        try:
            record = json.loads(stripped)
        except json.JSONDecodeError as error:
            problems.append(f"{where}: not valid JSON: {error.msg} (column {error.colno})")
            continue
        if not isinstance(record, dict):
            problems.append(f"{where}: expected a JSON object, not {type(record).__name__}")
            continue
        unknown = sorted(set(record) - JSON_FIELDS)
        if unknown:
            problems.append(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; "
                            f"known: {', '.join(sorted(JSON_FIELDS))}")
            continue
        if "url" not in record:
            problems.append(f"{where}: the field 'url' is missing")
            continue
        problem = _json_types(record)
        if problem is not None:
            problems.append(f"{where}: {problem}")
            continue
        try:
            yield InputItem(_file_config(record), where, frozenset(record) - {"url"})
        except ValueError as error:
            problems.append(f"{where}: {error}")


def _json_types(record: dict[str, Any]) -> str | None:
    """What FileConfig would take too readily from JSON (a truthy string, a dict's keys), or None.

    A valid ``mirrors`` list becomes the tuple FileConfig holds.
    """
    for flag in ("if_changed", "continue_partial"):
        if flag in record and not isinstance(record[flag], bool):
            return f"{flag} must be true or false, not {json.dumps(record[flag])}"
    if "mirrors" in record:
        if not isinstance(record["mirrors"], list):
            return "mirrors must be a list of URLs"
        record["mirrors"] = tuple(record["mirrors"])
    return None


def _file_config(fields: dict[str, Any]) -> FileConfig:
    """A FileConfig whose name and folder are also checked now, so that errors get a line.

    :raises ValueError: (InvalidArgumentError) what FileConfig refuses, a file name that is a
        path, or a folder that leaves the download folder.
    """
    if fields.get("headers") is None:
        fields = {**fields, "headers": {}}
    config = FileConfig(**fields)
    if config.filename is not None and any(sep in config.filename for sep in "/\\"):
        raise InvalidArgumentError(f"the file name {config.filename!r} is a path; put the folder in dir= "
                                   "(destination_subdir) and only the name here")
    if config.destination_subdir is not None:
        subdir_parts(config.destination_subdir)
    return config
