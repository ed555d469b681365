"""What the HTTP session sends and trusts: one frozen, validated object handed to ``build_session``.

Nothing here reads the environment; with ``trust_env`` the session does, once per origin,
and the explicit settings win over it (``verify``, ``netrc``, ``proxies``).
"""

from __future__ import annotations

import http.cookiejar
import netrc as netrc_module
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from urllib.parse import urlsplit

import requests.auth

from pydownloads.domain.errors import InvalidArgumentError
from pydownloads.domain.models import FileConfig

#: ``auth`` as requests takes it: ``(user, password)`` for Basic, or an AuthBase.
Auth = tuple[str, str] | requests.auth.AuthBase
#: Where credentials per host come from (see SessionSettings.netrc).
Netrc = bool | str | PathLike[str]


@dataclass(frozen=True, kw_only=True)
class SessionSettings:
    """The session's headers, proxies, credentials and TLS (see DownloadManager for each).

    :param headers: sent with every request (a FileConfig's own headers win).
    :param proxies: ``{"http": url, "https": url}``; wins over the environment's proxies.
    :param trust_env: read proxies (``NO_PROXY`` too), the CA bundle
        (``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``) and ``.netrc`` from the environment,
        as a requests Session does (the default); False: explicit arguments only.
    :param auth: credentials for every request, dropped on a redirect to another origin.
        ``(user, password)`` (and a ``.netrc``'s) answer the server's challenge: Digest or
        Basic as its 401 asks (Digest when both are offered); only over HTTPS, or with
        ``auth_no_challenge``, does Basic go out before a challenge.  An AuthBase is used as
        given.
    :param cookies: a cookie jar; each cookie goes only where its domain and path say.
    :param verify: True (the default: verify, against the environment's CA bundle with
        ``trust_env``), a CA bundle path, or False.  A path or False wins over the
        environment's ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``.
    :param netrc: where credentials per host come from, when ``auth`` is not given: True
        (the default) reads ``$NETRC`` or ``~/.netrc`` with ``trust_env`` as requests does;
        a path reads that file (with or without ``trust_env``); False reads none.
    :param auth_no_challenge: send ``(user, password)`` as Basic on the first request, over
        plain HTTP too, without waiting for the server's challenge (wget's
        ``--auth-no-challenge``): for servers that never ask.

    Credentials never show in ``repr`` (headers and proxy URLs may carry them too).
    """

    headers: Mapping[str, str] | None = field(default=None, repr=False)
    proxies: Mapping[str, str] | None = field(default=None, repr=False)
    trust_env: bool = True
    auth: Auth | None = field(default=None, repr=False)
    cookies: http.cookiejar.CookieJar | None = field(default=None, repr=False)
    verify: bool | str = True
    netrc: Netrc = True
    auth_no_challenge: bool = False

    def __post_init__(self) -> None:
        if self.headers is not None:
            FileConfig(url="http://headers.check/", headers=self.headers)  # same validation as per-file headers
        if self.proxies is not None and (not isinstance(self.proxies, Mapping) or not all(
                isinstance(v, str) for v in self.proxies.values())):
            raise InvalidArgumentError("proxies must map a scheme to a proxy URL string")
        if not isinstance(self.trust_env, bool):
            raise InvalidArgumentError(f"trust_env must be True or False, not {self.trust_env!r}")
        if self.auth is not None and not (isinstance(self.auth, requests.auth.AuthBase) or (
                isinstance(self.auth, tuple) and len(self.auth) == 2 and all(isinstance(x, str) for x in self.auth))):
            raise InvalidArgumentError("auth must be (user, password) or a requests AuthBase")
        if self.cookies is not None and not isinstance(self.cookies, http.cookiejar.CookieJar):
            raise InvalidArgumentError(f"cookies must be a CookieJar, not {type(self.cookies).__name__}")
        if not isinstance(self.verify, (bool, str)):
            raise InvalidArgumentError(f"verify must be True, False or a CA bundle path, not {self.verify!r}")
        if not isinstance(self.netrc, (bool, str, PathLike)):
            raise InvalidArgumentError(f"netrc must be True, False or a .netrc path, not {self.netrc!r}")
        if not isinstance(self.auth_no_challenge, bool):
            raise InvalidArgumentError(f"auth_no_challenge must be True or False, not {self.auth_no_challenge!r}")


def netrc_auth(path: str | PathLike[str], url: str) -> tuple[str, str] | None:
    """The ``(login, password)`` the ``.netrc`` at ``path`` holds for ``url``'s host, or None.

    Read as requests reads the environment's ``.netrc``: a missing or malformed file gives
    no credentials (the command checks ``--netrc-file`` before the run), and the account
    stands in for a missing login.
    """
    host = urlsplit(url).hostname
    if host is None:
        return None
    try:
        found = netrc_module.netrc(str(path)).authenticators(host)
    except (netrc_module.NetrcParseError, OSError):
        return None
    if not found or not any(found):
        return None
    login, account, password = found
    return (login or account or ""), (password or "")
