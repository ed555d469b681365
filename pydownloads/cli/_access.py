"""Credentials, cookies and TLS for the command: read from options into what the manager takes.

Nothing here ever puts a password or a cookie value into a message: errors name the file
and the line, never their content.

``.netrc``: the command runs the manager with ``trust_env=True``, so the session reads
``~/.netrc`` (or the file in ``$NETRC``) for the host of every request, after a redirect
too, as curl and wget do.  ``--netrc-file FILE`` and ``--no-netrc`` go into the session
settings (``netrc=FILE`` or ``netrc=False``), as ``--ca-bundle`` and ``--insecure`` go into
``verify``, which wins over the environment's CA bundle: the environment is never edited.
``-n/--netrc`` says the default explicitly (curl's spelling).  ``--password`` without
``--user`` goes with the login the ``.netrc`` holds for each host (:class:`NetrcLoginAuth`).
"""

from __future__ import annotations

import getpass
import http.cookiejar
import netrc
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import requests.auth
import requests.cookies
import requests.utils

from pydownloads.infrastructure.auth import ChallengeAuth
from pydownloads.infrastructure.http_settings import netrc_auth


class AccessError(ValueError):
    """An option about credentials, cookies or TLS cannot be used; the message is safe to print."""


def user_auth(
    text: str, *, can_ask: bool, password: str | None = None, ask: Callable[[str], str] = getpass.getpass
) -> tuple[str, str]:
    """``--user USER[:PASSWORD]`` as ``(user, password)``; the password is ``--password``'s,
    or asked for when absent.

    :param can_ask: standard input is a terminal (else a missing password is an error).
    :param password: ``--password``, for ``--user USER`` only.
    :raises AccessError: no user name, two passwords, or no password and no terminal to ask
        it on.
    """
    user, colon, given = text.partition(":")
    if not user:
        raise AccessError("--user needs a user name: --user USER or --user USER:PASSWORD")
    if password is not None:
        if colon:
            raise AccessError("--password goes with --user USER, not --user USER:PASSWORD")
        return user, password
    password = given
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


def netrc_choice(*, netrc_file: Path | None, no_netrc: bool) -> bool | Path:
    """The session's ``netrc`` for ``--netrc-file FILE`` (FILE, absolute: the run may change
    folder) or ``--no-netrc`` (False); True, the environment's, without either."""
    if netrc_file is not None:
        return netrc_file.expanduser().absolute()
    return not no_netrc


class NetrcLoginAuth(requests.auth.AuthBase):
    """``--password`` without ``--user``: the login the ``.netrc`` holds for each request's
    host, and this password (wget's ``--password``), sent as the server's challenge asks
    (a :class:`~pydownloads.infrastructure.auth.ChallengeAuth` per login).

    A host the ``.netrc`` has no login for gets no credentials.  Picklable (it goes to Dask
    workers, without what it learnt of servers); its repr shows no password.

    :param netrc: the ``.netrc`` to read; None: the environment's (``$NETRC`` or
        ``~/.netrc``), as requests reads it.
    :param no_challenge: Basic before any challenge (``--auth-no-challenge``).
    """

    def __init__(self, password: str, netrc: Path | None = None, *, no_challenge: bool = False) -> None:
        self._password = password
        self._netrc = netrc
        self._no_challenge = no_challenge
        self._by_login: dict[str, ChallengeAuth] = {}

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url = request.url or ""
        found = requests.utils.get_netrc_auth(url) if self._netrc is None else netrc_auth(self._netrc, url)
        if found is None or not found[0]:
            return request
        auth = self._by_login.get(found[0])
        if auth is None:  # a race makes two, and one is kept
            auth = self._by_login.setdefault(
                found[0], ChallengeAuth(found[0], self._password, no_challenge=self._no_challenge))
        return auth(request)

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_by_login": {}}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NetrcLoginAuth) and (self._password, self._netrc, self._no_challenge) == (
            other._password, other._netrc, other._no_challenge)

    def __hash__(self) -> int:
        return hash((NetrcLoginAuth, self._netrc))

    def __repr__(self) -> str:
        return f"NetrcLoginAuth(password=***, netrc={self._netrc!r}, no_challenge={self._no_challenge})"


def password_auth(password: str, netrc: bool | Path, *, no_challenge: bool = False) -> NetrcLoginAuth:
    """``--password`` alone: the password for the ``.netrc``'s login of each host.

    :param no_challenge: Basic before any challenge (``--auth-no-challenge``).
    :raises AccessError: ``--no-netrc`` (no login to go with the password).
    """
    if netrc is False:
        raise AccessError("--password without --user needs the login of a .netrc: give --user USER, "
                          "or leave out --no-netrc")
    return NetrcLoginAuth(password, None if netrc is True else netrc, no_challenge=no_challenge)
