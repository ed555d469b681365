"""Credentials are redacted where text leaves the program: errors, events and logs, once."""

from __future__ import annotations

import logging
import pickle

import pytest

from pydownloads.domain.errors import DestinationConflictError, HTTPStatusError, TransferError
from pydownloads.domain.redact import get_logger, redact_text, redact_url
from pydownloads.events.types import ChunkDownloaded, DownloadFailed, DownloadRetrying

SECRET_URL = "https://alice:s3cr3t@example.com/a.iso"
SHOWN = "https://***@example.com/a.iso"


def test_redact_url_and_text() -> None:
    assert redact_url(SECRET_URL) == SHOWN
    assert redact_url("https://example.com/a@b.iso") == "https://example.com/a@b.iso"
    assert redact_text(f"from {SECRET_URL} and ftp://u:p@h/x") == f"from {SHOWN} and ftp://***@h/x"
    plain = "no credentials here"
    assert redact_text(plain) is plain


def test_an_error_redacts_its_message_and_urls_whoever_raises_it() -> None:
    error = HTTPStatusError(f"HTTP 404 from {SECRET_URL}", status=404, url=SECRET_URL)
    assert str(error) == f"HTTP 404 from {SHOWN}"
    assert error.url == SHOWN
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.url, again.status) == (str(error), SHOWN, 404)
    conflict = DestinationConflictError("taken", path="/d/a.iso", other_url=SECRET_URL, url=SECRET_URL)
    assert (conflict.other_url, conflict.url) == (SHOWN, SHOWN)


def test_events_redact_their_url_and_text() -> None:
    assert ChunkDownloaded(url=SECRET_URL, bytes_downloaded=1, total_downloaded=1, total_bytes=None).url == SHOWN
    failed = DownloadFailed(url=SECRET_URL, error=f"HTTP 404 from {SECRET_URL}", error_type="X", attempts=1)
    assert (failed.url, failed.error) == (SHOWN, f"HTTP 404 from {SHOWN}")
    retrying = DownloadRetrying(url=SECRET_URL, attempt=2, delay=0.0, reason=f"reset by {SECRET_URL}")
    assert retrying.reason == f"reset by {SHOWN}"


def test_our_loggers_redact_every_record(caplog: pytest.LogCaptureFixture) -> None:
    logger = get_logger("pydownloads.test_redact")
    assert get_logger("pydownloads.test_redact").filters == logger.filters  # the filter is added once
    with caplog.at_level(logging.INFO, logger="pydownloads.test_redact"):
        logger.info("fetching %s: %s", SECRET_URL, OSError(f"refused by {SECRET_URL}"))
        logger.info(f"inline {SECRET_URL}")
    assert "s3cr3t" not in caplog.text
    assert caplog.text.count(SHOWN) == 3


def test_a_transport_error_quoting_a_url_is_redacted() -> None:
    error = TransferError(f"connection to {SECRET_URL} failed: (Caused by {SECRET_URL!r})", url=SECRET_URL)
    assert "s3cr3t" not in f"{error} {error!r} {error.url}"
