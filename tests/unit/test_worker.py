"""DownloadWorker on its own, against mocked HTTP (responses): outcomes, events, retries."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import requests
import responses

from pydownloads import (
    DownloadStatus,
    DownloadTracker,
    HTTPStatusError,
    IncompleteDownloadError,
    InvalidArgumentError,
    RetryConfig,
)
from pydownloads.downloads import DownloadWorker, RetryHandler
from pydownloads.events import EventEmitter

URL = "http://files.test/data/report.bin"
BODY = bytes(range(256)) * 1000


def make_worker(**kwargs: object) -> DownloadWorker:
    retry = RetryHandler(RetryConfig(max_retries=2, base_delay=0.0, max_delay=0.01), rng=lambda: 0.0)
    return DownloadWorker(client=requests.Session(), retry_handler=retry, chunk_size=64 * 1024, **kwargs)  # type: ignore[arg-type]


def record_events(emitter: EventEmitter) -> list[object]:
    seen: list[object] = []
    for name in emitter.names:
        emitter.on(name, seen.append)
    return seen


@responses.activate
def test_download_writes_exact_bytes_and_reports_each_step(tmp_path: Path) -> None:
    responses.get(URL, body=BODY, auto_calculate_content_length=True)
    tracker = DownloadTracker()
    worker = make_worker(tracker=tracker)
    seen = record_events(worker.emitter)

    path = worker.download(URL, tmp_path / "out.bin")

    assert path == tmp_path / "out.bin"
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(BODY).digest()
    assert not (tmp_path / "out.bin.part").exists()
    kinds = [type(event).__name__ for event in seen]
    assert kinds[0] == "DownloadStarted" and kinds[-1] == "DownloadCompleted"
    assert set(kinds[1:-1]) == {"ChunkDownloaded"}
    assert sum(e.bytes_downloaded for e in seen[1:-1]) == len(BODY)  # type: ignore[attr-defined]
    assert seen[-2].total_downloaded == len(BODY)  # type: ignore[attr-defined]
    info = tracker.get_download(URL)
    assert info is not None and info.status is DownloadStatus.COMPLETED
    assert info.bytes_downloaded == len(BODY) and info.total_bytes == len(BODY) and info.attempts == 1


@responses.activate
def test_sends_identity_encoding_and_per_file_headers(tmp_path: Path) -> None:
    responses.get(URL, body=b"x")
    make_worker().download(URL, tmp_path / "x", headers={"X-Token": "abc"})
    sent = responses.calls[0].request.headers
    assert sent["Accept-Encoding"] == "identity" and sent["X-Token"] == "abc"


@responses.activate
def test_folder_destination_uses_content_disposition_then_url(tmp_path: Path) -> None:
    responses.get(URL, body=b"a", headers={"Content-Disposition": "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"})
    responses.get("http://files.test/plain/name%20with%20space.txt", body=b"b")
    worker = make_worker()
    assert worker.download(URL, tmp_path).name == "résumé.txt"
    assert worker.download("http://files.test/plain/name%20with%20space.txt", tmp_path).name == "name with space.txt"


@responses.activate
def test_traversal_in_content_disposition_stays_in_folder(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    responses.get(URL, body=b"evil", headers={"Content-Disposition": 'attachment; filename="../../escape.txt"'})
    path = make_worker().download(URL, inner)
    assert path == inner / "escape.txt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inner"]


@responses.activate
def test_permanent_status_fails_at_once_and_leaves_nothing(tmp_path: Path) -> None:
    responses.get(URL, status=404)
    tracker = DownloadTracker()
    worker = make_worker(tracker=tracker)
    seen = record_events(worker.emitter)
    with pytest.raises(HTTPStatusError) as caught:
        worker.download(URL, tmp_path / "out.bin")
    assert caught.value.status == 404
    assert len(responses.calls) == 1
    assert list(tmp_path.iterdir()) == []
    info = tracker.get_download(URL)
    assert info is not None and info.status is DownloadStatus.FAILED and info.error_type == "HTTPStatusError"
    assert [type(e).__name__ for e in seen] == ["DownloadFailed"]


@responses.activate
def test_transient_status_is_retried_with_events_and_attempts(tmp_path: Path) -> None:
    responses.get(URL, status=503, headers={"Retry-After": "120"})
    responses.get(URL, status=500)
    responses.get(URL, body=BODY)
    tracker = DownloadTracker()
    worker = make_worker(tracker=tracker)
    seen = record_events(worker.emitter)

    worker.download(URL, tmp_path / "out.bin")

    retries = [e for e in seen if type(e).__name__ == "DownloadRetrying"]
    assert [r.attempt for r in retries] == [2, 3]  # type: ignore[attr-defined]
    assert retries[0].delay == pytest.approx(0.01)  # type: ignore[attr-defined]  # Retry-After capped
    info = tracker.get_download(URL)
    assert info is not None and info.attempts == 3 and info.status is DownloadStatus.COMPLETED


@responses.activate
def test_retries_run_out(tmp_path: Path) -> None:
    for _ in range(5):
        responses.get(URL, status=502)
    with pytest.raises(HTTPStatusError):
        make_worker().download(URL, tmp_path / "out.bin")
    assert len(responses.calls) == 3  # max_retries=2: three attempts


@responses.activate
def test_short_body_is_an_incomplete_download_never_a_file(tmp_path: Path) -> None:
    for _ in range(3):
        responses.get(URL, body=b"x" * 10, headers={"Content-Length": "100"}, auto_calculate_content_length=False)
    with pytest.raises(IncompleteDownloadError) as caught:
        make_worker().download(URL, tmp_path / "out.bin")
    assert (caught.value.expected, caught.value.received) == (100, 10)
    assert list(tmp_path.iterdir()) == []


@responses.activate
def test_a_raising_handler_never_breaks_a_download(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    responses.get(URL, body=BODY)
    worker = make_worker()
    worker.emitter.on("worker.chunk_downloaded", lambda event: 1 / 0)
    assert worker.download(URL, tmp_path / "out.bin").read_bytes() == BODY
    assert "ZeroDivisionError" in caplog.text


def test_bad_arguments_are_refused_before_any_request(tmp_path: Path) -> None:
    worker = make_worker()
    with pytest.raises(InvalidArgumentError):
        worker.download("ftp://files.test/x", tmp_path / "x")
    with pytest.raises(InvalidArgumentError):
        DownloadWorker(client="not a session")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        DownloadWorker(timeout=-1)
    with pytest.raises(InvalidArgumentError):
        DownloadWorker(chunk_size=0)
