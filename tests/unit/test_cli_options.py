"""The command's parsers (no abbreviated long options, -n/--netrc, --password) and the default
connections per host."""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import pytest
import requests

from pydownloads.cli import main
from pydownloads.cli._access import AccessError, NetrcLoginAuth, password_auth, user_auth
from pydownloads.cli._args import build_demo_parser, build_parser, build_status_parser
from pydownloads.domain.models import FileConfig
from pydownloads.downloads.settings import (
    MAX_RAISED_CONNECTIONS_PER_HOST,
    DownloadSettings,
    PolitenessSettings,
    TransferSettings,
    fit_host_cap,
)
from pydownloads.infrastructure.limits import HostLimiter

SECRET = "pa55-w0rd"


@pytest.mark.parametrize("build", [build_parser, build_status_parser, build_demo_parser])
def test_no_parser_accepts_abbreviations(build: type[argparse.ArgumentParser]) -> None:
    assert build().allow_abbrev is False


def test_netrc_is_its_own_option_and_not_netrc_file() -> None:
    args = build_parser().parse_args(["https://h/a", "--netrc"])
    assert args.netrc is True and args.netrc_file is None
    assert build_parser().parse_args(["https://h/a", "-n"]).netrc is True


@pytest.mark.parametrize("argv", [["https://h/a", "--retri", "3"], ["status", "--js"], ["demo", "--jo", "2"]])
def test_an_abbreviated_option_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_netrc_with_no_netrc_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["https://h/a", "-n", "--no-netrc"]) == 2
    assert "--no-netrc" in capsys.readouterr().err


def test_password_is_never_in_the_parser_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["https://h/a", "--password", SECRET, "--no-netrc"]) == 2
    err = capsys.readouterr().err
    assert "--password" in err and SECRET not in err


def test_user_with_password() -> None:
    assert user_auth("ann", can_ask=False, password=SECRET) == ("ann", SECRET)
    with pytest.raises(AccessError, match="--password goes with --user USER"):
        user_auth(f"ann:{SECRET}", can_ask=False, password="other")


def test_password_alone_takes_each_hosts_login_from_the_netrc(tmp_path: Path) -> None:
    netrc = tmp_path / "creds.netrc"
    netrc.write_text("machine known.test login kim password old\n", encoding="utf-8")
    auth = password_auth(SECRET, netrc)
    assert auth == NetrcLoginAuth(SECRET, netrc) and SECRET not in repr(auth)
    assert pickle.loads(pickle.dumps(auth)) == auth
    known = auth(requests.Request("GET", "https://known.test/a").prepare())
    assert known.headers["Authorization"] == requests.auth._basic_auth_str("kim", SECRET)
    other = auth(requests.Request("GET", "https://other.test/a").prepare())
    assert "Authorization" not in other.headers
    with pytest.raises(AccessError):
        password_auth(SECRET, False)


@pytest.mark.parametrize(("workers", "segments", "given", "expected"), [
    (4, 4, None, 8), (16, 4, None, 16), (4, 16, None, 16), (12, 10, None, 12), (16, 16, 3, 3)])
def test_the_default_connections_per_host_are_never_below_what_the_run_asks(
        workers: int, segments: int, given: int | None, expected: int) -> None:
    settings = DownloadSettings(max_workers=workers, transfer=TransferSettings(max_segments=segments),
                                politeness=PolitenessSettings(max_connections_per_host=given))
    assert settings.connections_per_host == expected


def test_a_files_segments_raise_the_default_cap_but_never_an_explicit_one() -> None:
    items: list[FileConfig | str] = [
        "https://h/a", FileConfig(url="https://h/b", segments=12), FileConfig(url="https://h/c", segments=10),
        FileConfig(url="https://h/d", segments=99)]
    default = DownloadSettings()
    limiter = HostLimiter(default.connections_per_host)
    passed = fit_host_cap(items, default, limiter)
    assert next(passed) == "https://h/a" and limiter.limit == 8
    assert next(passed) == items[1] and limiter.limit == 12
    assert list(passed) == items[2:] and limiter.limit == MAX_RAISED_CONNECTIONS_PER_HOST == default.pool_size
    explicit = DownloadSettings(politeness=PolitenessSettings(max_connections_per_host=3))
    limiter = HostLimiter(explicit.connections_per_host)
    assert list(fit_host_cap(items, explicit, limiter)) == items and limiter.limit == 3
