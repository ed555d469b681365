"""The pooled requests Session, with the urllib3 Retry of ``infrastructure.retries``.

Retries happen in two layers (see docs/ARCHITECTURE.md).  This is the lower one: urllib3
retries connection failures and transient statuses before a body starts, its waits through
:class:`RetryHooks`; a download's requests bring their own budget, deadline and reports
(``request_retry=``, see :func:`takes_request_retry`).
"""

from __future__ import annotations

import copy
import http.cookiejar
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import requests.cookies
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies, get_netrc_auth

from pydownloads._version import __version__
from pydownloads.domain.redact import get_logger
from pydownloads.domain.retry import RetryConfig
from pydownloads.infrastructure.auth import ChallengeAuth, mark_of, origin_of
from pydownloads.infrastructure.http_settings import Netrc, SessionSettings, netrc_auth
from pydownloads.infrastructure.retries import RetryHooks as RetryHooks  # re-exported: the manager's import
from pydownloads.infrastructure.retries import RetryingAdapter, build_retry
from pydownloads.infrastructure.watch import ConnectionWatch, WatchedAdapter

logger = get_logger(__name__)

if TYPE_CHECKING:
    from requests.sessions import _Settings

USER_AGENT = f"pydownloads/{__version__}"
DEFAULT_MAX_REDIRECTS = 10


def takes_request_retry(session: requests.Session) -> bool:
    """True when ``session`` passes a download's ``request_retry=`` on to adapters that
    take it: a session :func:`build_session` made with a watch.  Any other session (a
    caller's own) never gets the keyword."""
    return isinstance(session, _Session) and all(
        isinstance(adapter, RetryingAdapter) for adapter in session.adapters.values())


class _OriginCookiePolicy(http.cookiejar.DefaultCookiePolicy):
    """Cookies a server sets go back to that server's port only (RFC 6265 would send them
    to every port of the host)."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        if not super().set_ok(cookie, request):
            return False
        if not cookie.port_specified:
            parts = urlsplit(request.get_full_url())
            cookie.port = str(parts.port or (443 if parts.scheme == "https" else 80))
            cookie.port_specified = True
        return True


class _Session(requests.Session):
    """A Session that drops the Cookie header, like Authorization, when a redirect leaves
    the origin (scheme, host and port), and prepares its plain GETs without requests'
    generic per-request merging.

    ``Session.request`` builds a ``Request``, copies the whole cookie jar into a new one and
    merges every setting through ``merge_setting``, whose runtime-checkable ``Protocol``
    checks cost more than the rest of the preparation: about a sixth of the CPU of a small
    download.  A GET with nothing but headers, a timeout, ``stream`` and
    ``allow_redirects`` (the only request pydownloads makes) is prepared here from the
    session's settings as they are at that moment (headers, auth, ``.netrc`` and
    environment proxies when ``trust_env``, cookies, proxies, verify, cert) and goes
    through ``Session.send`` as usual: adapter, Retry, cookies set, redirects with
    :meth:`rebuild_auth`.  Anything else takes ``Session.request``.

    ``(user, password)``, as the session's ``auth`` or from a ``.netrc``, goes out as a
    :class:`~pydownloads.infrastructure.auth.ChallengeAuth` (one per credentials, so that
    an origin's challenge is answered once for every request): Digest or Basic as the
    server's 401 asks, Basic unasked only over HTTPS or with ``auth_no_challenge``.  Any
    other ``auth`` (an AuthBase) is used as given.

    The explicit settings win over the environment on both paths: ``netrc`` (False or a
    file, see SessionSettings) replaces requests' ``$NETRC``/``~/.netrc`` lookup, after a
    redirect too, and a ``verify`` that is a path or False wins over the environment's CA
    bundle (requests lets the environment win).  Nothing edits ``os.environ`` to get there.
    """

    def __init__(self) -> None:
        super().__init__()
        self.netrc: Netrc = True
        self.auth_no_challenge = False
        self._challenge_auths: dict[tuple[str, str], ChallengeAuth] = {}

    def _auth_of(self, auth: _AnyAuth) -> _AnyAuth:
        """``auth`` as it goes out: ``(user, password)`` as this session's ChallengeAuth for
        them (made once; a race makes two, and one is kept), anything else as given."""
        if not isinstance(auth, tuple):
            return auth
        found = self._challenge_auths.get(auth)
        if found is None:
            found = self._challenge_auths.setdefault(
                auth, ChallengeAuth(*auth, no_challenge=self.auth_no_challenge))
        return found

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        # A download's retry context (infrastructure.request_retry), for our adapters; the
        # generic path below has no way to pass it on, and goes without.
        request_retry = kwargs.pop("request_retry", None)
        if (args or method != "GET" or not isinstance(url, str) or not kwargs.keys() <= _PLAIN_GET
                or kwargs.get("params") is not None or self.params or self.hooks != _NO_HOOKS):
            return super().request(method, url, *args, **kwargs)
        stream = kwargs.get("stream")
        prepared = self._prepare_get(url, kwargs.get("headers"))
        if self.trust_env:  # the environment's proxies and CA bundle, as requests reads them ...
            environ_proxies, bundle, _ = self._environment(prepared.url or url)
            # ... except that a proxy set on the session (the manager's ``proxies``, the CLI's
            # --proxy) wins over the environment's for its scheme: requests lets the
            # environment win, so an explicit proxy was silently ignored where one was set.
            explicit = {key: value for key, value in self.proxies.items() if value is not None}
            settings: dict[str, Any] = {"proxies": {**environ_proxies, **explicit},
                        "stream": self.stream if stream is None else stream,
                        "verify": (bundle or True) if self.verify is True else self.verify, "cert": self.cert}
        else:
            proxies = self.proxies if isinstance(self.proxies, Mapping) else {}
            settings = {"proxies": {key: value for key, value in proxies.items() if value is not None},
                        "stream": self.stream if stream is None else stream, "verify": self.verify, "cert": self.cert}
        if request_retry is not None:
            settings["request_retry"] = request_retry
        return self.send(prepared, timeout=kwargs.get("timeout"), allow_redirects=kwargs.get("allow_redirects", True),
                         **settings)

    def _environment(self, url: str) -> _Environment:
        """The environment's proxies for ``url``'s origin (``no_proxy`` applied), its CA
        bundle (``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``; requests reads no
        ``SSL_CERT_FILE``) and the origin's ``$NETRC``/``~/.netrc`` credentials, as requests
        reads them, but once per origin for this session: requests reads them again for
        every request, which cost ~240 us of a small download's ~900 (the environment of a
        running program does not change under it).  A race only reads them twice."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname, parts.port)
        cache: dict[tuple[str, str | None, int | None], _Environment]
        cache = self.__dict__.setdefault("_environment_cache", {})
        found = cache.get(key)
        if found is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None
            found = cache[key] = (get_environ_proxies(url, no_proxy=None), bundle, get_netrc_auth(url))
        return found

    def _prepare_get(self, url: str, headers: Mapping[str, str | bytes | None] | None) -> requests.PreparedRequest:
        """What ``prepare_request`` makes of a GET of ``url`` with ``headers`` on this session."""
        merged: CaseInsensitiveDict[str | bytes | None] = CaseInsensitiveDict(self.headers)
        if headers:
            merged.update(headers)
        for name in [name for name, value in merged.items() if value is None]:
            del merged[name]  # a None value removes a session header, as in requests
        netrc = self._netrc_for(url) if not self.auth else None
        prepared = requests.PreparedRequest()
        # The jar itself, not a copy: the Cookie header is computed from it here, and a
        # redirect works on a copy (PreparedRequest.copy) as it always does.
        auth = self._auth_of(self.auth if netrc is None else netrc)
        prepared.prepare(method="GET", url=url, headers=merged, auth=auth, cookies=self.cookies)
        return prepared

    def _netrc_for(self, url: str) -> tuple[str, str] | None:
        """The credentials for ``url``'s host from this session's ``.netrc``, if any."""
        if self.netrc is True:  # the environment's, as requests reads it
            return self._environment(url)[2] if self.trust_env else None
        return None if self.netrc is False else netrc_auth(self.netrc, url)

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        auth = request.auth or self.auth
        if not auth:
            # Credentials of our choice of .netrc, or none: requests would read the environment's.
            auth = self._netrc_for(request.url) or (None if self.netrc is True else _NO_AUTH)
        if auth is not request.auth or isinstance(auth, tuple):
            request = copy.copy(request)
            request.auth = self._auth_of(auth)
        return super().prepare_request(request)

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> _Settings:
        given = set(proxies or ())  # before requests adds the environment's to the caller's dict
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:  # explicit beats the environment's CA bundle
            merged["verify"] = self.verify
        if self.trust_env:  # and a session proxy beats the environment's (requests lets it lose)
            explicit = {key: value for key, value in self.proxies.items() if value is not None and key not in given}
            merged["proxies"] = {**merged["proxies"], **explicit}
        return merged

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        # requests' own rule (strip Authorization when leaving the host, then the new host's
        # .netrc credentials), with this session's choice of .netrc.
        # A ChallengeAuth goes on with the request where the header would (a fresh header:
        # a Digest one names its URL), and may answer a challenge only there.
        url = prepared_request.url or ""
        strip = self.should_strip_auth(response.request.url, url)  # type: ignore[no-untyped-call]
        if "Authorization" in prepared_request.headers and (strip or mark_of(response.request) is not None):
            del prepared_request.headers["Authorization"]
        carried = mark_of(response.request)
        if carried is not None and not strip:
            prepared_request.prepare_auth(carried)
        found = self._netrc_for(url)
        if found is not None:
            prepared_request.prepare_auth(self._auth_of(found))
        if origin_of(response.request.url) != origin_of(prepared_request.url):
            # Only the session's own cookies for the new origin go on: none the old origin
            # set during the redirects, none given as a header for the first URL.
            prepared_request.headers.pop("Cookie", None)
            cookies = requests.cookies.get_cookie_header(self.cookies, prepared_request)  # type: ignore[no-untyped-call]
            if cookies:
                prepared_request.headers["Cookie"] = cookies


#: ``auth`` as requests takes it: what ``_Session._auth_of`` passes on.
_AnyAuth = tuple[str, str] | Callable[[requests.PreparedRequest], requests.PreparedRequest] | None

#: An origin's environment: its proxies, the CA bundle, its .netrc credentials.
_Environment = tuple[dict[str, str], str | None, tuple[str, str] | None]
#: The keyword arguments of a plain GET (what Session.get passes for send_get's call).
_PLAIN_GET = frozenset({"params", "headers", "timeout", "allow_redirects", "stream"})
_NO_HOOKS: dict[str, list[Any]] = {"response": []}


class _NoAuth(requests.auth.AuthBase):
    """Credentials that add nothing: where this session's .netrc has none for a host."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


_NO_AUTH = _NoAuth()


def build_session(
    *, pool_size: int, config: RetryConfig, hooks: RetryHooks | None, watch: ConnectionWatch | None = None,
    settings: SessionSettings | None = None,
) -> requests.Session:
    """A Session with one pooled adapter sized for ``pool_size`` concurrent downloads.

    ``Accept-Encoding: identity`` makes the saved bytes the server's bytes; ``watch`` bounds
    the wait for response headers; ``settings`` (default: SessionSettings()) says what the
    session sends and trusts.  ``verify=False`` is logged as a warning.
    """
    session = _Session()
    session.cookies.set_policy(_OriginCookiePolicy())
    options: dict[str, Any] = {
        "pool_connections": max(10, pool_size), "pool_maxsize": pool_size, "max_retries": build_retry(config, hooks),
    }
    adapter = HTTPAdapter(**options) if watch is None else WatchedAdapter(watch, **options)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept-Encoding"] = "identity"
    session.max_redirects = DEFAULT_MAX_REDIRECTS
    _apply(session, settings if settings is not None else SessionSettings())
    return session


def _apply(session: _Session, settings: SessionSettings) -> None:
    # The environment (proxies, CA bundle, .netrc) is read as requests reads it unless the
    # caller says trust_env=False; the explicit settings win over it either way.
    session.trust_env = settings.trust_env
    session.netrc = settings.netrc
    session.auth_no_challenge = settings.auth_no_challenge
    if settings.headers is not None:
        session.headers.update(settings.headers)
    if settings.proxies is not None:
        session.proxies.update(settings.proxies)
    if settings.auth is not None:
        session.auth = settings.auth
    if settings.cookies is not None:
        for cookie in settings.cookies:
            session.cookies.set_cookie(cookie)
    if settings.verify is False:
        logger.warning("TLS certificate verification is OFF: anyone on the path can alter the downloads")
    session.verify = settings.verify
