"""The pooled requests Session, with the urllib3 Retry of ``infrastructure.retries``.

Retries happen in two layers (see docs/ARCHITECTURE.md).  This is the lower one: urllib3
retries connection failures and transient statuses before a body starts, its waits through
:class:`RetryHooks`; a download's requests bring their own budget, deadline and reports
(``request_retry=``, see :func:`takes_request_retry`).
"""

from __future__ import annotations

import copy
import http.cookiejar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import requests.cookies
from requests.adapters import HTTPAdapter

from pydownloads._version import __version__
from pydownloads.domain.redact import get_logger
from pydownloads.domain.retry import RetryConfig
from pydownloads.infrastructure.auth import mark_of, origin_of
from pydownloads.infrastructure.http_settings import SessionSettings
from pydownloads.infrastructure.plain_get import PlainGetSession
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


class _Session(PlainGetSession):
    """A Session that drops the Cookie header, like Authorization, when a redirect leaves
    the origin (scheme, host and port); its plain GETs are prepared and sent by
    :class:`~pydownloads.infrastructure.plain_get.PlainGetSession`, anything else by
    requests with the same rules.

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
