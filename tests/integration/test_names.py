"""Names within one run, against a real local server: folder URLs, contested names, rename.

The first download of each test is held by the server before it sends a byte, so that the
later one finishes first: who keeps a contested name must not depend on that timing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pydownloads import DownloadManager, DownloadStatus, FileConfig, RetryConfig
from pydownloads.domain.models import DownloadInfo
from pydownloads.localserver import LocalServer
from tests.integration.clirun import run_cli
from tests.integration.helpers import files_under
from tests.support import wait_until

FAST_RETRY = RetryConfig(max_retries=1, base_delay=0.01, max_delay=0.05)
FIRST, SECOND, THIRD = b"first body", b"second body", b"third body"


def _manager(tmp_path: Path, *, state: bool, **kwargs: object) -> DownloadManager:
    if state:
        kwargs["state_file"] = tmp_path / "state.db"
    return DownloadManager(tmp_path / "out", max_workers=3, retry_config=FAST_RETRY,  # type: ignore[arg-type]
                           timeout=(5.0, 5.0), **kwargs)


def _final(m: DownloadManager, url: str) -> DownloadInfo:
    """``url``'s record once it is final (bounded wait: the held download cannot end first)."""
    assert wait_until(lambda: (info := m.tracker.get_download(url)) is not None and info.status.is_final)
    info = m.tracker.get_download(url)
    assert info is not None
    return info


@contextmanager
def _held(server: LocalServer, path: str) -> Iterator[None]:
    server.hold(path)
    try:
        yield
    finally:
        server.release(path)


def _names(tmp_path: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in files_under(tmp_path / "out")}


@pytest.mark.parametrize("state", [False, True], ids=["memory", "state-file"])
def test_two_folder_urls_save_as_index_html_then_index_1_in_input_order(
    local_server: LocalServer, tmp_path: Path, state: bool
) -> None:
    first, second = local_server.add_file("/", FIRST), local_server.add_file("/files/", SECOND)
    with _manager(tmp_path, state=state, on_existing="rename") as m:
        with _held(local_server, "/"):
            m.add_to_queue([first, second])
            later = _final(m, second)  # finished while the first is still held
            assert later.status is DownloadStatus.COMPLETED and later.path is not None
            assert later.path.name == "index (1).html"
        m.join(timeout=20)
    assert m.tracker.get_download(first).path.name == "index.html"  # type: ignore[union-attr]
    assert _names(tmp_path) == {"index.html": FIRST, "index (1).html": SECOND}


@pytest.mark.parametrize("state", [False, True], ids=["memory", "state-file"])
def test_without_rename_the_later_one_in_input_order_fails_whatever_the_timing(
    local_server: LocalServer, tmp_path: Path, state: bool
) -> None:
    first, second = local_server.add_file("/a/data.csv", FIRST), local_server.add_file("/b/data.csv", SECOND)
    with _manager(tmp_path, state=state) as m:
        with _held(local_server, "/a/data.csv"):
            m.add_to_queue([first, second])
            later = _final(m, second)
            assert (later.status, later.error_type) == (DownloadStatus.FAILED, "DestinationConflictError")
            assert later.error is not None and first in later.error
        m.join(timeout=20)
    assert m.tracker.get_download(first).status is DownloadStatus.COMPLETED  # type: ignore[union-attr]
    assert _names(tmp_path) == {"data.csv": FIRST}
    assert local_server.request_count("/b/data.csv") == 0  # refused before asking the server


@pytest.mark.parametrize("state", [False, True], ids=["memory", "state-file"])
def test_priority_decides_before_input_order(local_server: LocalServer, tmp_path: Path, state: bool) -> None:
    low, high = local_server.add_file("/a/", FIRST), local_server.add_file("/b/", SECOND)
    with _manager(tmp_path, state=state, on_existing="rename") as m:
        with _held(local_server, "/b/"):
            m.add_to_queue([FileConfig(url=low), FileConfig(url=high, priority=5)])
            assert _final(m, low).path.name == "index (1).html"  # type: ignore[union-attr]
        m.join(timeout=20)
    assert _names(tmp_path) == {"index.html": SECOND, "index (1).html": FIRST}


def test_rename_numbers_in_input_order_around_a_file_already_there(
    local_server: LocalServer, tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.pdf").write_bytes(b"kept")
    urls = [local_server.add_file(f"/{n}/report.pdf", body) for n, body in enumerate((FIRST, SECOND, THIRD))]
    with _manager(tmp_path, state=False, on_existing="rename") as m:
        with _held(local_server, "/0/report.pdf"):
            m.add_to_queue(urls)
            assert _final(m, urls[1]).path.name == "report (2).pdf"  # type: ignore[union-attr]
            assert _final(m, urls[2]).path.name == "report (3).pdf"  # type: ignore[union-attr]
        m.join(timeout=20)
    assert _names(tmp_path) == {"report.pdf": b"kept", "report (1).pdf": FIRST, "report (2).pdf": SECOND,
                                "report (3).pdf": THIRD}


def test_a_content_disposition_name_goes_to_the_first_response_then_rename_numbers(
    local_server: LocalServer, tmp_path: Path
) -> None:
    named = 'attachment; filename="report.pdf"'
    first = local_server.add_file("/one", FIRST, content_disposition=named)
    second = local_server.add_file("/two", SECOND, content_disposition=named)
    with _manager(tmp_path, state=False, on_existing="rename") as m:
        with _held(local_server, "/one"):
            m.add_to_queue([first, second])
            assert _final(m, second).path.name == "report.pdf"  # type: ignore[union-attr]
        m.join(timeout=20)
    assert m.tracker.get_download(first).status is DownloadStatus.COMPLETED  # type: ignore[union-attr]
    assert _names(tmp_path) == {"report.pdf": SECOND, "report (1).pdf": FIRST}


def test_the_command_names_two_folder_urls_like_wget_with_rename_and_refuses_the_later_without(
    local_server: LocalServer, tmp_path: Path
) -> None:
    first, second = local_server.add_file("/", FIRST), local_server.add_file("/files/", SECOND)
    renamed = run_cli(first, second, "--on-existing", "rename", "-d", "out", cwd=tmp_path)
    assert renamed.returncode == 0, renamed.stderr
    saved = {name: body for name, body in _names(tmp_path).items() if name != ".pydownloads-state.db"}
    assert saved == {"index.html": FIRST, "index (1).html": SECOND}
    refused = run_cli(first, second, "--no-state", "--json", "-d", "again", cwd=tmp_path)
    assert refused.returncode == 1, refused.stderr
    records = [json.loads(line) for line in refused.stdout.splitlines()]
    assert [(r["status"], r["error_type"]) for r in records] == [
        ("completed", None), ("failed", "DestinationConflictError")]
    assert (tmp_path / "again" / "index.html").read_bytes() == FIRST
