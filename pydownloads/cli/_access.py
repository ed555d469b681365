"""Credentials, cookies and TLS for the command: read from options into what the manager takes.

Nothing here ever puts a password or a cookie value into a message: errors name the file
and the line, never their content.

``.netrc``: the command runs the manager with ``trust_env=True``, so requests reads
``~/.netrc`` (or the file in ``$NETRC``) itself for the host of every request, after a
redirect too, as curl and wget do.  ``--netrc-file FILE`` points ``NETRC`` at FILE for the
run, ``--no-netrc`` at the null device; the environment is restored afterwards.
"""

from __future__ import annotations

import getpass
import http.cookiejar
import netrc
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests.cookies

#: Where requests finds a CA bundle when trusting the environment; explicit options beat them.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


class AccessError(ValueError):
    """An option about credentials, cookies or TLS cannot be used; the message is safe to print."""


def user_auth(text: str, *, can_ask: bool, ask: Callable[[str], str] = getpass.getpass) -> tuple[str, str]:
    """``--user USER[:PASSWORD]`` as ``(user, password)``; the password is asked for when absent.

    :param can_ask: standard input is a terminal (else a missing password is an error).
    :raises AccessError: no user name, or no password and no terminal to ask it on.
    """
    user, colon, password = text.partition(":")
    if not user:
        raise AccessError("--user needs a user name: --user USER or --user USER:PASSWORD")
    if not colon:
        if not can_ask:
            raise AccessError(f"--user {user}: no password given and standard input is not a terminal to ask "
                              "for it; give --user USER:PASSWORD, or put it in a .netrc (--netrc-file FILE)")
        password = ask(f"Password for {user}: ")
    return user, password


def load_cookies(path: Path, *, now: int | None = None) -> requests.cookies.RequestsCookieJar:
    """The cookies of the Netscape cookie file ``path``, expired ones left out.

    An expiry of 0 is what curl writes for a session cookie: it is loaded as one (Python's
    own loader would take it as expired in 1970).  The jar returned can be pickled, so it
    can travel to Dask workers too.

    :raises AccessError: the file cannot be read or is not a Netscape cookie file.
    """
    jar = http.cookiejar.MozillaCookieJar(str(path))
    try:
        with warnings.catch_warnings():  # the loader warns with a traceback on a malformed line
            warnings.simplefilter("ignore")
            jar.load(ignore_discard=True, ignore_expires=True)
    except http.cookiejar.LoadError:  # an OSError whose message quotes the line, cookie value included
        raise AccessError(f"--cookies {path}: not a Netscape cookie file (a '# Netscape HTTP Cookie File' "
                          "line, then 7 TAB-separated fields a cookie, as curl -c writes)") from None
    except OSError as error:
        raise AccessError(f"--cookies {path}: cannot read it: {error.strerror or error}") from None
    now = int(time.time()) if now is None else now
    kept = requests.cookies.RequestsCookieJar()
    for cookie in jar:
        if cookie.expires == 0:  # curl's session cookie
            cookie.expires, cookie.discard = None, True
        if not cookie.is_expired(now):
            kept.set_cookie(cookie)
    return kept


def check_netrc(path: Path) -> None:
    """Refuse a ``--netrc-file`` requests would silently ignore (missing or malformed).

    :raises AccessError: naming the file and line, never a token of it.
    """
    try:
        netrc.netrc(str(path))
    except netrc.NetrcParseError as error:
        raise AccessError(f"--netrc-file {path}: line {error.lineno}: not in .netrc form "
                          "('machine HOST login USER password PASSWORD')") from None
    except OSError as error:
        raise AccessError(f"--netrc-file {path}: cannot read it: {error.strerror or error}") from None


def check_ca_bundle(path: Path) -> None:
    """:raises AccessError: ``path`` is not a file (requests would fail every https request)."""
    if not path.is_file():
        raise AccessError(f"--ca-bundle {path}: no such file")


def environment_for(*, netrc_file: Path | None, no_netrc: bool, verify_given: bool) -> dict[str, str | None]:
    """The environment variables a run sets (a value) or hides (None), for requests to read.

    :param verify_given: ``--ca-bundle`` or ``--insecure``: requests would otherwise let a
        CA bundle from the environment override them.
    """
    changes: dict[str, str | None] = {}
    if netrc_file is not None:
        changes["NETRC"] = str(netrc_file.expanduser().absolute())
    elif no_netrc:
        changes["NETRC"] = os.devnull  # requests finds it, and no host in it
    if verify_given:
        changes.update(dict.fromkeys(CA_BUNDLE_VARIABLES))
    return changes


@contextmanager
def environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """Apply ``changes`` to ``os.environ`` while the block runs, then put back what was there."""
    before = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            _set(name, value)
        yield
    finally:
        for name, value in before.items():
            _set(name, value)


def _set(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
