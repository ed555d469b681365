"""Bounded: whatever a server does, every download ends in bounded time, memory and number of
requests, and ``queue.join()`` returns."""

from __future__ import annotations

import email.utils
import time
import tracemalloc
import zlib

import pytest

from pydownloads import DownloadManager, DownloadStatus
from tests.adversarial.conftest import Sandbox, final_only, run_batch
from tests.adversarial.rawserver import (
    RawServer,
    body,
    chunked,
    drip,
    drip_head,
    endless_continue,
    endless_headers,
    head,
    lying_length,
    raw,
    redirect,
    silent,
)

DATA = bytes(range(256)) * 8  # 2 KiB


# -- heads that never end -------------------------------------------------------------------------


def test_endless_header_lines_fail_fast(raw_server: RawServer, sandbox: Sandbox) -> None:
    url = raw_server.route("/f.bin", endless_headers())
    outcome = run_batch(sandbox, [url])
    assert outcome.finished and outcome.elapsed < 5
    outcome.assert_clean_failure(url, "TransferError")
    assert raw_server.count("/f.bin") == 2


def test_megabyte_header_line_fails_fast(raw_server: RawServer, sandbox: Sandbox) -> None:
    url = raw_server.route("/f.bin", raw(head(200, [("X-Big", "a" * (1 << 20)), ("Content-Length", "4")]) + b"data"))
    outcome = run_batch(sandbox, [url])
    assert outcome.finished and outcome.elapsed < 5
    outcome.assert_clean_failure(url, "TransferError")


def test_endless_interim_responses_are_bounded(raw_server: RawServer, sandbox: Sandbox) -> None:
    url = raw_server.route("/f.bin", endless_continue())
    outcome = run_batch(sandbox, [url], bound=4.0, deadline=1.0)
    assert outcome.finished, "queue.join() did not return within 4 s"
    outcome.assert_clean_failure(url)


def test_dripped_head_respects_the_deadline(raw_server: RawServer, sandbox: Sandbox) -> None:
    url = raw_server.route("/f.bin", drip_head(0.02))
    outcome = run_batch(sandbox, [url], bound=4.0, deadline=1.0)
    assert outcome.finished, "queue.join() did not return within 4 s although deadline=1 s"
    outcome.assert_clean_failure(url, "DeadlineExceededError", "DownloadTimeoutError")


# -- bodies that never end --------------------------------------------------------------------------


def test_silent_server_times_out(raw_server: RawServer, sandbox: Sandbox) -> None:
    url = raw_server.route("/f.bin", silent())
    outcome = run_batch(sandbox, [url])
    assert outcome.finished and outcome.elapsed < 6
    outcome.assert_clean_failure(url, "DownloadTimeoutError", "TransferError")
    assert "timed out" in (outcome.info(url).error or "").lower()
    assert raw_server.count("/f.bin") == 2


def test_dripping_body_fails_on_min_speed(raw_server: RawServer, sandbox: Sandbox) -> None:
    url = raw_server.route("/f.bin", drip(DATA, 0.05))
    outcome = run_batch(sandbox, [url], min_speed=1000, min_speed_window=0.5)
    assert outcome.finished and outcome.elapsed < 5
    outcome.assert_clean_failure(url, "DownloadTimeoutError")
    assert final_only(sandbox) == []


@pytest.mark.parametrize("validators", [[], [("ETag", '"v"'), ("Accept-Ranges", "bytes")]],
                         ids=["plain", "resumable"])
def test_dripping_body_fails_on_deadline_without_retry(
        raw_server: RawServer, sandbox: Sandbox, validators: list) -> None:
    url = raw_server.route("/f.bin", drip(DATA, 0.05, validators))
    outcome = run_batch(sandbox, [url], deadline=1.0)
    assert outcome.finished and outcome.elapsed < 4
    outcome.assert_clean_failure(url, "DeadlineExceededError")
    assert raw_server.count("/f.bin") == 1  # a deadline is final


def test_defaults_bound_a_dripping_server(sandbox: Sandbox) -> None:
    manager = DownloadManager(download_dir=sandbox.root)
    try:
        settings = manager.worker.settings
        assert settings.min_speed is not None or settings.deadline is not None
    finally:
        manager.shutdown()


# -- retries and redirects ------------------------------------------------------------------------


@pytest.mark.parametrize("retry_after", ["86400", "999999999999999999", "99999999999999999999999",
                                         email.utils.formatdate(time.time() + 86400, usegmt=True), "-5", "soon"])
@pytest.mark.parametrize("status", [503, 429])
def test_retry_after_is_capped(raw_server: RawServer, sandbox: Sandbox, retry_after: str, status: int) -> None:
    url = raw_server.route("/f.bin", raw(head(status, [("Retry-After", retry_after), ("Content-Length", "0")])))
    outcome = run_batch(sandbox, [url])
    assert outcome.finished and outcome.elapsed < 3
    info = outcome.assert_clean_failure(url, "HTTPStatusError")
    assert str(status) in (info.error or "")
    assert raw_server.count("/f.bin") == 2  # max_retries=1


def test_redirect_loop_ends_in_bounded_requests(raw_server: RawServer, sandbox: Sandbox) -> None:
    url = raw_server.route("/loop", redirect("/loop"))
    outcome = run_batch(sandbox, [url])
    assert outcome.finished and outcome.elapsed < 3
    outcome.assert_clean_failure(url, "RedirectError")
    assert raw_server.count("/loop") <= 11  # the first request and at most 10 redirects, not retried


def test_endless_redirect_chain_across_two_servers(raw_server: RawServer, other_server: RawServer,
                                                    sandbox: Sandbox) -> None:
    for n in range(40):
        raw_server.route(f"/r{n}", redirect(other_server.url(f"/r{n}")))
        other_server.route(f"/r{n}", redirect(raw_server.url(f"/r{n + 1}")))
    url = raw_server.url("/r0")
    outcome = run_batch(sandbox, [url])
    assert outcome.finished and outcome.elapsed < 3
    outcome.assert_clean_failure(url, "RedirectError")
    assert len(raw_server.requests) + len(other_server.requests) <= 11


# -- bombs ----------------------------------------------------------------------------------------


def _gzip_bomb(members: int = 16, member_size: int = 64 << 20) -> bytes:
    """``members`` gzip members each inflating to ``member_size`` zero bytes (1 GiB in all)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    member = b"".join(compressor.compress(block) for _ in range(member_size >> 20)) + compressor.flush()
    return member * members


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return _gzip_bomb()


@pytest.mark.parametrize("encoding", ["gzip", "gzip, br, deflate, x-unknown"])
@pytest.mark.parametrize("validators", [[], [("ETag", '"b"'), ("Accept-Ranges", "bytes")]],
                         ids=["plain", "resumable"])
def test_compressed_body_is_saved_raw_in_small_memory(
        raw_server: RawServer, sandbox: Sandbox, bomb: bytes, encoding: str, validators: list) -> None:
    """The library asks for identity and must save the bytes as sent, never inflate them."""
    assert zlib.decompressobj(31).decompress(bomb, 4096) == bytes(4096)  # it really inflates to zeros
    url = raw_server.route("/bomb.gz", body(bomb, [("Content-Encoding", encoding), *validators]))
    tracemalloc.start()
    try:
        outcome = run_batch(sandbox, [url], chunk_size=64 << 10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.finished and outcome.elapsed < 10
    outcome.assert_exact(url, bomb)
    assert peak < 16 << 20, f"peak Python allocations {peak >> 20} MiB while saving a {len(bomb) >> 10} KiB body"
    request = raw_server.requests[0]
    assert (request.header("Accept-Encoding") or "").strip().lower() == "identity"


# -- everything at once -----------------------------------------------------------------------------


def test_queue_join_returns_whatever_the_servers_do(raw_server: RawServer, sandbox: Sandbox) -> None:
    """A batch of misbehaving servers and good ones: join returns, each has a final status,
    the good files are exact."""
    routes = {
        "/ok1.bin": body(DATA),
        "/endless.bin": endless_headers(),
        "/silent.bin": silent(),
        "/short.bin": lying_length("9999", DATA),
        "/chunk.bin": chunked(b"zz\r\n"),
        "/loop.bin": redirect("/loop.bin"),
        "/503.bin": raw(head(503, [("Retry-After", "86400"), ("Content-Length", "0")])),
        "/file.bin": redirect("file:///etc/passwd"),
        "/empty.bin": raw(b""),
        "/ok2.bin": body(DATA[::-1]),
    }
    urls = {path: raw_server.route(path, handler) for path, handler in routes.items()}
    outcome = run_batch(sandbox, list(urls.values()), max_workers=4)
    assert outcome.finished and outcome.elapsed < 8
    assert all(info.status.is_final for info in outcome.infos.values())
    outcome.assert_exact(urls["/ok1.bin"], DATA)
    outcome.assert_exact(urls["/ok2.bin"], DATA[::-1])
    failed = [u for u, i in outcome.infos.items() if i.status is DownloadStatus.FAILED]
    assert len(failed) == len(routes) - 2
    assert final_only(sandbox) == ["ok1.bin", "ok2.bin"]
