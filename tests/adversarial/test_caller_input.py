"""Bad input from the caller: wrong types or values, an unwritable or missing folder, a full
disk.  A clear error at the right moment (construction or queueing for bad arguments; the
download's own FAILED status for the disk), never a half-written file under a final name, and
the rest of the batch goes on."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pydownloads import DownloadManager, DownloadStatus
from pydownloads.domain import FileConfig
from pydownloads.domain.errors import FileSystemError, InvalidArgumentError
from pydownloads.domain.retry import RetryConfig, RetryPolicy
from pydownloads.localserver import LocalServer
from tests.adversarial.conftest import FAST, Sandbox, final_only, mount_tmpfs, run_batch, unmount
from tests.adversarial.rawserver import RawServer, body, lying_length

URL = "http://127.0.0.1:9/f.bin"


# -- wrong types and values ---------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("url", None), ("url", 123), ("url", b"http://x/"), ("url", ""), ("url", "http://"), ("url", "http://[::1/x"),
    ("url", "http://host/a b"), ("url", "http://host/\x00"),
    ("priority", "1"), ("priority", 1.5), ("priority", True), ("priority", None),
    ("filename", ""), ("filename", "   "), ("filename", 123), ("filename", b"x"),
    ("destination_subdir", ""), ("destination_subdir", 5),
    ("headers", "x"), ("headers", {"A": 1}), ("headers", {1: "a"}), ("headers", {"A\r\nB": "x"}),
    ("headers", {"A": "x\r\nInjected: y"}), ("headers", {"": "x"}), ("headers", {"A": "x\x00"}),
    ("headers", {"A B": "x"}), ("headers", {"A:": "x"}),
    ("checksum", "md5"), ("checksum", "sha256:zz"), ("checksum", "rot13:abcd"), ("checksum", 5),
    ("expected_size", -1), ("expected_size", "5"), ("expected_size", True), ("expected_size", 1.5),
    ("segments", 0), ("segments", -1), ("segments", True), ("segments", "2"),
    ("rate_limit", 0), ("rate_limit", -5), ("rate_limit", math.nan), ("rate_limit", math.inf), ("rate_limit", "10"),
    ("rate_limit", True),
])
def test_file_config_refuses_bad_values(field: str, value: object) -> None:
    kwargs: dict[str, Any] = {"url": URL, field: value}
    url = kwargs.pop("url")
    with pytest.raises(InvalidArgumentError) as caught:
        FileConfig(url, **kwargs)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/x", "http://127.0.0.1:abc/x", "http://127.0.0.1:-1/x",
                                 "http://[::1]:80:80/x"])
def test_file_config_refuses_a_bad_port(url: str) -> None:
    with pytest.raises(InvalidArgumentError):
        FileConfig(url)


@pytest.mark.parametrize("kwargs", [
    {"max_retries": -1}, {"max_retries": "3"}, {"max_retries": True}, {"max_retries": 1.5}, {"max_retries": None},
    {"base_delay": -1}, {"base_delay": math.nan}, {"base_delay": math.inf}, {"base_delay": "1"},
    {"max_delay": math.inf}, {"base_delay": 2.0, "max_delay": 1.0}, {"policy": "aggressive"},
])
def test_retry_config_refuses_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        RetryConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [
    {"transient_status_codes": {"503"}}, {"transient_status_codes": {600}}, {"transient_status_codes": "503"},
    {"transient_status_codes": {True}}, {"transient_status_codes": {503}, "permanent_status_codes": {503}},
])
def test_retry_policy_refuses_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        RetryPolicy(**kwargs)


MANAGER_BAD_OPTIONS = [
    {"max_workers": 0}, {"max_workers": -1}, {"max_workers": True}, {"max_workers": "4"}, {"max_workers": 1.5},
    {"timeout": -1}, {"timeout": 0}, {"timeout": (1, 2, 3)}, {"timeout": "5"}, {"timeout": None},
    {"timeout": (1, None)}, {"timeout": math.nan}, {"timeout": math.inf},
    {"chunk_size": 0}, {"chunk_size": True}, {"cancel_grace": -1}, {"cancel_grace": math.nan},
    {"max_segments": 0}, {"min_segment_size": 0}, {"max_connections_per_host": 0}, {"rate_limit": 0},
    {"min_speed": -1}, {"min_speed_window": 0}, {"deadline": 0}, {"deadline": math.nan},
    {"headers": {"A": 1}}, {"headers": {"A": "x\r\nB: y"}}, {"proxies": {"http": 5}}, {"proxies": "http://p:1"},
    {"retry_config": "x"}, {"retry_config": {"max_retries": 3}}, {"session": "x"},
]


@pytest.mark.parametrize("options", MANAGER_BAD_OPTIONS, ids=lambda o: "-".join(f"{k}={v!r}" for k, v in o.items()))
def test_manager_refuses_bad_options_at_construction(tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        DownloadManager(download_dir=tmp_path, **options)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options", [{"tracker": "x"}, {"emitter": object()}, {"trust_env": "no"},
                                     {"progress": "no"}], ids=["tracker", "emitter", "trust_env", "progress"])
def test_manager_refuses_wrong_collaborators_at_construction(tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        DownloadManager(download_dir=tmp_path, **options).shutdown()


@pytest.mark.parametrize("items", [5, None, [5], [None], ["not a url"], ["ftp://x/y"], [b"http://x/"],
                                   [{"url": "http://x/"}]])
def test_add_to_queue_refuses_bad_items_and_queues_nothing(local_server: LocalServer, tmp_path: Path,
                                                            items: object) -> None:
    good = local_server.add_file("/good.bin", b"good")
    with DownloadManager(download_dir=tmp_path, **FAST) as manager:
        batch = [good, *items] if isinstance(items, list) else items
        with pytest.raises(InvalidArgumentError):
            manager.add_to_queue(batch)  # type: ignore[arg-type]
        assert manager.tracker.get_all_downloads() == {}
        assert manager.add_to_queue([good]) == 1  # the manager is still usable
    assert (tmp_path / "good.bin").read_bytes() == b"good"


# -- the folder ------------------------------------------------------------------------------------------


def test_missing_download_dir_is_created(local_server: LocalServer, tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b" / "c"
    url = local_server.add_file("/f.bin", b"data")
    with DownloadManager(download_dir=folder, **FAST) as manager:
        manager.add_to_queue([url])
    assert (folder / "f.bin").read_bytes() == b"data"


@pytest.mark.parametrize("shape", ["is-a-file", "below-a-file", "bad-type"])
def test_unusable_download_dir_fails_at_construction(tmp_path: Path, shape: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    folder: Any = {"is-a-file": afile, "below-a-file": afile / "sub", "bad-type": 123}[shape]
    with pytest.raises((FileSystemError, InvalidArgumentError)) as caught:
        DownloadManager(download_dir=folder, **FAST)
    assert str(caught.value)
    assert afile.read_text() == "x"


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "ro"
    folder.mkdir()
    mount_tmpfs(folder, "1m", read_only=True)
    try:
        yield folder
    finally:
        unmount(folder)


def test_read_only_folder_that_cannot_be_created_fails_at_construction(read_only_dir: Path) -> None:
    with pytest.raises(FileSystemError):
        DownloadManager(download_dir=read_only_dir / "downloads", **FAST)


def test_existing_read_only_folder_fails_at_construction(read_only_dir: Path) -> None:
    with pytest.raises(FileSystemError):
        DownloadManager(download_dir=read_only_dir, **FAST).shutdown()


def test_downloads_into_a_read_only_folder_fail_cleanly(local_server: LocalServer, read_only_dir: Path) -> None:
    # download_dir itself is writable (a read-only one is refused at construction, above);
    # its subfolder "ro" is not: those downloads fail, the others of the batch complete.
    root = read_only_dir.parent
    urls = [local_server.add_file(f"/f{n}.bin", b"data") for n in range(3)]
    fine = local_server.add_file("/fine.bin", b"fine")
    with DownloadManager(download_dir=root, **FAST) as manager:
        manager.add_to_queue([FileConfig(url, destination_subdir="ro") for url in urls] + [fine])
        manager.queue.join()
        infos = manager.tracker.get_all_downloads()
    assert len(infos) == 4
    for url in urls:
        assert infos[url].status is DownloadStatus.FAILED
        assert infos[url].error_type == "FileSystemError"
        assert infos[url].attempts == 1  # a read-only folder is not a transient failure
    assert infos[fine].status is DownloadStatus.COMPLETED
    assert os.listdir(read_only_dir) == []


# -- a full disk -----------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Sandbox]:
    """download_dir on a 2 MiB tmpfs (inside a sandbox whose surroundings are checked)."""
    parent = tmp_path / "parent"
    root = parent / "downloads"
    root.mkdir(parents=True)
    mount_tmpfs(root, "2m")
    box = Sandbox(parent, root)
    box.snapshot()
    try:
        yield box
        box.assert_contained()
    finally:
        unmount(root)


BIG = bytes(range(256)) * (5 * 4096)  # 5 MiB


@pytest.mark.parametrize("validators", [True, False], ids=["resumable", "plain"])
def test_full_disk_fails_the_big_file_and_the_batch_goes_on(
        local_server: LocalServer, small_disk: Sandbox, validators: bool) -> None:
    options: dict[str, Any] = {} if validators else {"etag": None, "last_modified": None}
    big = local_server.add_file("/big.bin", BIG, **options)
    small = local_server.add_file("/small.bin", b"small file")
    outcome = run_batch(small_disk, [FileConfig(big, priority=10), FileConfig(small, priority=1)], max_workers=1)
    assert outcome.finished
    info = outcome.assert_clean_failure(big, "FileSystemError")
    assert info.attempts == 1
    assert "space" in (info.error or "").lower()
    outcome.assert_exact(small, b"small file")
    assert final_only(small_disk) == ["small.bin"]


def test_full_disk_while_segments_are_written(local_server: LocalServer, small_disk: Sandbox) -> None:
    big = local_server.add_file("/big.bin", BIG)
    small = local_server.add_file("/small.bin", b"small file")
    outcome = run_batch(small_disk, [FileConfig(big, priority=10), FileConfig(small, priority=1)], max_workers=1,
                        max_segments=4, min_segment_size=256 << 10)
    assert outcome.finished
    outcome.assert_clean_failure(big, "FileSystemError")
    outcome.assert_exact(small, b"small file")
    assert final_only(small_disk) == ["small.bin"]


def test_lying_huge_length_does_not_fill_the_disk(raw_server: RawServer, small_disk: Sandbox) -> None:
    """A server announcing 1 TiB (with ranges) must not leave the disk full for the next file."""
    huge = raw_server.route("/huge.bin", lying_length(str(1 << 40), b"x" * 1000,
                                                      [("ETag", '"h"'), ("Accept-Ranges", "bytes")]))
    small = raw_server.route("/small.bin", body(b"small file"))
    outcome = run_batch(small_disk, [FileConfig(huge, priority=10), FileConfig(small, priority=1)], max_workers=1,
                        max_segments=4, min_segment_size=1 << 20)
    assert outcome.finished
    outcome.assert_clean_failure(huge)
    outcome.assert_exact(small, b"small file")
