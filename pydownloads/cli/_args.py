"""The command line: the argparse parsers and the helpers that read option values."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydownloads._version import __version__
from pydownloads.domain.retry import RetryConfig

T = TypeVar("T")

PROG = "pydownloads"
DEFAULT_WORKERS = 4
DEFAULT_DEMO_DIR = Path("pydownloads-demo")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_SIZE = re.compile(r"(?P<number>\d+(?:\.\d*)?|\.\d+)(?P<unit>[KMG]?)", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}

DESCRIPTION = "Download many files over HTTP(S) at once: a priority queue, worker threads, retries."
EPILOG = """\
input file (-i FILE, or -i - for standard input):
  one URL a line; blank lines and lines starting with # are ignored. Indented
  key=value lines below a URL set options for that file, as in aria2c:
      https://example.com/a.iso
        out=debian.iso        save under this name
        dir=isos              in this folder below -d
        priority=10           higher numbers are downloaded first
        header=Cookie: x=1    an extra request header (repeatable)
  A file whose name ends in .jsonl (or whose first line starts with "{") holds
  one JSON object a line with the fields url, priority, filename,
  destination_subdir and headers.

exit status:
  0 every download completed, 1 some failed, 2 usage or input error,
  130 interrupted (Ctrl-C: the first lets running downloads finish and cancels
  the rest, the second stops at once).

output:
  progress bars on standard error when it is a terminal (--progress forces
  them); a summary on standard error at the end; with --json, one JSON record
  per download on standard output instead of the summary.

Run "pydownloads demo" to watch it work against a local server (no internet).
"""


def parse_size(text: str) -> int:
    """Bytes in a size such as ``512``, ``500K``, ``1.5M`` or ``2G`` (K, M, G are 1024-based).

    :raises ValueError: anything else, with a message that says what is accepted.
    """
    match = _SIZE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"invalid size {text!r}: give a number of bytes with an optional K, M or G suffix "
            "(1024-based), e.g. 500K or 10M")
    value = float(match["number"]) * _UNITS[match["unit"].upper()]
    if not math.isfinite(value):
        raise ValueError(f"size {text!r} is too large")
    return int(value)


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` as ``(name, value)``, both stripped.

    :raises ValueError: no colon, or nothing before it.
    """
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise ValueError(f"header {text!r} is not in the form 'Name: value'")
    return name.strip(), value.strip()


def _type(convert: Callable[[str], T], what: str) -> Callable[[str], T]:
    """An argparse ``type=`` that turns ``convert``'s ValueError into a clean usage error."""

    def parse(text: str) -> T:
        try:
            return convert(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = what
    return parse


def _count(minimum: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise ValueError(f"{text} is less than {minimum}")
        return value

    return _type(convert, "count")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < math.inf:
        raise ValueError(f"{text} is not a number of seconds > 0")
    return value


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    shown = group.add_mutually_exclusive_group()
    shown.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    shown.add_argument("--progress", action="store_true",
                       help="show progress bars even when standard error is not a terminal")
    group.add_argument("--json", action="store_true",
                       help="print one JSON record per download on standard output instead of a summary")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``pydownloads URL...``; option groups leave room for the options to come."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s [options] URL... | -i FILE\n       %(prog)s demo [-d DIR]",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    what = parser.add_argument_group("what to download")
    what.add_argument("urls", nargs="*", metavar="URL", help="http or https URLs to download")
    what.add_argument("-i", "--input-file", metavar="FILE", help='read URLs from FILE ("-" for standard input)')
    where = parser.add_argument_group("where")
    where.add_argument("-d", "--dir", type=Path, default=Path("."), metavar="DIR",
                       help="folder to download into (created if missing; default: the current one)")
    where.add_argument("-o", "--output", metavar="NAME", help="file name to save under (exactly one URL only)")
    how = parser.add_argument_group("how")
    how.add_argument("-j", "--jobs", type=_count(1), default=DEFAULT_WORKERS, metavar="N",
                     help=f"downloads at once (default: {DEFAULT_WORKERS})")
    how.add_argument("--retries", type=_count(0), default=RetryConfig().max_retries, metavar="N",
                     help="retries per file after a transient failure (default: %(default)s)")
    how.add_argument("--timeout", type=_type(_seconds, "seconds"), metavar="S",
                     help="seconds to wait to connect, and for each piece of data (default: 10 and 60)")
    how.add_argument("-H", "--header", type=_type(parse_header, "header"), action="append", default=[],
                     metavar='"K: V"', help="an extra header for every request (repeatable)")
    how.add_argument("-U", "--user-agent", metavar="UA", help=f"the User-Agent header (default: {PROG}/VERSION)")
    how.add_argument("--proxy", metavar="URL",
                     help="proxy for http and https (default: the http_proxy, https_proxy and no_proxy "
                          "environment variables)")
    _add_output_options(parser)
    return parser


def build_demo_parser() -> argparse.ArgumentParser:
    """The parser of ``pydownloads demo``."""
    parser = argparse.ArgumentParser(
        prog=f"{PROG} demo", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Start a local HTTP server with generated files, download them with progress bars, "
                    "priorities and retries, verify every byte, print a summary and stop the server. "
                    "Needs no internet; exits 0 when everything went as planned (a 404 included).",
    )
    parser.add_argument("-d", "--dir", type=Path, default=DEFAULT_DEMO_DIR, metavar="DIR",
                        help=f"folder to download into (default: ./{DEFAULT_DEMO_DIR})")
    parser.add_argument("-j", "--jobs", type=_count(1), default=DEFAULT_WORKERS, metavar="N",
                        help=f"downloads at once (default: {DEFAULT_WORKERS})")
    _add_output_options(parser)
    return parser
