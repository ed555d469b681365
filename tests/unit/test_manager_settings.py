"""One DownloadSettings: built from the manager's keywords or given whole, validated before
anything is created or opened, picklable, and what a failing construction opened is closed."""

from __future__ import annotations

import dataclasses
import http.cookiejar
import math
import pickle
from pathlib import Path
from typing import Any

import pytest
import requests

import pydownloads
from pydownloads import DownloadManager, DownloadSettings, InvalidArgumentError, RetryConfig
from pydownloads.downloads import manager as manager_module
from pydownloads.downloads import resources
from pydownloads.downloads.settings import (
    OPTION_NAMES,
    JournalSettings,
    PolitenessSettings,
    TransferSettings,
)
from pydownloads.infrastructure.http_settings import SessionSettings


def test_keywords_build_the_settings_from_options_builds() -> None:
    options: dict[str, Any] = {"timeout": 5, "rate_limit": 1000, "headers": {"X-A": "b"}, "trust_env": True,
                               "state_file": None, "progress": False, "cancel_grace": 2.5, "min_speed": None}
    settings = DownloadSettings.from_options(3, **options)
    assert settings.max_workers == 3 and settings.transfer.timeout == 5 and settings.transfer.min_speed is None
    assert settings.politeness.rate_limit == 1000 and settings.session.trust_env is True
    assert settings.session.headers == {"X-A": "b"} and settings.cancel_grace == 2.5


def test_the_defaults_are_the_managers(tmp_path: Path) -> None:
    settings = DownloadSettings()
    assert settings == DownloadSettings.from_options() == DownloadSettings.from_options(retry_config=None)
    assert settings.max_workers == 4 and settings.retry_config == RetryConfig()
    assert settings.transfer.timeout == (10.0, 60.0) and settings.transfer.min_speed == 1000.0
    assert settings.session.trust_env is True and settings.session.verify is True and settings.session.netrc is True
    assert settings.journal.state_file is None and settings.cancel_grace == 1.0 and settings.progress is False
    manager = DownloadManager(tmp_path)
    try:
        assert manager.settings == settings and manager.max_workers == 4
    finally:
        manager.shutdown()


@pytest.mark.parametrize(("max_workers", "given", "expected"), [(4, None, 8), (12, None, 12), (12, 3, 3)])
def test_connections_per_host_default_to_8_or_the_workers(max_workers: int, given: int | None, expected: int) -> None:
    settings = DownloadSettings(max_workers=max_workers, politeness=PolitenessSettings(max_connections_per_host=given))
    assert settings.connections_per_host == expected


def test_the_manager_runs_with_the_settings_given(tmp_path: Path) -> None:
    settings = DownloadSettings.from_options(6, rate_limit=500, state_file=tmp_path / "state.db")
    with DownloadManager(tmp_path / "out", settings=settings) as manager:
        assert manager.settings is settings and manager.max_workers == 6
        assert manager.worker.settings.cancel_event is not settings.transfer.cancel_event
    assert (tmp_path / "state.db").exists()


def test_two_managers_of_the_same_settings_do_not_cancel_each_other(tmp_path: Path) -> None:
    settings = DownloadSettings()
    first, second = DownloadManager(tmp_path, settings=settings), DownloadManager(tmp_path, settings=settings)
    try:
        first.shutdown(wait_for_current=False)
        assert first.worker.settings.cancel_event.is_set()
        assert not second.worker.settings.cancel_event.is_set() and not settings.transfer.cancel_event.is_set()
    finally:
        second.shutdown()


@pytest.mark.parametrize("extra", [{"timeout": 5}, {"retry_config": RetryConfig()}, {"progress": False}])
def test_settings_with_a_keyword_setting_are_refused(tmp_path: Path, extra: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        DownloadManager(tmp_path / "out", settings=DownloadSettings(), **extra)
    with pytest.raises(InvalidArgumentError):
        DownloadManager(tmp_path / "out", 4, settings=DownloadSettings())
    assert not (tmp_path / "out").exists()  # refused before anything was created


def test_an_unknown_keyword_is_a_type_error(tmp_path: Path) -> None:
    for build in (lambda: DownloadManager(tmp_path, time_out=5),
                  lambda: DownloadManager(tmp_path, settings=DownloadSettings(), time_out=5),
                  lambda: DownloadSettings.from_options(time_out=5)):
        with pytest.raises(TypeError):
            build()  # type: ignore[no-untyped-call]


def test_settings_must_be_download_settings(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError):
        DownloadManager(tmp_path, settings={"max_workers": 2})  # type: ignore[arg-type]


def test_every_keyword_of_the_manager_is_a_setting_of_some_group() -> None:
    fields = {f.name for kind in (TransferSettings, PolitenessSettings, SessionSettings, JournalSettings)
              for f in dataclasses.fields(kind)} | {f.name for f in dataclasses.fields(DownloadSettings)}
    assert fields >= OPTION_NAMES
    assert fields - OPTION_NAMES == {"max_workers", "cancel_event", "save_interval", "fast_lane", "transfer",
                                     "politeness", "session", "journal", "host_gate"}


def test_settings_pickle_for_dask_workers_with_a_cancel_event_of_their_own() -> None:
    jar = requests.cookies.RequestsCookieJar()
    jar.set("k", "v", domain="e.com", path="/")
    settings = DownloadSettings.from_options(8, timeout=(3, 9), rate_limit=1000, auth=("u", "p"), cookies=jar,
                                             headers={"X-A": "b"}, netrc=Path("/n"), state_file=Path("s.db"))
    copy = pickle.loads(pickle.dumps(settings))
    assert dataclasses.replace(copy, session=settings.session) == settings
    assert [(c.name, c.value) for c in copy.session.cookies] == [("k", "v")] and copy.session.auth == ("u", "p")
    assert copy.transfer.cancel_event is not settings.transfer.cancel_event
    assert not copy.transfer.cancel_event.is_set()


def test_download_settings_is_public() -> None:
    assert pydownloads.DownloadSettings is DownloadSettings and "DownloadSettings" in pydownloads.__all__


# -- validation: each rule the manager had, now in the settings ------------------------------------

BAD_SETTINGS = [
    {"max_workers": 0}, {"max_workers": True}, {"max_workers": 1.5}, {"retry_config": "x"},
    {"cancel_grace": -1}, {"cancel_grace": math.nan}, {"cancel_grace": math.inf}, {"cancel_grace": True},
    {"progress": "no"}, {"transfer": {"timeout": 5}}, {"politeness": None}, {"session": "x"}, {"journal": 1},
]


@pytest.mark.parametrize("fields", BAD_SETTINGS, ids=lambda o: "-".join(f"{k}={v!r}" for k, v in o.items()))
def test_download_settings_refuse_bad_values(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        DownloadSettings(**fields)


@pytest.mark.parametrize("fields", [{"max_connections_per_host": 0}, {"max_connections_per_host": True},
                                    {"rate_limit": 0}, {"rate_limit": math.inf}])
def test_politeness_settings_refuse_bad_values(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        PolitenessSettings(**fields)


def test_journal_settings_refuse_a_retry_failed_that_is_not_a_bool() -> None:
    with pytest.raises(InvalidArgumentError):
        JournalSettings(retry_failed="yes")  # type: ignore[arg-type]


BAD_SESSION = [
    {"headers": {"A": 1}}, {"headers": {"A": "x\r\nB: y"}}, {"proxies": "http://p:1"}, {"proxies": {"http": 5}},
    {"trust_env": "no"}, {"auth": "alice:secret"}, {"auth": ("alice",)}, {"auth": ("alice", 5)},
    {"cookies": {"a": "b"}}, {"verify": 1}, {"verify": None}, {"netrc": 5}, {"netrc": None},
]


@pytest.mark.parametrize("fields", BAD_SESSION, ids=lambda o: "-".join(f"{k}={v!r}" for k, v in o.items()))
def test_session_settings_refuse_bad_values(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        SessionSettings(**fields)


def test_good_session_settings_are_accepted() -> None:
    SessionSettings(headers={"A": "b"}, proxies={"https": "http://p:1"}, trust_env=True, auth=("a", "b"),
                    cookies=http.cookiejar.CookieJar(), verify="/ca.pem", netrc=Path("/n"))
    SessionSettings(verify=False, netrc=False, auth=requests.auth.HTTPDigestAuth("a", "b"))


# -- one ExitStack: a failure midway closes exactly what was opened ----------------------------------


def test_a_failure_after_the_state_file_closes_it_and_the_session(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[str] = []
    build = resources.build_session

    def spied_session(**kwargs: Any) -> requests.Session:
        session = build(**kwargs)
        monkeypatch.setattr(session, "close", lambda: closed.append("session"))
        return session

    def failing_worker(**kwargs: Any) -> None:
        raise RuntimeError("worker refused")

    monkeypatch.setattr(resources, "build_session", spied_session)
    monkeypatch.setattr(manager_module, "DownloadWorker", failing_worker)
    state = tmp_path / "state.db"
    with pytest.raises(RuntimeError):
        DownloadManager(tmp_path / "out", state_file=state)
    assert closed == ["session"]
    monkeypatch.undo()
    with DownloadManager(tmp_path / "out", state_file=state) as manager:  # the file was closed: not busy
        assert manager.tracker.get_stats().total == 0


def test_a_failing_state_file_closes_the_session_built_and_leaves_a_given_one_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[str] = []
    build = resources.build_session

    def spied_session(**kwargs: Any) -> requests.Session:
        session = build(**kwargs)
        monkeypatch.setattr(session, "close", lambda: closed.append("built"))
        return session

    monkeypatch.setattr(resources, "build_session", spied_session)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(pydownloads.StateFileError):
        DownloadManager(tmp_path / "out", state_file=folder)  # a folder is no state file
    assert closed == ["built"]
    given = requests.Session()
    monkeypatch.setattr(given, "close", lambda: closed.append("given"))
    with pytest.raises(pydownloads.StateFileError):
        DownloadManager(tmp_path / "out", session=given, state_file=folder)
    assert closed == ["built"]


@pytest.mark.parametrize("name", ["min_speed_window", "save_interval", "fast_lane"])
def test_transfer_settings_that_cannot_be_off_refuse_none(name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=name):
        TransferSettings(**{name: None})  # type: ignore[arg-type]
