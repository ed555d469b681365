"""Contained: nothing is created or changed outside download_dir, whatever the URL, the
Content-Disposition, a redirect, the caller's filename or destination_subdir say.

The ``sandbox`` fixture checks, after every test, that the folder around download_dir (with
its canary files) is exactly as it was.
"""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import pytest

from pydownloads import DownloadManager, DownloadStatus
from pydownloads.domain import FileConfig
from pydownloads.domain.errors import InvalidArgumentError
from tests.adversarial.conftest import FAST, Sandbox, final_only, run_batch
from tests.adversarial.rawserver import RawServer, body, lying_length, redirect

DATA = b"payload-" * 64
RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(10)} | {f"LPT{i}" for i in range(10)}


def _assert_safe_file(sandbox: Sandbox, path: Path) -> None:
    """One plain file directly in its folder below download_dir, with a harmless name."""
    root = sandbox.root.resolve()
    assert root == path.resolve().parent or root in path.resolve().parents
    assert not path.is_symlink()
    name = path.name
    assert name not in (".", "..") and "/" not in name and "\\" not in name
    assert not any(unicodedata.category(ch) == "Cc" for ch in name)
    assert len(name.encode("utf-8")) <= 255
    assert name.split(".")[0].rstrip(" ").upper() not in RESERVED


HOSTILE_DISPOSITIONS = [
    'attachment; filename="../../escaped.txt"',
    'attachment; filename="../canary.txt"',
    'attachment; filename="/etc/passwd"',
    'attachment; filename="{parent}/canary.txt"',
    'attachment; filename="..\\\\..\\\\escaped.txt"',
    'attachment; filename="C:\\\\Windows\\\\escaped.txt"',
    "attachment; filename*=UTF-8''..%2F..%2Fescaped.txt",
    "attachment; filename*=UTF-8''%2e%2e%2f%2e%2e%2fescaped.txt",
    "attachment; filename*=UTF-8''%252e%252e%252fescaped.txt",
    "attachment; filename*=UTF-8''..%c0%af..%c0%afescaped.txt",
    "attachment; filename*=UTF-8''%EF%BC%8E%EF%BC%8E%EF%BC%8Fescaped.txt",  # fullwidth ../
    "attachment; filename*=UTF-8''evil%E2%80%AEtxt.exe",  # right-to-left override
    'attachment; filename=".."',
    'attachment; filename="."',
    'attachment; filename=""',
    'attachment; filename="  ..  "',
    'attachment; filename="a\tb\x1b[31mc.txt"',
    'attachment; filename="CON"',
    'attachment; filename="nul.tar.gz"',
    'attachment; filename="COM1 .txt"',
    'attachment; filename="' + "a" * 400 + '.txt"',
    "attachment; filename*=UTF-8''" + "%E2%82%AC" * 200 + ".txt",
    'attachment; filename="sub/../../escaped.txt"; filename*=UTF-8\'\'..%2F..%2F..%2Fx',
    "attachment; filename*=utf-16''%FF%FE%2E%00%2E%00%2F%00x%00",
    'attachment; filename="~/.bashrc"',
    'attachment; filename="$HOME"',
]


@pytest.mark.parametrize("disposition", HOSTILE_DISPOSITIONS)
def test_hostile_content_disposition_lands_inside(
        raw_server: RawServer, sandbox: Sandbox, disposition: str) -> None:
    value = disposition.replace("{parent}", str(sandbox.parent))
    url = raw_server.route("/dir/file.bin", body(DATA, [("Content-Disposition", value)]))
    outcome = run_batch(sandbox, [url])
    path = outcome.assert_exact(url, DATA)
    _assert_safe_file(sandbox, path)
    assert path.parent == sandbox.root.resolve() or path.parent == sandbox.root


@pytest.mark.parametrize("disposition", ["attachment; filename*=unicode_escape''%5Cud800.txt",
                                         "attachment; filename*=undefined''%41"])
def test_hostile_charset_in_content_disposition_falls_back_to_a_safe_name(
        raw_server: RawServer, sandbox: Sandbox, disposition: str) -> None:
    url = raw_server.route("/dir/file.bin", body(DATA, [("Content-Disposition", disposition)]))
    outcome = run_batch(sandbox, [url])
    path = outcome.assert_exact(url, DATA)
    _assert_safe_file(sandbox, path)


HOSTILE_PATHS = [
    "/%2e%2e%2f%2e%2e%2fescaped.txt",
    "/..%2f..%2fescaped.txt",
    "/%252e%252e%252fescaped.txt",
    "/a/..%5c..%5cescaped.txt",
    "/%2e%2e",
    "/%2e",
    "/%00",
    "/x%00.txt",
    "/CON",
    "/aux.c",
    "/%E2%80%AEcod.exe",
    "/" + "b" * 300 + ".bin",
    "/%C0%AE%C0%AE%C0%AFescaped",
    "/%ff%fe.bin",
    "/dir/",
    "/",
    "/%20%20.%20",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_url_path_lands_inside(raw_server: RawServer, sandbox: Sandbox, path: str) -> None:
    raw_server.route("*", body(DATA))
    url = raw_server.url(path)
    outcome = run_batch(sandbox, [url])
    saved = outcome.assert_exact(url, DATA)
    _assert_safe_file(sandbox, saved)


@pytest.mark.parametrize("location", ["/../../../escaped.txt", "/%2e%2e/%2e%2e/escaped.txt",
                                      "http://127.0.0.1:{port}/..%2f..%2fescaped.txt", "//127.0.0.1:{port}/../x"])
def test_redirect_location_cannot_name_the_file_outside(
        raw_server: RawServer, sandbox: Sandbox, location: str) -> None:
    raw_server.route("*", body(DATA))
    url = raw_server.route("/start.bin", redirect(location.format(port=raw_server.port)))
    outcome = run_batch(sandbox, [url])
    saved = outcome.assert_exact(url, DATA)
    _assert_safe_file(sandbox, saved)


@pytest.mark.parametrize("filename", ["../../escaped.txt", "/etc/passwd", "..\\..\\x.txt", "C:\\x.txt",
                                      "a\x00b.txt", "CON", "x" * 300, "\u202eexe.txt", "%2e%2e%2fx"])
def test_callers_filename_is_reduced_to_one_component(
        raw_server: RawServer, sandbox: Sandbox, filename: str) -> None:
    url = raw_server.route("/f.bin", body(DATA))
    outcome = run_batch(sandbox, [FileConfig(url, filename=filename)])
    saved = outcome.assert_exact(url, DATA)
    _assert_safe_file(sandbox, saved)
    assert saved.parent == sandbox.root


@pytest.mark.parametrize("subdir", ["..", "../x", "a/../../x", "/abs", "\\abs", "C:x", "c:\\x", "a/ .. /b",
                                    "a/\t..", "...", ". .", "//server/share", "a\\..\\..\\x"])
def test_escaping_destination_subdir_is_refused_before_anything_starts(
        raw_server: RawServer, sandbox: Sandbox, subdir: str) -> None:
    url = raw_server.route("/f.bin", body(DATA))
    good = raw_server.route("/good.bin", body(DATA))
    with DownloadManager(download_dir=sandbox.root, **FAST) as manager:
        with pytest.raises(InvalidArgumentError):
            manager.add_to_queue([good, FileConfig(url, destination_subdir=subdir)])
        assert manager.tracker.get_all_downloads() == {}  # nothing of the batch was queued
    assert raw_server.requests == []
    assert sandbox.files() == []


@pytest.mark.parametrize("subdir", ["a/b/c", "a/./b", "%2e%2e", "..a", "a..", "CON/x", "a\x00b", "\u2024\u2024",
                                    "\uff0e\uff0e", "x" * 300])
def test_odd_destination_subdir_stays_inside(raw_server: RawServer, sandbox: Sandbox, subdir: str) -> None:
    url = raw_server.route("/f.bin", body(DATA))
    outcome = run_batch(sandbox, [FileConfig(url, destination_subdir=subdir)])
    saved = outcome.assert_exact(url, DATA)
    _assert_safe_file(sandbox, saved)
    for part in saved.relative_to(sandbox.root).parts:
        assert part not in (".", "..")


# -- links planted in the folder ---------------------------------------------------------------------


def test_subdir_link_pointing_outside_is_refused(raw_server: RawServer, sandbox: Sandbox) -> None:
    (sandbox.root / "out").symlink_to(sandbox.parent, target_is_directory=True)
    sandbox.snapshot()
    url = raw_server.route("/canary.txt", body(DATA))
    with DownloadManager(download_dir=sandbox.root, **FAST) as manager, pytest.raises(InvalidArgumentError):
        manager.add_to_queue([FileConfig(url, destination_subdir="out")])
    assert (sandbox.parent / "canary.txt").read_text() == "must not change"


@pytest.mark.parametrize("planted", ["f.bin", "f.bin.part"])
def test_planted_link_at_the_destination_is_not_followed(
        raw_server: RawServer, sandbox: Sandbox, planted: str) -> None:
    (sandbox.root / planted).symlink_to(sandbox.parent / "canary.txt")
    sandbox.snapshot()
    url = raw_server.route("/f.bin", body(DATA))
    outcome = run_batch(sandbox, [url])
    info = outcome.info(url)
    if info.status is DownloadStatus.COMPLETED:
        outcome.assert_exact(url, DATA)
        assert not (sandbox.root / "f.bin").is_symlink()
    else:
        outcome.assert_clean_failure(url)


def test_planted_link_at_the_resume_state_is_not_followed(raw_server: RawServer, sandbox: Sandbox) -> None:
    (sandbox.root / "f.bin.part.json.tmp").symlink_to(sandbox.parent / "canary.txt")
    sandbox.snapshot()
    # A resumable body cut short: the failed attempt saves its resume state.
    url = raw_server.route("/f.bin", lying_length("4096", DATA, [("ETag", '"v"'), ("Accept-Ranges", "bytes")]))
    try:
        outcome = run_batch(sandbox, [url])
        outcome.assert_clean_failure(url)
        assert (sandbox.parent / "canary.txt").read_text() == "must not change"
    finally:
        sandbox.snapshot()  # checked here; the fixture's own check would only repeat it


# -- one server's names against another download's working files ----------------------------------------


def test_server_cannot_forge_another_downloads_resume_state(
        raw_server: RawServer, other_server: RawServer, sandbox: Sandbox) -> None:
    good = bytes(range(256)) * 16
    victim = other_server.route("/victim.iso", body(good, [("ETag", '"g"'), ("Accept-Ranges", "bytes")]))
    forged_state = json.dumps({"format": 1, "url": victim, "total": len(good), "etag": '"g"',
                               "last_modified": None, "ranges": [[0, len(good)]]}).encode()
    evil = b"E" * len(good)
    first = [
        raw_server.route("/a", body(forged_state, [_named("victim.iso.part.json")])),
        raw_server.route("/b", body(evil, [_named("victim.iso.part")])),
    ]
    run_batch(sandbox, first)  # an earlier run fetched two harmless-looking files
    later = run_batch(sandbox, [victim])
    later.assert_exact(victim, good)


def test_two_downloads_resolving_to_one_name_do_not_overwrite(raw_server: RawServer, sandbox: Sandbox) -> None:
    composed, decomposed = "caf\u00e9.txt", "cafe\u0301.txt"
    first = raw_server.route("/one", body(b"first", [_named(composed)]))
    second = raw_server.route("/two", body(b"second", [_named(decomposed)]))
    outcome = run_batch(sandbox, [first, second], max_workers=1)
    statuses = {outcome.info(first).status, outcome.info(second).status}
    assert statuses == {DownloadStatus.COMPLETED, DownloadStatus.FAILED}
    winner, loser = (first, second) if outcome.info(first).status is DownloadStatus.COMPLETED else (second, first)
    outcome.assert_exact(winner, b"first" if winner == first else b"second")
    outcome.assert_clean_failure(loser, "DestinationConflictError")
    assert final_only(sandbox) == [composed]


def _named(name: str) -> tuple[str, str]:
    """A Content-Disposition header offering ``name`` (RFC 8187 encoded)."""
    return "Content-Disposition", "attachment; filename*=UTF-8''" + "".join(f"%{b:02X}" for b in name.encode())


def test_download_dir_that_is_a_link_is_used_without_escaping(raw_server: RawServer, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    url = raw_server.route("/f.bin", body(DATA, [("Content-Disposition", 'attachment; filename="../x.bin"')]))
    with DownloadManager(download_dir=link, **FAST) as manager:
        manager.add_to_queue([url])
    assert sorted(os.listdir(real)) == ["x.bin"]
    assert sorted(os.listdir(tmp_path)) == ["link", "real"]
