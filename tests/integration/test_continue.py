"""``continue_partial`` / ``-c``: a partial file another tool left under the final name is the
first bytes; only the rest is fetched (wget -c, curl -C -, aria2c -c)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pydownloads import DownloadManager, DownloadStatus, FileConfig, RetryConfig
from pydownloads.localserver import LocalServer
from pydownloads.testing import IgnoreRange, ResetAfter
from tests.integration.clirun import run_cli
from tests.integration.helpers import file_sha256, files_under, payload, sha256

RETRY = RetryConfig(max_retries=3, base_delay=0.01, max_delay=0.02)
SIZE = 1_000_000
KEPT = 300_000


def run(out: Path, files: list[FileConfig], **options: object) -> DownloadManager:
    options.setdefault("retry_config", RETRY)
    with DownloadManager(out, **options) as m:  # type: ignore[arg-type]
        m.add_to_queue(files)
        m.queue.join()
    return m


def serve(server: LocalServer, name: str, seed: int, **options: object) -> tuple[str, bytes]:
    body = payload(SIZE, seed)
    return server.add_file(f"/{name}", body, **options), body  # type: ignore[arg-type]


def status_of(m: DownloadManager, url: str) -> DownloadStatus:
    info = m.tracker.get_download(url)
    assert info is not None
    return info.status


@pytest.mark.parametrize("validators", [True, False], ids=["validators", "none"])
def test_a_partial_file_gets_only_its_missing_bytes(
    local_server: LocalServer, tmp_path: Path, validators: bool
) -> None:
    options = {} if validators else {"etag": None, "last_modified": None}
    url, body = serve(local_server, "a.bin", 1, **options)
    (tmp_path / "a.bin").write_bytes(body[:KEPT])  # what another tool left
    m = run(tmp_path, [FileConfig(url=url, continue_partial=True)], max_segments=1)
    assert status_of(m, url) is DownloadStatus.COMPLETED
    [request] = local_server.requests
    assert request.range == f"bytes={KEPT}-" and "If-Range" not in request.headers
    assert local_server.bytes_sent("/a.bin") == SIZE - KEPT
    assert file_sha256(tmp_path / "a.bin") == sha256(body)
    assert files_under(tmp_path) == [tmp_path / "a.bin"]


def test_a_broken_continuation_goes_on_from_where_it_broke(local_server: LocalServer, tmp_path: Path) -> None:
    url, body = serve(local_server, "r.bin", 11, etag=None, last_modified=None)
    local_server.add_faults("/r.bin", ResetAfter(200_000))
    (tmp_path / "r.bin").write_bytes(body[:KEPT])
    m = run(tmp_path, [FileConfig(url=url, continue_partial=True)], max_segments=1)
    assert status_of(m, url) is DownloadStatus.COMPLETED
    first, second = (r.range for r in local_server.requests)
    assert first == f"bytes={KEPT}-" and second is not None
    assert KEPT < int(second[len("bytes="):].split("-")[0]) <= KEPT + 200_000  # not from zero again
    assert file_sha256(tmp_path / "r.bin") == sha256(body)
    assert files_under(tmp_path) == [tmp_path / "r.bin"]


def test_without_continue_the_partial_file_is_replaced_from_zero(local_server: LocalServer, tmp_path: Path) -> None:
    url, body = serve(local_server, "z.bin", 2)
    (tmp_path / "z.bin").write_bytes(body[:KEPT])
    run(tmp_path, [FileConfig(url=url)], max_segments=1)
    assert [r.range for r in local_server.requests] == [None]
    assert file_sha256(tmp_path / "z.bin") == sha256(body)


def test_a_server_ignoring_ranges_replaces_the_file(local_server: LocalServer, tmp_path: Path) -> None:
    url, body = serve(local_server, "i.bin", 3)
    local_server.add_faults("/i.bin", IgnoreRange())
    (tmp_path / "i.bin").write_bytes(b"\xff" * KEPT)  # not even its start: the 200 replaces it all
    m = run(tmp_path, [FileConfig(url=url, continue_partial=True)], max_segments=1)
    assert status_of(m, url) is DownloadStatus.COMPLETED
    assert [r.range for r in local_server.requests] == [f"bytes={KEPT}-"]
    assert local_server.bytes_sent("/i.bin") == SIZE
    assert file_sha256(tmp_path / "i.bin") == sha256(body)
    assert files_under(tmp_path) == [tmp_path / "i.bin"]


@pytest.mark.parametrize("checksum", [False, True], ids=["trusted", "verified"])
def test_a_complete_file_is_complete_with_no_body(local_server: LocalServer, tmp_path: Path, checksum: bool) -> None:
    url, body = serve(local_server, "c.bin", 4)
    (tmp_path / "c.bin").write_bytes(body)
    digest = f"sha256:{sha256(body)}" if checksum else None
    m = run(tmp_path, [FileConfig(url=url, continue_partial=True, checksum=digest)], max_segments=1)
    assert status_of(m, url) is DownloadStatus.COMPLETED
    [request] = local_server.requests
    assert request.range == f"bytes={SIZE}-" and request.status == 416
    assert local_server.bytes_sent("/c.bin") == 0
    assert file_sha256(tmp_path / "c.bin") == sha256(body)
    assert files_under(tmp_path) == [tmp_path / "c.bin"]


def test_a_longer_local_file_is_fetched_again_from_zero(local_server: LocalServer, tmp_path: Path) -> None:
    url, body = serve(local_server, "l.bin", 5)
    (tmp_path / "l.bin").write_bytes(body + b"more")  # 416 naming another total: not this file
    m = run(tmp_path, [FileConfig(url=url, continue_partial=True)], max_segments=1)
    assert status_of(m, url) is DownloadStatus.COMPLETED
    assert [r.range for r in local_server.requests] == [f"bytes={SIZE + 4}-", None]
    assert file_sha256(tmp_path / "l.bin") == sha256(body)


def test_a_wrong_checksum_fails_and_leaves_nothing_wrong(local_server: LocalServer, tmp_path: Path) -> None:
    url, body = serve(local_server, "w.bin", 6)
    (tmp_path / "w.bin").write_bytes(body[:KEPT])
    m = run(tmp_path, [FileConfig(url=url, continue_partial=True, checksum=f"sha256:{'0' * 64}")], max_segments=1)
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.FAILED
    assert info.error_type == "ChecksumMismatchError"
    assert [r.range for r in local_server.requests] == [f"bytes={KEPT}-", None]  # once more from zero, then no more
    assert files_under(tmp_path) == []


def test_kept_bytes_of_another_file_fail_the_checksum_then_come_whole(
    local_server: LocalServer, tmp_path: Path
) -> None:
    url, body = serve(local_server, "o.bin", 7)
    (tmp_path / "o.bin").write_bytes(b"\0" * KEPT)
    m = run(tmp_path, [FileConfig(url=url, continue_partial=True, checksum=f"sha256:{sha256(body)}")],
            max_segments=1)
    assert status_of(m, url) is DownloadStatus.COMPLETED
    assert [r.range for r in local_server.requests] == [f"bytes={KEPT}-", None]
    assert file_sha256(tmp_path / "o.bin") == sha256(body)


def test_the_command_continues_with_dash_c(local_server: LocalServer, tmp_path: Path) -> None:
    url, body = serve(local_server, "cli.bin", 8)
    (tmp_path / "cli.bin").write_bytes(body[:KEPT])
    done = run_cli(url, "-d", str(tmp_path), "-c", "--json", cwd=tmp_path)  # through the state file
    assert done.returncode == 0, done.stderr
    assert [r.range for r in local_server.requests] == [f"bytes={KEPT}-"]
    assert local_server.bytes_sent("/cli.bin") == SIZE - KEPT
    assert file_sha256(tmp_path / "cli.bin") == sha256(body)
    [record] = [json.loads(line) for line in done.stdout.splitlines()]
    assert (record["status"], record["bytes"], record["size"]) == ("completed", SIZE - KEPT, SIZE)


def test_the_command_fails_a_wrong_checksum_and_keeps_nothing_wrong(
    local_server: LocalServer, tmp_path: Path
) -> None:
    url, body = serve(local_server, "bad.bin", 9)
    (tmp_path / "bad.bin").write_bytes(body[:KEPT])
    done = run_cli(url, "-d", str(tmp_path), "--continue", "--no-state", "--checksum", f"sha256:{'0' * 64}",
                   cwd=tmp_path)
    assert done.returncode != 0
    assert not (tmp_path / "bad.bin").exists()


def test_an_input_line_turns_continue_on_for_its_file(local_server: LocalServer, tmp_path: Path) -> None:
    url, body = serve(local_server, "in.bin", 10)
    (tmp_path / "in.bin").write_bytes(body[:KEPT])
    listing = tmp_path / "list.txt"
    listing.write_text(f"{url}\n  continue=true\n")
    done = run_cli("-i", str(listing), "-d", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [r.range for r in local_server.requests] == [f"bytes={KEPT}-"]
    assert file_sha256(tmp_path / "in.bin") == sha256(body)
