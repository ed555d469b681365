"""Re-download only if changed (If-None-Match / If-Modified-Since, 304), and what to do with a
file already there."""

from __future__ import annotations

import os
from pathlib import Path

from pydownloads import DownloadManager, DownloadStatus, FileConfig
from pydownloads.localserver import LocalServer
from tests.integration.helpers import payload


def fetch(out: Path, files: list[FileConfig | str], **options: object) -> DownloadManager:
    with DownloadManager(out, **options) as m:  # type: ignore[arg-type]
        m.add_to_queue(files)
        m.queue.join()
    return m


def test_an_unchanged_file_costs_a_304_and_no_body(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(200_000)
    url = local_server.add_file("/same.bin", body, etag='"v1"')
    config = FileConfig(url=url, if_changed=True)
    fetch(tmp_path, [config])
    assert os.stat(tmp_path / "same.bin").st_mtime == 1_700_000_000  # the server's Last-Modified
    local_server.reset_stats()

    second = fetch(tmp_path, [config])

    [request] = local_server.requests
    assert request.status == 304 and local_server.bytes_sent("/same.bin") == 0
    assert "If-Modified-Since" in request.headers
    info = second.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.COMPLETED and info.unchanged
    assert info.bytes_downloaded == 0 and (tmp_path / "same.bin").read_bytes() == body


def test_the_etag_kept_with_the_file_is_asked_first(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/tagged.bin", b"one", etag='"v1"')
    fetch(tmp_path, [FileConfig(url=url, if_changed=True)])
    try:
        kept = os.getxattr(tmp_path / "tagged.bin", "user.pydownloads.etag")
    except OSError:  # this file system has no extended attributes: the time alone decides
        return
    assert kept == b'"v1"'
    local_server.reset_stats()
    fetch(tmp_path, [FileConfig(url=url, if_changed=True)])
    assert local_server.requests[0].headers["If-None-Match"] == '"v1"'


def test_a_changed_file_is_downloaded_again(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/news.txt", b"old news", etag='"a"', last_modified=1_700_000_000)
    fetch(tmp_path, [FileConfig(url=url, if_changed=True)])
    local_server.add_file("/news.txt", b"fresh news", etag='"b"', last_modified=1_800_000_000)
    m = fetch(tmp_path, [FileConfig(url=url, if_changed=True)])
    info = m.tracker.get_download(url)
    assert info is not None and not info.unchanged
    assert (tmp_path / "news.txt").read_bytes() == b"fresh news"


def test_existing_files_are_replaced_skipped_or_renamed(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.add_file("/doc.txt", b"from the server")
    (tmp_path / "doc.txt").write_bytes(b"mine")

    m = fetch(tmp_path, [url], on_existing="skip")
    assert local_server.request_count("/doc.txt") == 0 and (tmp_path / "doc.txt").read_bytes() == b"mine"
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.COMPLETED and info.unchanged

    fetch(tmp_path, [url], on_existing="rename")
    assert (tmp_path / "doc.txt").read_bytes() == b"mine"
    assert (tmp_path / "doc (1).txt").read_bytes() == b"from the server"

    fetch(tmp_path, [url])  # the default: replaced, atomically
    assert (tmp_path / "doc.txt").read_bytes() == b"from the server"
