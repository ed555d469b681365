"""The command line: the argparse parsers and the helpers that read option values."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydownloads._version import __version__
from pydownloads.domain.checksum import Checksum
from pydownloads.domain.retry import RetryConfig
from pydownloads.downloads.settings import (
    DEFAULT_MAX_CONNECTIONS_PER_HOST,
    DEFAULT_MAX_SEGMENTS,
    DEFAULT_MIN_SPEED_WINDOW,
)

T = TypeVar("T")

PROG = "pydownloads"
DEFAULT_WORKERS = 4
DEFAULT_DEMO_DIR = Path("pydownloads-demo")
#: The journal the command keeps in the download folder unless told otherwise.
STATE_FILE_NAME = ".pydownloads-state.db"
#: pydownloads.distributed.DEFAULT_SHARD_SIZE, named here without importing Dask (a test keeps them equal).
DASK_SHARD_SIZE = 500
ON_EXISTING = ("replace", "skip", "rename")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_SIZE = re.compile(r"(?P<number>\d+(?:\.\d*)?|\.\d+)(?P<unit>[KMG]?)", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}

DESCRIPTION = "Download many files over HTTP(S) at once: a priority queue, worker threads, retries."
EPILOG = """\
input file (-i FILE, or -i - for standard input):
  one URL a line; blank lines and lines starting with # are ignored. Mirrors of
  the same file follow its URL on the line, separated by TABs. Indented
  key=value lines below a URL set options for that file, as in aria2c:
      https://example.com/a.iso<TAB>https://mirror.example.org/a.iso
        out=debian.iso        save under this name
        dir=isos              in this folder below -d
        priority=10           higher numbers are downloaded first
        header=Cookie: x=1    an extra request header (repeatable)
        checksum=sha256:HEX   the file must have this digest (md5, sha1, sha256,
                              sha512, blake2b), else it fails
        segments=2            at most this many parallel ranges (overrides -x)
        limit-rate=500K       bytes per second for this file (and --limit-rate)
        if-changed=true       ask the server whether it changed (or false, to
                              override --if-changed for this file)
        continue=true         continue a partial file already there (or false,
                              to override -c for this file)
  A file whose name ends in .jsonl (or whose first line starts with "{") holds
  one JSON object a line with the fields url, priority, filename,
  destination_subdir, headers, checksum, expected_size, segments, rate_limit,
  if_changed and continue_partial (true or false) and mirrors (a list of URLs).

state file:
  the command keeps the state of every download in DIR/.pydownloads-state.db
  (--state FILE elsewhere, --no-state not at all). Run the same command again
  after a failure, a Ctrl-C or a crash: completed files are skipped, partial
  ones resume, failed ones stay failed unless --retry-failed. Unfinished
  downloads an earlier run left in that file are carried on too.
  "pydownloads status [DIR|FILE]" shows what a state file holds.
  With --if-changed, completed files are not skipped: the server is asked
  whether each changed (a 304 costs no body).

credentials:
  requests reads ~/.netrc (or the file in $NETRC) for the host of each request,
  after a redirect too (-n/--netrc says so explicitly); --netrc-file FILE reads
  FILE instead, --no-netrc none. --password alone goes with the login the
  .netrc holds for each host.
  --user applies to every URL of the run, mirrors included, and is dropped on
  a redirect to another host, port or scheme; cookies go where their domain
  and path say. Neither is ever printed.
  Credentials (--user, a .netrc) answer the server's challenge, as wget does:
  Digest or Basic, whichever its 401 offers (Digest when both). Over plain
  HTTP the first request goes without them; Basic goes at once only over
  HTTPS, or with --auth-no-challenge.

exit status:
  0 every download completed (now or by an earlier run), 1 some failed,
  2 usage or input error (an unusable or busy state file too),
  130 interrupted (Ctrl-C: the first lets running downloads finish and cancels
  the rest, the second stops at once).

output:
  progress bars on standard error when it is a terminal (--progress forces
  them); a summary on standard error at the end; with --json, one JSON record
  per download on standard output instead of the summary. "unchanged" counts
  the files completed without a transfer: not modified on the server
  (--if-changed), or kept as they were (--on-existing skip).

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


def state_file_of(given: Path | None, folder: Path) -> Path:
    """The state file: ``--state FILE`` if given, else the hidden one of the download folder."""
    return (given if given is not None else folder / STATE_FILE_NAME).expanduser()


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


def _rate(text: str) -> int:
    value = parse_size(text)
    if value <= 0:
        raise ValueError(f"{text!r} is not a number of bytes per second > 0")
    return value


def _checksum(text: str) -> str:
    return str(Checksum.parse(text))


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
    # allow_abbrev=False on every parser: an abbreviation would resolve to whichever option
    # it prefixes today (--netrc to --netrc-file) and silently change meaning tomorrow.
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        usage="%(prog)s [options] URL... | -i FILE\n       %(prog)s status [-d DIR] [--json] [STATEFILE|DIR]"
              "\n       %(prog)s demo [-d DIR]",
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
    how.add_argument("--fixed-jobs", action="store_true",
                     help="always run -j downloads at once (by default fewer transfer at once while this "
                          "process has a core's worth of Python to do and more would not be faster)")
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
    _add_politeness_options(parser)
    _add_existing_options(parser)
    _add_access_options(parser)
    _add_state_options(parser)
    _add_dask_options(parser)
    _add_output_options(parser)
    return parser


def _add_existing_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("files already there")
    group.add_argument("--if-changed", action="store_true",
                       help="download a file already there only if the server has a newer one (If-None-Match, "
                            "If-Modified-Since: a 304 costs no body), like wget -N; the state file is kept, "
                            "but the downloads it says are completed are asked again instead of skipped")
    group.add_argument("-c", "--continue", action="store_true", dest="continue_partial",
                       help="a file already under the final name with no .part file of ours is taken as the "
                            "first bytes: only the rest is asked for (Range) and appended, like wget -c, curl -C - "
                            "and aria2c -c; a server ignoring ranges sends the whole file, which replaces it. "
                            "Without validators or --checksum this trusts the server that those bytes are the "
                            "start of its file, as wget and curl do; a checksum verifies the whole file")
    group.add_argument("--on-existing", choices=ON_EXISTING, metavar="|".join(ON_EXISTING),
                       help="a file already under the final name is replaced atomically (the default), kept "
                            "(skip), or kept while the new one is saved as 'name (1).ext' (rename)")


def _add_access_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("credentials, cookies and TLS")
    group.add_argument("-u", "--user", metavar="USER[:PASSWORD]",
                       help="credentials for every URL, Digest or Basic as the server asks (the password "
                            "is asked for when only USER is given, "
                            "without --password, and standard input is a terminal); prefer a .netrc: the "
                            "command line is visible to other users")
    group.add_argument("--password", metavar="PASSWORD",
                       help="the password for --user USER, or without --user for the login the .netrc holds "
                            "for each host, as wget's --password (never printed)")
    group.add_argument("--auth-no-challenge", action="store_true",
                       help="send --user (or the .netrc's) credentials as Basic on the first request, over "
                            "plain HTTP too, without waiting for the server's challenge (as wget)")
    group.add_argument("-n", "--netrc", action="store_true",
                       help="read ~/.netrc (or $NETRC) for credentials per host: the default, as curl -n")
    netrc = group.add_mutually_exclusive_group()
    netrc.add_argument("--netrc-file", type=Path, metavar="FILE",
                       help="credentials per host from FILE (default: ~/.netrc, or $NETRC)")
    netrc.add_argument("--no-netrc", action="store_true", help="read no .netrc at all")
    group.add_argument("-b", "--cookies", type=Path, metavar="FILE",
                       help="send the cookies of FILE, a Netscape cookie file (curl -c, browser exports)")
    tls = group.add_mutually_exclusive_group()
    tls.add_argument("--ca-bundle", type=Path, metavar="FILE",
                     help="verify TLS certificates against the CA certificates in FILE (PEM)")
    tls.add_argument("-k", "--insecure", action="store_true",
                     help="do not verify TLS certificates (anyone on the path can read or alter the downloads)")


def _add_dask_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Dask (pip install 'pydownloads[dask]')")
    group.add_argument("--dask-scheduler", metavar="ADDRESS",
                       help="run the job on the Dask cluster of this scheduler, e.g. tcp://host:8786; -d must be "
                            "a folder every worker can write (each shard keeps its own state there)")
    group.add_argument("--shard-size", type=_count(1), metavar="N",
                       help=f"files per Dask task (default: {DASK_SHARD_SIZE})")


def _add_politeness_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("speed and limits")
    group.add_argument("-x", "--segments", type=_count(1), default=DEFAULT_MAX_SEGMENTS, metavar="N",
                       help="split a large file into at most N parallel ranges when the server allows it "
                            "(default: %(default)s; 1: one connection a file)")
    group.add_argument("--max-per-host", type=_count(1), metavar="N",
                       help="connections open at once to one host, over files and segments (default: "
                            f"{DEFAULT_MAX_CONNECTIONS_PER_HOST}, or -j or -x when more, or a file's segments=)")
    group.add_argument("--limit-rate", type=_type(_rate, "size"), metavar="SIZE",
                       help="bytes per second over all downloads, e.g. 500K or 10M (default: no limit)")
    group.add_argument("--min-speed", type=_type(_rate, "size"), metavar="SIZE",
                       help="a download slower than SIZE bytes per second over --min-speed-time fails "
                            "(and is retried), like curl's --speed-limit")
    group.add_argument("--min-speed-time", type=_type(_seconds, "seconds"), metavar="S",
                       help=f"seconds over which --min-speed is measured (default: {DEFAULT_MIN_SPEED_WINDOW:g})")
    group.add_argument("--deadline", type=_type(_seconds, "seconds"), metavar="S",
                       help="seconds one download may take in all, retries included; then it fails")
    group.add_argument("--checksum", type=_type(_checksum, "checksum"), metavar="ALGO:HEX",
                       help="the file must have this digest, e.g. sha256:9f86...; exactly one URL only "
                            "(use checksum= in an input file for more)")


def _add_state_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("state (continuing where a run stopped)")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--state", type=Path, metavar="FILE",
                       help=f"keep the state of the downloads in FILE (default: DIR/{STATE_FILE_NAME})")
    where.add_argument("--no-state", action="store_true",
                       help="keep no state: a second run downloads again what the first completed")
    group.add_argument("--retry-failed", action="store_true",
                       help="try again the downloads that failed in an earlier run (otherwise they stay failed)")


def build_status_parser() -> argparse.ArgumentParser:
    """The parser of ``pydownloads status``."""
    parser = argparse.ArgumentParser(
        prog=f"{PROG} status", allow_abbrev=False,
        description="Show what a state file holds: how many downloads are completed, failed, pending, "
                    "and each failure with its error. Read-only: safe while a run is using the file. "
                    "Exits 0, or 2 when the file is missing or unusable.",
        epilog="Running again: for everything not yet completed, the newest run's options win (checksum, "
               "expected size, headers and credentials, mirrors, segments, rate limit, priority, "
               "if-changed); a part file kept from an earlier run is verified by the new checksum or "
               "started over. Another name or folder (-o, out=, dir=) is another download: a new entry, "
               "the earlier one kept as it is.",
    )
    parser.add_argument("target", nargs="?", type=Path, metavar="STATEFILE|DIR",
                        help=f"a state file, or a download folder holding {STATE_FILE_NAME} "
                             "(default: the one of -d DIR)")
    parser.add_argument("-d", "--dir", type=Path, metavar="DIR",
                        help="the download folder whose state to show (default: the current one)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on standard output")
    return parser


def build_demo_parser() -> argparse.ArgumentParser:
    """The parser of ``pydownloads demo``."""
    parser = argparse.ArgumentParser(
        prog=f"{PROG} demo", formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
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
