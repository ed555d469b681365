"""What ``--if-changed`` records with a completed file, and when a 304 may vouch for it; which
ETags validate what; a resume state without validators."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import requests

from pydownloads.domain.checksum import Checksum
from pydownloads.downloads.ondisk import conditional_headers, remember_validators
from pydownloads.infrastructure import transport
from pydownloads.infrastructure.sidecar import ResumeState

MODIFIED = "Tue, 14 Nov 2023 22:13:20 GMT"
BODY = b"the file as the server sent it"
RIGHT = Checksum.parse(f"sha256:{hashlib.sha256(BODY).hexdigest()}")
WRONG = Checksum.parse(f"sha256:{'0' * 64}")


def completed(folder: Path, etag: str | None = '"v1"') -> Path:
    path = folder / "f.bin"
    path.write_bytes(BODY)
    remember_validators(path, (etag, MODIFIED))
    return path


def no_xattrs(monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(*args: object) -> bytes:
        raise OSError(95, "Operation not supported")
    monkeypatch.setattr(os, "getxattr", unsupported)
    monkeypatch.setattr(os, "setxattr", unsupported)


def response(headers: dict[str, str]) -> requests.Response:
    answer = requests.Response()
    answer.status_code = 200
    answer.headers.update(headers)
    return answer


def test_the_recorded_file_is_asked_about(tmp_path: Path) -> None:
    headers = conditional_headers(completed(tmp_path))
    assert headers["If-Modified-Since"] == MODIFIED
    assert headers["If-None-Match"] == '"v1"'


def test_a_file_cut_short_is_not_asked_about_even_with_its_time_back(tmp_path: Path) -> None:
    path = completed(tmp_path)
    info = path.stat()
    os.truncate(path, 10)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert conditional_headers(path) == {}
    assert conditional_headers(path, RIGHT) == {}


def test_a_checksum_must_hold_too(tmp_path: Path) -> None:
    path = completed(tmp_path)
    assert conditional_headers(path, RIGHT)["If-None-Match"] == '"v1"'
    assert conditional_headers(path, WRONG) == {}


def test_a_weak_etag_is_kept_for_if_none_match(tmp_path: Path) -> None:
    assert conditional_headers(completed(tmp_path, 'W/"w1"'))["If-None-Match"] == 'W/"w1"'


def test_without_extended_attributes_only_a_checksum_proves_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_xattrs(monkeypatch)
    path = completed(tmp_path)
    assert conditional_headers(path) == {}  # nothing recorded: fetched again
    assert conditional_headers(path, WRONG) == {}
    assert conditional_headers(path, RIGHT) == {"If-Modified-Since": MODIFIED}


def test_a_file_from_elsewhere_is_not_asked_about(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(BODY)
    assert conditional_headers(path) == {}
    assert conditional_headers(path, RIGHT) != {}


@pytest.mark.parametrize(("etag", "strong", "any_kind"), [
    ('"a"', '"a"', '"a"'),
    ('W/"a"', None, 'W/"a"'),
    ("a", None, None),
    ("W/a", None, None),
])
def test_weak_etags_validate_if_none_match_only(etag: str, strong: str | None, any_kind: str | None) -> None:
    answer = response({"ETag": etag, "Last-Modified": MODIFIED})
    assert transport.validators(answer) == (strong, MODIFIED)
    assert transport.validators(answer, weak=True) == (any_kind, MODIFIED)


def test_a_state_without_validators_matches_only_with_a_checksum() -> None:
    state = ResumeState(url="http://a.test/f", total=100)
    assert not state.matches("http://a.test/f", 100, None, None)
    assert state.matches("http://a.test/f", 100, '"new"', MODIFIED, checksum=True)
    assert not state.matches("http://a.test/f", 99, None, None, checksum=True)
    validated = ResumeState(url="http://a.test/f", total=100, etag='"x"')
    assert not validated.matches("http://a.test/f", 100, '"y"', None, checksum=True)
