"""Re-download only if changed (If-None-Match / If-Modified-Since, 304), and what to do with a
file already there."""

from __future__ import annotations

import email.utils
import os
from pathlib import Path

import pytest

from pydownloads import DownloadManager, DownloadStatus, FileConfig, RetryConfig
from pydownloads.localserver import DEFAULT_LAST_MODIFIED, LocalServer, ResetAfter
from tests.integration.helpers import payload, sha256


def fetch(out: Path, files: list[FileConfig | str], **options: object) -> DownloadManager:
    with DownloadManager(out, **options) as m:  # type: ignore[arg-type]
        m.add_to_queue(files)
        m.queue.join()
    return m


def test_an_unchanged_file_costs_a_304_and_no_body(local_server: LocalServer, tmp_path: Path) -> None:
    if not has_xattrs(tmp_path):  # then nothing vouches for the local file: it is fetched again
        pytest.skip("this file system has no extended attributes")
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


def truncate_keeping_time(path: Path, size: int) -> None:
    """Cut ``path`` short and put its time back: only its size tells it changed."""
    info = path.stat()
    os.truncate(path, size)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


@pytest.mark.parametrize("with_checksum", [False, True])
def test_a_truncated_local_file_is_fetched_again_whatever_a_304_says(
    local_server: LocalServer, tmp_path: Path, with_checksum: bool
) -> None:
    body = payload(300_000)
    url = local_server.add_file("/cut.bin", body, etag='"v1"')
    config = FileConfig(url=url, if_changed=True, checksum=f"sha256:{sha256(body)}" if with_checksum else None)
    fetch(tmp_path, [config])
    truncate_keeping_time(tmp_path / "cut.bin", 1_000)
    local_server.reset_stats()

    m = fetch(tmp_path, [config])

    [request] = local_server.requests
    assert request.status == 200  # asked unconditionally: the local file is not the one recorded
    assert "If-None-Match" not in request.headers and "If-Modified-Since" not in request.headers
    assert (tmp_path / "cut.bin").read_bytes() == body
    info = m.tracker.get_download(url)
    assert info is not None and info.status is DownloadStatus.COMPLETED and not info.unchanged


def test_a_local_file_changed_in_place_fails_its_checksum_and_is_fetched_again(
    local_server: LocalServer, tmp_path: Path
) -> None:
    body = payload(300_000)
    url = local_server.add_file("/edited.bin", body, etag='"v1"')
    config = FileConfig(url=url, if_changed=True, checksum=f"sha256:{sha256(body)}")
    fetch(tmp_path, [config])
    path = tmp_path / "edited.bin"
    info = path.stat()
    with open(path, "r+b") as file:  # same size, same time: only the checksum tells
        file.write(b"\0" * 1_000)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    local_server.reset_stats()

    fetch(tmp_path, [config])

    assert [r.status for r in local_server.requests] == [200]
    assert path.read_bytes() == body


def test_an_intact_file_with_its_checksum_still_costs_a_304(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(300_000)
    url = local_server.add_file("/kept.bin", body, etag='"v1"')
    config = FileConfig(url=url, if_changed=True, checksum=f"sha256:{sha256(body)}")
    fetch(tmp_path, [config])
    local_server.reset_stats()
    m = fetch(tmp_path, [config])
    assert [r.status for r in local_server.requests] == [304]
    info = m.tracker.get_download(url)
    assert info is not None and info.unchanged and (tmp_path / "kept.bin").read_bytes() == body


def test_a_weak_etag_is_asked_with_if_none_match(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(300_000)
    url = local_server.add_file("/weak.bin", body, etag='W/"w1"')
    config = FileConfig(url=url, if_changed=True)
    if not has_xattrs(tmp_path):
        pytest.skip("this file system has no extended attributes")
    fetch(tmp_path, [config])
    assert os.getxattr(tmp_path / "weak.bin", "user.pydownloads.etag") == b'W/"w1"'
    local_server.reset_stats()

    m = fetch(tmp_path, [config])

    [request] = local_server.requests
    assert request.headers["If-None-Match"] == 'W/"w1"' and request.status == 304
    info = m.tracker.get_download(url)
    assert info is not None and info.unchanged and (tmp_path / "weak.bin").read_bytes() == body


def test_a_weak_etag_never_goes_in_if_range(local_server: LocalServer, tmp_path: Path) -> None:
    body = payload(1_000_000)
    url = local_server.add_file("/weak-r.bin", body, etag='W/"w1"')  # and the default Last-Modified
    local_server.add_faults("/weak-r.bin", ResetAfter(300_000))
    with DownloadManager(tmp_path, max_segments=1, retry_config=RetryConfig(max_retries=2, base_delay=0.01)) as m:
        m.add_to_queue([FileConfig(url=url, if_changed=True)])
        m.queue.join()
    first, second = local_server.requests
    assert first.range is None and second.range is not None
    assert second.headers["If-Range"] == email.utils.formatdate(DEFAULT_LAST_MODIFIED, usegmt=True)
    assert (tmp_path / "weak-r.bin").read_bytes() == body


def has_xattrs(folder: Path) -> bool:
    probe = folder / "probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
    except (OSError, AttributeError):
        return False
    finally:
        probe.unlink()
    return True
