"""The command hands its options to the manager as one DownloadSettings, and never edits
``os.environ`` to reach a lower layer (in-process runs, so the environment can be watched)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from pydownloads import DownloadManager
from pydownloads.cli import _run, main
from pydownloads.localserver import LocalServer

_WATCHED = ("NETRC", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _netrc(path: Path, login: str) -> Path:
    path.write_text(f"machine 127.0.0.1 login {login} password {login}-pass\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """What the run's managers were given, and the environment while each ran."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(_netrc(tmp_path / "env.netrc", "envuser")))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "env-bundle.pem"))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tmp_path / "env-curl.pem"))
    records: list[dict[str, Any]] = []

    class Watched(DownloadManager):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            records.append({"settings": self.settings, "environment": {n: os.environ.get(n) for n in _WATCHED}})

        def shutdown(self, wait_for_current: bool = True) -> None:
            records.append({"environment": {n: os.environ.get(n) for n in _WATCHED}})
            super().shutdown(wait_for_current)

    monkeypatch.setattr(_run, "DownloadManager", Watched)
    return records


@pytest.mark.parametrize("option", ["--netrc-file", "--no-netrc", "--ca-bundle", "--insecure"])
def test_the_environment_is_not_edited_during_a_run(
        local_server: LocalServer, tmp_path: Path, seen: list[dict[str, Any]], option: str) -> None:
    before = {name: os.environ.get(name) for name in _WATCHED}
    url = local_server.add_file("/a.bin", b"data")
    given = {"--netrc-file": [option, str(_netrc(tmp_path / "chosen.netrc", "fileuser"))],
             "--no-netrc": [option], "--insecure": [option],
             "--ca-bundle": [option, str(tmp_path / "bundle.pem")]}[option]
    (tmp_path / "bundle.pem").write_text("", encoding="utf-8")
    # --auth-no-challenge: the credentials chosen show on the one request (this server never asks).
    assert main([url, "-q", "--no-state", "--auth-no-challenge", "-d", str(tmp_path / "out"), *given]) == 0
    assert [record["environment"] for record in seen] == [before, before]
    settings = seen[0]["settings"].session
    assert settings.trust_env is True
    [request] = local_server.requests
    if option == "--netrc-file":
        assert settings.netrc == tmp_path / "chosen.netrc"
        assert request.headers.get("Authorization") == _basic("fileuser", "fileuser-pass")
    elif option == "--no-netrc":
        assert settings.netrc is False and "Authorization" not in request.headers
    else:  # the environment's .netrc is still read, as requests reads it
        assert request.headers.get("Authorization") == _basic("envuser", "envuser-pass")
        assert settings.verify == (str(tmp_path / "bundle.pem") if option == "--ca-bundle" else False)


def test_the_command_options_land_in_the_settings(
        local_server: LocalServer, tmp_path: Path, seen: list[dict[str, Any]]) -> None:
    url = local_server.add_file("/a.bin", b"data")
    state = tmp_path / "state.db"
    argv = [url, "-q", "-d", str(tmp_path / "out"), "-j", "3", "--retries", "1", "--timeout", "7", "-x", "2",
            "--max-per-host", "5", "--limit-rate", "1M", "--min-speed", "10K", "--min-speed-time", "9",
            "--deadline", "30", "--on-existing", "skip", "--state", str(state), "--retry-failed",
            "-H", "X-Team: a", "-U", "agent/1"]
    assert main(argv) == 0
    settings = seen[0]["settings"]
    assert settings.max_workers == 3 and settings.retry_config.max_retries == 1
    transfer = settings.transfer
    assert (transfer.timeout, transfer.max_segments, transfer.min_speed, transfer.min_speed_window,
            transfer.deadline, transfer.on_existing) == (7, 2, 10 * 1024, 9, 30, "skip")
    assert (settings.politeness.max_connections_per_host, settings.politeness.rate_limit) == (5, 1024**2)
    assert settings.journal.state_file == state and settings.journal.retry_failed is True
    assert settings.session.headers == {"X-Team": "a", "User-Agent": "agent/1"}
    assert settings.progress is False  # the command draws its own bars


def test_a_setting_the_library_refuses_is_said_as_a_run_would_say_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["http://127.0.0.1:9/a.bin", "-H", "X-Bad: a\nb", "--no-state", "-d", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pydownloads: error: ") and "usage:" not in err
    assert not (tmp_path / "out").exists()  # refused before anything was created
