"""``continue_partial``: the FileConfig field, its input keys, ``-c/--continue`` and how an
answer to ``Range: bytes=SIZE-`` is read (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from pydownloads import FileConfig, InvalidArgumentError
from pydownloads.cli import build_parser, parse_input
from pydownloads.downloads.continuing import Answer, partial_size, read_answer
from pydownloads.downloads.job import DownloadRequest


def test_the_field_defaults_off_is_checked_and_reaches_the_request(tmp_path: Path) -> None:
    assert FileConfig("https://e.com/a").continue_partial is False
    with pytest.raises(InvalidArgumentError):
        FileConfig("https://e.com/a", continue_partial="yes")  # type: ignore[arg-type]
    config = FileConfig("https://e.com/a", continue_partial=True)
    assert DownloadRequest.from_config(config, tmp_path).continue_partial is True


def test_dash_c_and_its_long_name() -> None:
    parser = build_parser()
    assert parser.parse_args(["https://e.com/a", "-c"]).continue_partial is True
    assert parser.parse_args(["https://e.com/a", "--continue"]).continue_partial is True
    assert parser.parse_args(["https://e.com/a"]).continue_partial is False
    assert "trusts the server" in " ".join(parser.format_help().split())


def test_input_line_and_json_keys() -> None:
    (item,) = parse_input("https://e.com/a\n  continue=true\n", "l")
    assert item.config.continue_partial is True and "continue_partial" in item.given
    (item,) = parse_input('{"url": "https://e.com/a", "continue_partial": false}', "l", jsonl=True)
    assert item.config.continue_partial is False and "continue_partial" in item.given
    with pytest.raises(ValueError, match="continue"):
        parse_input("https://e.com/a\n  continue=maybe\n", "l")
    with pytest.raises(ValueError, match="continue_partial"):
        parse_input('{"url": "https://e.com/a", "continue_partial": "true"}', "l", jsonl=True)


def test_partial_size_only_for_a_plain_non_empty_file_without_our_part(tmp_path: Path) -> None:
    final = tmp_path / "f.bin"
    assert partial_size(True, final) is None  # nothing there
    final.write_bytes(b"")
    assert partial_size(True, final) is None  # empty: a plain download
    final.write_bytes(b"abc")
    assert partial_size(True, final) == 3
    assert partial_size(False, final) is None
    assert partial_size(True, None) is None
    (tmp_path / "f.bin.part").write_bytes(b"ab")
    assert partial_size(True, final) is None  # our part file: resumed or replaced as usual
    link = tmp_path / "l.bin"
    link.symlink_to(final)
    assert partial_size(True, link) is None


def response(status: int, content_range: str | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    if content_range is not None:
        answer.headers["Content-Range"] = content_range
    return answer


@pytest.mark.parametrize(
    ("status", "content_range", "expected"),
    [
        (206, "bytes 100-999/1000", Answer(total=1000, body=True)),
        (206, "bytes 0-999/1000", Answer(total=None)),  # not where the kept bytes end
        (206, "bytes 100-499/1000", Answer(total=None)),  # not to the end
        (206, "bytes 100-999/*", Answer(total=None)),
        (416, "bytes */100", Answer(total=100)),  # complete
        (416, "bytes */90", Answer(total=None)),  # the local file is longer: another file
        (416, None, Answer(total=None)),
        (200, None, None),
    ],
)
def test_read_answer(status: int, content_range: str | None, expected: Answer | None) -> None:
    assert read_answer(response(status, content_range), 100) == expected
