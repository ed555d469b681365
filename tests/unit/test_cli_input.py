"""The command line's input parsers, value helpers and summary lines (no sockets, no subprocess)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pydownloads.cli import InputError, build_parser, parse_header, parse_input, parse_size, read_input
from pydownloads.cli._access import AccessError, load_cookies, netrc_choice, user_auth
from pydownloads.cli._input import check_unique
from pydownloads.cli._report import Outcome, interrupted_lines, record, summary_lines
from pydownloads.domain.models import DownloadInfo, DownloadStatus
from pydownloads.domain.redact import redact_text

# -- parse_size -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0), ("512", 512), ("1K", 1024), ("1k", 1024), ("500K", 512_000), ("10M", 10 * 1024**2),
        ("1.5M", 1_572_864), ("2G", 2 * 1024**3), (" 3m ", 3 * 1024**2), (".5K", 512), ("1.K", 1024),
    ],
)
def test_parse_size_accepts_numbers_with_1024_based_suffixes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "M", "10MB", "10 M", "-1K", "1e3", "ten", "10T", "1,5M", "0x10", "inf"])
def test_parse_size_rejects_anything_else_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid size .*K, M or G suffix \(1024-based\), e\.g\. 500K or 10M"):
        parse_size(text)


def test_parse_size_rejects_a_size_too_large_for_a_float() -> None:
    with pytest.raises(ValueError, match="too large"):
        parse_size("9" * 400 + "G")


# -- parse_header -----------------------------------------------------------------------------


def test_parse_header_splits_at_the_first_colon_and_strips() -> None:
    assert parse_header("Authorization:  Bearer a:b ") == ("Authorization", "Bearer a:b")
    assert parse_header("X-Empty:") == ("X-Empty", "")


@pytest.mark.parametrize("text", ["no colon", ": value", "   : value"])
def test_parse_header_needs_a_name_and_a_colon(text: str) -> None:
    with pytest.raises(ValueError, match="not in the form 'Name: value'"):
        parse_header(text)


# -- URL lists --------------------------------------------------------------------------------

URL_LIST = """\
# a comment, then a blank line

https://example.com/a.iso
  out=debian.iso
\tdir=isos/amd64
  priority=10
  header=Cookie: x=1
  header=X-Token:  abc
   # an indented comment is a comment too
https://example.com/b.txt
"""


def test_url_list_entries_with_their_options() -> None:
    a, b = parse_input(URL_LIST, "list.txt")
    assert a.where == "list.txt:3" and b.where == "list.txt:10"
    assert a.config.url == "https://example.com/a.iso"
    assert a.config.filename == "debian.iso"
    assert a.config.destination_subdir == "isos/amd64"
    assert a.config.priority == 10
    assert dict(a.config.headers) == {"Cookie": "x=1", "X-Token": "abc"}
    assert b.config.url == "https://example.com/b.txt"
    assert (b.config.priority, b.config.filename, b.config.destination_subdir, dict(b.config.headers)) == (
        0, None, None, {})


def test_url_list_checksum_segments_and_limit_rate() -> None:
    (item,) = parse_input(f"https://e.com/a\n  checksum=SHA256:{'AB' * 32}\n  segments=2\n  limit-rate=1.5K\n", "x")
    assert item.config.checksum == "sha256:" + "ab" * 32
    assert (item.config.segments, item.config.rate_limit) == (2, 1536)


def test_tab_separated_urls_are_mirrors_and_the_options_below_apply_to_the_group() -> None:
    (item, plain) = parse_input(
        "https://e.com/a.iso\thttps://m1.org/a.iso\t\thttps://m2.net/pub/a.iso\t\n  out=a.iso\n  if-changed=TRUE\n"
        "https://e.com/b\n  if-changed=false\n", "x")
    assert (item.config.url, item.config.mirrors) == ("https://e.com/a.iso", ("https://m1.org/a.iso",
                                                                              "https://m2.net/pub/a.iso"))
    assert (item.config.filename, item.config.if_changed) == ("a.iso", True)
    assert item.given == {"filename", "if_changed"}
    assert (plain.config.mirrors, plain.config.if_changed, plain.given) == ((), False, {"if_changed"})


def test_json_lines_mirrors_and_if_changed() -> None:
    (item,) = parse_input('{"url": "https://e.com/a", "mirrors": ["https://m.org/a"], "if_changed": true}', "l",
                          jsonl=True)
    assert (item.config.mirrors, item.config.if_changed) == (("https://m.org/a",), True)
    assert item.given == {"mirrors", "if_changed"}


def test_empty_and_comment_only_inputs_have_no_entries() -> None:
    assert parse_input("", "x") == []
    assert parse_input("\n  \n# only a comment\n", "x") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("  out=a.bin\n", "x.txt:1: an indented option line must follow a URL line"),
        ("https://e.com/a\n  colour=red\n",
         "x.txt:2: unknown option 'colour'; known: checksum, continue, dir, header, "),
        ("https://e.com/a\n  out\n", "x.txt:2: expected key=value, not 'out'"),
        ("https://e.com/a\n  priority=high\n", "x.txt:2: priority must be a whole number, not 'high'"),
        ("https://e.com/a\n  out=a\n  out=b\n", "x.txt:3: option 'out' is given twice for this URL"),
        ("https://e.com/a\n  header=NoColon\n", "x.txt:2: header 'NoColon' is not in the form 'Name: value'"),
        ("\n\nftp://e.com/a\n", "x.txt:3: only http and https URLs can be downloaded"),
        ("https://e.com/a https://e.com/b\n", "x.txt:1: one URL a line"),
        ("https://e.com/a\n  out=sub/a.bin\n", "x.txt:1: the file name 'sub/a.bin' is a path"),
        ("https://e.com/a\n  dir=../up\n", "x.txt:1: destination_subdir must stay inside download_dir"),
        ("https://e.com/a\n  dir=/etc\n", "x.txt:1: destination_subdir must be relative"),
        ("https://e.com/a\n  header=Bad Name: v\n", "x.txt:1: invalid header name 'Bad Name'"),
        ("https://e.com/a\n  out=a\n  checksum=md5:zz\n", "x.txt:3: a md5 checksum is 32 hex digits, not 'zz'"),
        ("https://e.com/a\n  checksum=crc32:0\n", "x.txt:2: unknown checksum algorithm 'crc32'"),
        ("https://e.com/a\n  checksum=abc\n", "x.txt:2: checksum must look like 'sha256:<hex>'"),
        ("https://e.com/a\n  segments=0\n", "x.txt:2: segments must be a whole number >= 1, not '0'"),
        ("https://e.com/a\n  segments=many\n", "x.txt:2: segments must be a whole number >= 1, not 'many'"),
        ("https://e.com/a\n  limit-rate=fast\n", "x.txt:2: limit-rate: invalid size 'fast'"),
        ("https://e.com/a\n  limit-rate=0\n", "x.txt:2: limit-rate must be more than 0 bytes per second"),
        ("https://e.com/a\n  if-changed=yes\n", "x.txt:2: if-changed must be true or false, not 'yes'"),
        ("https://e.com/a\tftp://m.org/a\n", "x.txt:1: only http and https URLs can be downloaded"),
        ("https://e.com/a\thttps://m.org/a b\n", "x.txt:1: one URL a line (mirrors of the same file follow it"),
    ],
)
def test_a_malformed_url_list_line_is_reported_with_its_line_number(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_input(text, "x.txt")
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(message), caught.value.problems


def test_every_problem_of_an_input_is_reported_at_once() -> None:
    text = "https://e.com/a\n  bogus=1\nnot a url\nhttps://e.com/b\n  priority=x\n"
    with pytest.raises(InputError) as caught:
        parse_input(text, "in.txt")
    assert [p.split(":")[1] for p in caught.value.problems] == ["2", "3", "5"]
    assert str(caught.value) == "\n".join(caught.value.problems)


# -- JSON Lines -------------------------------------------------------------------------------

JSONL = """\
{"url": "https://example.com/a.iso", "priority": 3, "filename": "debian.iso", "destination_subdir": "isos", \
"headers": {"Cookie": "x=1"}}

# comments and blank lines are skipped here too
{"url": "https://example.com/b.txt", "filename": null, "headers": null}
"""


def test_json_lines_entries() -> None:
    a, b = parse_input(JSONL, "list.jsonl", jsonl=True)
    assert a.where == "list.jsonl:1" and b.where == "list.jsonl:4"
    assert (a.config.priority, a.config.filename, a.config.destination_subdir) == (3, "debian.iso", "isos")
    assert dict(a.config.headers) == {"Cookie": "x=1"}
    assert (b.config.url, b.config.filename, dict(b.config.headers)) == ("https://example.com/b.txt", None, {})


def test_json_lines_checksum_size_segments_and_rate() -> None:
    line = ('{"url": "https://e.com/a", "checksum": "md5:' + "0" * 32 + '", "expected_size": 10, "segments": 1, '
            '"rate_limit": 2048.5}')
    (item,) = parse_input(line, "l.jsonl", jsonl=True)
    assert (item.config.checksum, item.config.expected_size) == ("md5:" + "0" * 32, 10)
    assert (item.config.segments, item.config.rate_limit) == (1, 2048.5)


def test_the_format_is_told_by_the_first_meaningful_line() -> None:
    assert parse_input("# json\n" + JSONL, "-")[0].config.filename == "debian.iso"
    assert parse_input("https://example.com/x\n", "-")[0].config.url == "https://example.com/x"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"url": "https://e.com/a",}', "l.jsonl:1: not valid JSON: "),
        ('["https://e.com/a"]', "l.jsonl:1: expected a JSON object, not list"),
        ('{"url": "https://e.com/a", "out": "x"}',
         "l.jsonl:1: unknown field(s) 'out'; known: checksum, continue_partial, dest"),
        ('{"priority": 1}', "l.jsonl:1: the field 'url' is missing"),
        ('{"url": "https://e.com/a", "priority": "1"}', "l.jsonl:1: priority must be an int, not str"),
        ('{"url": "https://e.com/a", "priority": true}', "l.jsonl:1: priority must be an int, not bool"),
        ('{"url": "https://e.com/a", "headers": ["x"]}', "l.jsonl:1: headers must be a mapping"),
        ('{"url": "https://e.com/a", "headers": {"A": 1}}', "l.jsonl:1: headers must map str to str"),
        ('{"url": "https://e.com/a", "filename": ""}', "l.jsonl:1: filename must be a non-empty str"),
        ('{"url": "https://e.com/a", "destination_subdir": "../x"}', "l.jsonl:1: destination_subdir must stay"),
        ('{"url": 5}', "l.jsonl:1: url must be a str, not int"),
        ('{"url": "https://e.com/a", "segments": 0}', "l.jsonl:1: segments must be an int >= 1"),
        ('{"url": "https://e.com/a", "rate_limit": -1}', "l.jsonl:1: rate_limit must be bytes per second > 0"),
        ('{"url": "https://e.com/a", "checksum": "sha1:x"}', "l.jsonl:1: a sha1 checksum is 40 hex digits"),
        ('{"url": "https://e.com/a", "mirrors": "https://m.org/a"}', "l.jsonl:1: mirrors must be a list of URLs"),
        ('{"url": "https://e.com/a", "mirrors": {"https://m.org/a": 1}}', "l.jsonl:1: mirrors must be a list"),
        ('{"url": "https://e.com/a", "mirrors": [1]}', "l.jsonl:1: url must be a str, not int"),
        ('{"url": "https://e.com/a", "if_changed": "yes"}', 'l.jsonl:1: if_changed must be true or false, not "yes"'),
    ],
)
def test_a_malformed_json_line_is_reported_with_its_line_number(line: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_input(line + "\n", "l.jsonl", jsonl=True)
    assert caught.value.problems[0].startswith(message), caught.value.problems


# -- reading files and stdin ------------------------------------------------------------------


def test_read_input_picks_json_lines_by_suffix_and_reads_stdin(tmp_path: Path) -> None:
    listed = tmp_path / "urls.jsonl"
    listed.write_text('{"url": "https://e.com/a"}\n', encoding="utf-8")
    assert [i.config.url for i in read_input(str(listed))] == ["https://e.com/a"]
    items = read_input("-", stdin=io.StringIO("https://e.com/b\n  out=b.bin\n"))
    assert items[0].where == "<stdin>:1" and items[0].config.filename == "b.bin"


def test_a_jsonl_suffix_means_json_even_for_a_url_line(tmp_path: Path) -> None:
    listed = tmp_path / "urls.jsonl"
    listed.write_text("https://e.com/a\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"urls\.jsonl:1: not valid JSON"):
        read_input(str(listed))


def test_read_input_tolerates_a_byte_order_mark(tmp_path: Path) -> None:
    listed = tmp_path / "urls.txt"
    listed.write_bytes(b"\xef\xbb\xbfhttps://e.com/a\n")
    assert read_input(str(listed))[0].config.url == "https://e.com/a"


def test_an_unreadable_input_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.txt: cannot read the input file: No such file"):
        read_input(str(tmp_path / "missing.txt"))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="cannot read the input file"):
        read_input(str(binary))
    with pytest.raises(InputError, match="standard input is not available"):
        read_input("-", stdin=None)


def test_each_url_may_be_listed_once() -> None:
    items = parse_input("https://e.com/a\nhttps://e.com/b\nhttps://e.com/a\n  out=other\n", "x.txt")
    with pytest.raises(InputError, match=r"x\.txt:3: https://e\.com/a is already listed at x\.txt:1"):
        check_unique(items)


# -- the parser -------------------------------------------------------------------------------


def test_the_parser_defaults() -> None:
    args = build_parser().parse_args(["https://e.com/a"])
    assert args.urls == ["https://e.com/a"] and args.jobs == 4 and args.retries == 3
    assert (args.timeout, args.header, args.output, args.input_file, args.proxy) == (None, [], None, None, None)
    assert (args.quiet, args.progress, args.json) == (False, False, False)
    # No --max-per-host: the library's default, which follows -j and -x (8 with their defaults).
    assert (args.segments, args.max_per_host, args.limit_rate, args.min_speed, args.min_speed_time) == (
        4, None, None, None, None)
    assert (args.netrc, args.password) == (False, None)
    assert (args.deadline, args.checksum, args.state, args.no_state, args.retry_failed) == (
        None, None, None, False, False)
    assert (args.if_changed, args.on_existing, args.user, args.netrc_file, args.no_netrc, args.cookies) == (
        False, None, None, None, False, None)
    assert (args.ca_bundle, args.insecure, args.dask_scheduler, args.shard_size) == (None, False, None, None)


def test_the_parser_reads_sizes_seconds_and_checksums() -> None:
    args = build_parser().parse_args([
        "u", "-x", "8", "--max-per-host", "2", "--limit-rate", "10M", "--min-speed", "1K", "--min-speed-time", "5",
        "--deadline", "90", "--checksum", "SHA1:" + "A" * 40, "--state", "s.db", "--retry-failed"])
    assert (args.segments, args.max_per_host, args.limit_rate) == (8, 2, 10 * 1024**2)
    assert (args.min_speed, args.min_speed_time, args.deadline) == (1024, 5.0, 90.0)
    assert (args.checksum, args.state, args.retry_failed) == ("sha1:" + "a" * 40, Path("s.db"), True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-j", "0", "u"], "argument -j/--jobs: 0 is less than 1"),
        (["--retries", "-1", "u"], "argument --retries: -1 is less than 0"),
        (["--timeout", "0", "u"], "argument --timeout: 0 is not a number of seconds > 0"),
        (["--timeout", "soon", "u"], "argument --timeout: 'soon' is not a number of seconds"),
        (["--header", "nocolon", "u"], "argument -H/--header: header 'nocolon' is not in the form"),
        (["--quiet", "--progress", "u"], "argument --progress: not allowed with argument -q/--quiet"),
        (["--min-speed", "0", "u"], "argument --min-speed: '0' is not a number of bytes per second > 0"),
        (["--min-speed-time", "0", "u"], "argument --min-speed-time: 0 is not a number of seconds > 0"),
        (["--no-state", "--state", "x", "u"], "argument --state: not allowed with argument --no-state"),
        (["--on-existing", "overwrite", "u"], "argument --on-existing: invalid choice: 'overwrite'"),
        (["--insecure", "--ca-bundle", "c.pem", "u"], "argument --ca-bundle: not allowed with argument -k/--insecure"),
        (["--shard-size", "0", "u"], "argument --shard-size: 0 is less than 1"),
    ],
)
def test_the_parser_refuses_bad_values_clearly(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(argv)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


# -- the summary ------------------------------------------------------------------------------


def _info(url: str, status: DownloadStatus, finished_at: float, size: int = 100) -> DownloadInfo:
    return DownloadInfo(url=url, status=status, bytes_downloaded=size, started_at=finished_at - 1,
                        finished_at=finished_at, error="HTTP 404 Not Found" if status == "failed" else None,
                        error_type="HTTPStatusError" if status == "failed" else None, attempts=1)


def test_the_summary_tells_what_an_earlier_run_settled() -> None:
    downloads = [
        _info("https://e.com/new", DownloadStatus.COMPLETED, 2000.0, size=2048),
        _info("https://e.com/old", DownloadStatus.COMPLETED, 500.0, size=999_999),  # skipped
        _info("https://e.com/gone", DownloadStatus.FAILED, 600.0),
    ]
    carried = [_info("https://e.com/left", DownloadStatus.COMPLETED, 1500.0)]
    outcome = Outcome(downloads=downloads, elapsed=2.0, started_at=1000.0, state_file=Path("d/.state.db"),
                      carried_over=carried)
    assert outcome.bytes == 2048  # what this run downloaded
    assert summary_lines(outcome) == [
        "2 completed (1 skipped: already done), 1 failed (1 in an earlier run: --retry-failed tries again), "
        "0 cancelled: 2.0 KiB in 2.0 s (1.0 KiB/s)",
        "Also finished 1 download(s) an earlier run left unfinished in d/.state.db: 1 completed",
        "FAILED https://e.com/gone: HTTP 404 Not Found (HTTPStatusError, 1 attempt)",
    ]
    fresh = Outcome(downloads=downloads[:1], elapsed=1.0)
    assert summary_lines(fresh)[0].startswith("1 completed, 0 failed, 0 cancelled: ")


def test_after_an_interruption_the_state_file_is_named() -> None:
    left = [DownloadInfo(url="https://e.com/a", status=DownloadStatus.CANCELLED)]
    with_state = Outcome(downloads=left, elapsed=1.0, interrupted=True, state_file=Path("d/.state.db"))
    assert interrupted_lines(with_state)[-1] == (
        "Run the same command again to continue (the state is kept in d/.state.db).")
    without = Outcome(downloads=left, elapsed=1.0, interrupted=True)
    assert interrupted_lines(without)[-1] == "Run the same command again to download them (partial files resume)."


def test_the_summary_counts_the_files_completed_unchanged() -> None:
    unchanged = DownloadInfo(url="https://e.com/same", status=DownloadStatus.COMPLETED, started_at=2000.0,
                             finished_at=2000.0, unchanged=True)
    downloads = [unchanged, _info("https://e.com/new", DownloadStatus.COMPLETED, 2000.0),
                 _info("https://e.com/old", DownloadStatus.COMPLETED, 500.0)]
    outcome = Outcome(downloads=downloads, elapsed=1.0, started_at=1000.0)
    assert summary_lines(outcome)[0].startswith("3 completed (1 skipped: already done; 1 unchanged), 0 failed")
    assert record(unchanged)["unchanged"] is True and record(downloads[1])["unchanged"] is False


# -- credentials ------------------------------------------------------------------------------


def test_user_auth_takes_a_password_or_asks_for_it_on_a_terminal() -> None:
    assert user_auth("alice:pa:ss@w", can_ask=False) == ("alice", "pa:ss@w")
    assert user_auth("alice:", can_ask=False) == ("alice", "")
    prompts: list[str] = []
    assert user_auth("bob", can_ask=True, ask=lambda p: prompts.append(p) or "typed") == ("bob", "typed")
    assert prompts == ["Password for bob: "]
    with pytest.raises(AccessError, match="standard input is not a terminal"):
        user_auth("bob", can_ask=False)
    with pytest.raises(AccessError, match="needs a user name"):
        user_auth(":secret", can_ask=True)


def test_load_cookies_keeps_curl_session_cookies_and_drops_expired_ones(tmp_path: Path) -> None:
    import pickle

    path = tmp_path / "cookies.txt"
    path.write_text("# Netscape HTTP Cookie File\n"
                    ".e.com\tTRUE\t/\tTRUE\t0\tsession\ts\n"
                    "e.com\tFALSE\t/\tFALSE\t\tblank\tb\n"
                    "#HttpOnly_e.com\tFALSE\t/p\tFALSE\t2000\tlater\tl\n"
                    "e.com\tFALSE\t/\tFALSE\t999\tgone\tg\n", encoding="utf-8")
    jar = load_cookies(path, now=1000)
    cookies = {c.name: c for c in jar}
    assert sorted(cookies) == ["blank", "later", "session"]
    assert cookies["session"].expires is None and cookies["session"].secure and cookies["session"].domain == ".e.com"
    assert cookies["later"].path == "/p" and cookies["later"].has_nonstandard_attr("HTTPOnly")
    assert sorted(c.name for c in pickle.loads(pickle.dumps(jar))) == sorted(cookies)  # fit for Dask workers


def test_netrc_options_become_the_session_netrc_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert netrc_choice(netrc_file=Path("creds.netrc"), no_netrc=False) == tmp_path / "creds.netrc"  # absolute
    assert netrc_choice(netrc_file=None, no_netrc=True) is False
    assert netrc_choice(netrc_file=None, no_netrc=False) is True  # the environment's, as requests reads it


def test_redact_text_hides_the_userinfo_of_every_url() -> None:
    text = "x.txt:2: 'https://al:p@ss@h.com/a' is already listed; ftp://u@h/ too; https://e.com/a@b stays"
    assert redact_text(text) == (
        "x.txt:2: 'https://***@h.com/a' is already listed; ftp://***@h/ too; https://e.com/a@b stays")


def test_a_plain_url_line_costs_no_set_of_its_own() -> None:
    """The command holds its whole input while it runs: a line that sets no option shares
    one empty ``given`` instead of a frozenset of its own (~200 bytes each)."""
    text = "".join(f"http://127.0.0.1:8080/g{number % 100:02d}/f{number}.bin\n" for number in range(2000))
    items = parse_input(text, "list.txt")
    assert len({id(item.given) for item in items}) == 1
    assert not items[0].given
