"""Exact or clean failure: whatever framing a server sends, the file under the final name holds
exactly the body the server framed, or the download is FAILED with a clear error and nothing
is left under a final name."""

from __future__ import annotations

from typing import Any

import pytest

from pydownloads import DownloadStatus
from tests.adversarial.conftest import Outcome, Sandbox, final_only, run_batch
from tests.adversarial.rawserver import Handler, RawServer, body, chunked, head, lying_length, raw

DATA = bytes(range(256)) * 4  # 1024 bytes
HEX = b"%x" % len(DATA)
RESUMABLE = [("ETag", '"v1"'), ("Accept-Ranges", "bytes")]


def _one(raw_server: RawServer, sandbox: Sandbox, handler: Handler, **options: Any) -> tuple[str, Outcome]:
    url = raw_server.route("/f.bin", handler)
    outcome = run_batch(sandbox, [url], **options)
    assert outcome.finished, "queue.join() must return"
    return url, outcome


# -- Content-Length that lies ---------------------------------------------------------------------


@pytest.mark.parametrize("validators", [[], RESUMABLE], ids=["plain", "resumable"])
def test_short_body_fails_cleanly(raw_server: RawServer, sandbox: Sandbox, validators: list) -> None:
    """Content-Length says more than comes before the close: FAILED, retried, no final file."""
    url, outcome = _one(raw_server, sandbox, lying_length(str(len(DATA) + 500), DATA, validators))
    outcome.assert_clean_failure(url, "IncompleteDownloadError")
    assert raw_server.count("/f.bin") == 2  # max_retries=1: one retry, then the verdict
    assert final_only(sandbox) == []


@pytest.mark.parametrize("validators", [[], RESUMABLE], ids=["plain", "resumable"])
def test_body_longer_than_content_length_keeps_the_framed_bytes(
        raw_server: RawServer, sandbox: Sandbox, validators: list) -> None:
    """HTTP frames the body by Content-Length: bytes after it are not part of the file."""
    url, outcome = _one(raw_server, sandbox, lying_length("100", DATA, validators))
    outcome.assert_exact(url, DATA[:100])


@pytest.mark.parametrize(
    ("declared", "expect"),
    [
        (["1024", "1024"], "exact"),  # duplicated, equal: one length
        (["1024, 1024"], "exact"),
        (["1024", "512"], "fail"),  # conflicting: the framing is unknowable
        (["1024, 512"], "fail"),
        (["-5"], "any"),  # negative, non-numeric, signed: not a length
        (["abc"], "any"),
        (["+1024"], "any"),
        (["99999999999999999999999"], "any"),
    ],
    ids=["dup-equal", "dup-equal-one-line", "conflict", "conflict-one-line", "negative", "non-numeric",
         "signed", "huge"],
)
@pytest.mark.parametrize("validators", [[], RESUMABLE], ids=["plain", "resumable"])
def test_odd_content_lengths_are_exact_or_fail_cleanly(
        raw_server: RawServer, sandbox: Sandbox, declared: list[str], expect: str, validators: list) -> None:
    url, outcome = _one(raw_server, sandbox, lying_length(declared, DATA, validators))
    info = outcome.info(url)
    if expect == "fail" or (expect == "any" and info.status is not DownloadStatus.COMPLETED):
        outcome.assert_clean_failure(url)
        assert final_only(sandbox) == []
    else:
        outcome.assert_exact(url, DATA)


def test_content_length_beside_chunked_is_not_believed(raw_server: RawServer, sandbox: Sandbox) -> None:
    framing = HEX + b"\r\n" + DATA + b"\r\n0\r\n\r\n"
    handler = raw(head(200, [*RESUMABLE, ("Content-Length", "10"), ("Transfer-Encoding", "chunked")]) + framing)
    url, outcome = _one(raw_server, sandbox, handler)
    info = outcome.info(url)
    if info.status is DownloadStatus.COMPLETED:
        outcome.assert_exact(url, DATA)
    else:
        outcome.assert_clean_failure(url)


def test_content_length_beside_chunked_without_validators(raw_server: RawServer, sandbox: Sandbox) -> None:
    framing = HEX + b"\r\n" + DATA + b"\r\n0\r\n\r\n"
    handler = raw(head(200, [("Content-Length", "10"), ("Transfer-Encoding", "chunked")]) + framing)
    url, outcome = _one(raw_server, sandbox, handler)
    if outcome.info(url).status is DownloadStatus.COMPLETED:
        outcome.assert_exact(url, DATA)
    else:
        outcome.assert_clean_failure(url)


# -- chunked framing errors -----------------------------------------------------------------------


def test_well_formed_chunked_body_is_exact(raw_server: RawServer, sandbox: Sandbox) -> None:
    url, outcome = _one(raw_server, sandbox, chunked(b"100\r\n" + DATA[:256] + b"\r\n300\r\n" + DATA[256:]
                                                      + b"\r\n0\r\n\r\n"))
    outcome.assert_exact(url, DATA)


@pytest.mark.parametrize(
    "framing",
    [
        b"zz\r\n" + DATA + b"\r\n0\r\n\r\n",  # chunk size not hex
        HEX + b"\r\n" + DATA + b"\r\n",  # no last chunk before the close
        b"800\r\n" + DATA,  # chunk cut short
        b"ffffffffffffffffffff\r\n" + DATA,  # absurd chunk size
        HEX + b";" + b"e" * 100_000 + b"\r\n" + DATA + b"\r\n0\r\n\r\n",  # endless chunk extension
        b"-10\r\n" + DATA + b"\r\n0\r\n\r\n",  # negative size
        b"",  # nothing at all
    ],
    ids=["not-hex", "no-last-chunk", "cut-short", "absurd-size", "endless-extension", "negative", "empty"],
)
@pytest.mark.parametrize("validators", [[], RESUMABLE], ids=["plain", "resumable"])
def test_chunked_framing_errors_fail_cleanly(
        raw_server: RawServer, sandbox: Sandbox, framing: bytes, validators: list) -> None:
    url, outcome = _one(raw_server, sandbox, chunked(framing, validators))
    outcome.assert_clean_failure(url, "TransferError", "IncompleteDownloadError")
    assert outcome.elapsed < 5
    assert final_only(sandbox) == []


def test_missing_crlf_after_chunk_data_is_exact_or_fails(raw_server: RawServer, sandbox: Sandbox) -> None:
    """http.client does not check the CRLF after chunk data; the chunks' bytes are still exact."""
    url, outcome = _one(raw_server, sandbox, chunked(HEX + b"\r\n" + DATA + b"XX0\r\n\r\n"))
    if outcome.info(url).status is DownloadStatus.COMPLETED:
        outcome.assert_exact(url, DATA)
    else:
        outcome.assert_clean_failure(url)


# -- broken status lines and heads ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "error_types"),
    [
        (b"HELLO WORLD\r\n\r\n", ("TransferError",)),
        (DATA, ("TransferError",)),  # HTTP/0.9-style: a body with no head
        (b"", ("TransferError",)),  # closed without a word
        (head(999, [("Content-Length", "4")]) + b"oops", ("HTTPStatusError",)),
        (head(302, [("Content-Length", "0")]), ("HTTPStatusError",)),  # redirect without Location
        (head(200, [("Content-Length", "4"), ("Bad Header Name", "x")]) + b"data", None),
        (b"HTTP/1.1 200 OK\nContent-Length: 4\n\ndata", None),  # bare LF line ends
        (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nda", ("IncompleteDownloadError",)),
    ],
    ids=["garbage-status", "no-head", "empty", "status-999", "302-no-location", "bad-header-name", "bare-lf",
         "short-after-head"],
)
def test_broken_responses_fail_cleanly_or_are_exact(
        raw_server: RawServer, sandbox: Sandbox, response: bytes, error_types: tuple[str, ...] | None) -> None:
    url, outcome = _one(raw_server, sandbox, raw(response))
    if error_types is None:
        outcome.assert_exact(url, b"data")
    else:
        outcome.assert_clean_failure(url, *error_types)
        assert final_only(sandbox) == []


def test_a_bad_file_does_not_stop_the_batch(raw_server: RawServer, sandbox: Sandbox) -> None:
    """Lying servers beside a good one: the good file completes exactly, the rest fail cleanly."""
    good = raw_server.route("/good.bin", body(DATA))
    bad = [
        raw_server.route("/short.bin", lying_length("5000", DATA)),
        raw_server.route("/chunk.bin", chunked(b"zz\r\n")),
        raw_server.route("/conflict.bin", lying_length(["10", "20"], DATA)),
    ]
    outcome = run_batch(sandbox, [*bad, good])
    assert outcome.finished
    outcome.assert_exact(good, DATA)
    for url in bad:
        outcome.assert_clean_failure(url)
    assert final_only(sandbox) == ["good.bin"]
