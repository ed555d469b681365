"""DownloadState: a download's progress between attempts, and the decisions taken on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pydownloads.domain.errors import (
    DownloadError,
    HTTPStatusError,
    IncompleteDownloadError,
    RedirectError,
    TLSError,
    TransferError,
)
from pydownloads.downloads.job import DownloadJob, DownloadRequest
from pydownloads.downloads.retry import RetryHandler
from pydownloads.downloads.state import UNCAPPED, DownloadState
from pydownloads.infrastructure.sidecar import ResumeState

A, B, C = "http://a.test/f", "http://b.test/f", "http://c.test/f"


def _resume(source: str = A) -> ResumeState:
    return ResumeState(url=A, total=100, etag='"x"', last_modified=None, source=source)


def test_a_job_starts_with_a_fresh_state() -> None:
    job = DownloadJob(DownloadRequest(url=A, root=Path("."), mirrors=(B,), segments=3))
    state = job.state
    assert (state.attempt, state.source, state.resume, state.claimed_path) == (0, A, None, None)
    assert (state.lane_cap, state.unchanged, state.started_at) == (3, False, None)
    assert DownloadState((A,)).lane_cap == UNCAPPED


def test_both_retry_layers_count_in_one_attempt_number() -> None:
    state = DownloadState((A,))
    calls = 0

    def operation() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            assert state.attempt == 1
            assert state.retry_in_transport() == 2  # urllib3 retried once inside the first attempt
            raise TransferError("reset")
        return "done"

    handler = RetryHandler(rng=lambda: 0.0)
    assert handler.execute_with_retry(operation, A, attempts=state.attempts, on_retry=lambda *_: None) == "done"
    assert state.attempt == 3


@pytest.mark.parametrize(("attempt", "left"), [(1, 3), (2, 2), (4, 0), (9, 0)])
def test_transport_retries_draw_on_what_is_left_of_the_budget(attempt: int, left: int) -> None:
    state = DownloadState((A,))
    for _ in range(attempt):
        state.attempts.begin()
    assert state.transport_retries_left(3) == left


def test_with_mirrors_transport_retries_are_left_to_the_next_source() -> None:
    state = DownloadState((A, B))
    state.attempts.begin()
    assert state.transport_retries_left(3) == 0


def test_the_clock_starts_once() -> None:
    state = DownloadState((A,))
    state.start_clock(10.0)
    state.start_clock(20.0)
    assert state.started_at == 10.0


def test_without_mirrors_there_is_no_other_source() -> None:
    state = DownloadState((A,))
    assert state.switch_source(HTTPStatusError("gone", status=404)) is None
    assert state.source == A and state.other_sources() == ()


def test_sources_go_round_and_a_source_failed_for_good_is_not_asked_again() -> None:
    state = DownloadState((A, B, C))
    assert state.other_sources() == (B, C)
    assert state.switch_source(TransferError("reset")) == B  # transient: A stays usable
    assert state.switch_source(HTTPStatusError("forbidden", status=403)) == C  # B is dead
    assert state.other_sources() == (A,)
    assert state.switch_source(IncompleteDownloadError("short", expected=2, received=1)) == A  # round
    assert state.switch_source(TLSError("bad certificate")) == C
    assert state.switch_source(RedirectError("loop")) is None  # every source failed for good
    assert state.source == C


@pytest.mark.parametrize(("error", "dead"), [
    (HTTPStatusError("x", status=404), True), (HTTPStatusError("x", status=408), False),
    (HTTPStatusError("x", status=429), False), (HTTPStatusError("x", status=503), False),
    (TLSError("x"), True), (RedirectError("x"), True), (TransferError("x"), False), (DownloadError("x"), False),
])
def test_which_failures_end_a_source(error: DownloadError, dead: bool) -> None:
    state = DownloadState((A, B))
    assert state.switch_source(error) == B
    assert state.other_sources() == (() if dead else (A,))


def test_resume_state_is_taken_dropped_and_finished() -> None:
    state, saved = DownloadState((A,)), _resume()
    assert state.restart_from_zero() is None  # nothing claimed yet
    state.resume_from(saved)
    state.claimed(Path("/tmp/f"))
    assert state.resume is saved
    assert state.restart_from_zero() == Path("/tmp/f") and state.resume is None
    state.resume_from(saved)
    assert state.finish() is saved and state.resume is None and state.finish() is None


def test_resuming_on_another_mirror_takes_its_validators() -> None:
    state, saved = DownloadState((A, B)), _resume()
    state.resume_on(B, ('"y"', None))  # nothing to resume: nothing changes
    state.resume_from(saved)
    state.resume_on(B, (None, "Tue, 01 Dec 2026 10:00:00 GMT"))
    assert (saved.source, saved.etag, saved.last_modified) == (B, None, "Tue, 01 Dec 2026 10:00:00 GMT")


def test_a_previous_run_is_looked_for_once() -> None:
    state = DownloadState((A,))
    assert state.look_for_saved_state() is True
    assert state.look_for_saved_state() is False


def test_the_second_verification_failure_is_final() -> None:
    state = DownloadState((A,))
    assert state.note_verify_failure() is False
    assert state.note_verify_failure() is True


def test_lanes_halve_after_a_failure_and_drop_to_one_without_ranges() -> None:
    state = DownloadState((A,), segments=8)
    state.fewer_lanes(8)
    assert state.lane_cap == 4
    state.fewer_lanes(1)
    assert state.lane_cap == 1
    other = DownloadState((A,))
    other.one_lane()
    assert other.lane_cap == 1


def test_an_unchanged_file_is_remembered() -> None:
    state = DownloadState((A,))
    state.mark_unchanged()
    assert state.unchanged
