"""The manager's Session on its one kind of request, a plain GET: prepared and sent as
``requests.Session.request`` would, without the generic work that changes nothing for it.

``Session.request`` builds a ``Request``, copies the whole cookie jar into a new one and
merges every setting through ``merge_setting``, whose runtime-checkable ``Protocol`` checks
cost more than the rest of the preparation; ``Session.send`` then runs the cookie jar's
extraction and the redirect loop for every response.  A GET with nothing but headers, a
timeout, ``stream`` and ``allow_redirects`` (the only request pydownloads makes) is prepared
here from the session's settings as they are at that moment (headers, auth, ``.netrc`` and
environment proxies when ``trust_env``, cookies, proxies, verify, cert) and sent through
the same adapter, hooks, cookie jar and redirects; anything else takes requests' own path.
What goes out is requests' to the byte (``tests/unit/test_session_get.py`` compares them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.cookies import extract_cookies_to_jar
from requests.hooks import dispatch_hook
from requests.sessions import preferred_clock
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies, get_netrc_auth

from pydownloads.infrastructure.auth import ChallengeAuth
from pydownloads.infrastructure.http_settings import Netrc, netrc_auth
from pydownloads.infrastructure.origins import sets_cookies

#: ``auth`` as requests takes it: what ``PlainGetSession._auth_of`` passes on.
AnyAuth = tuple[str, str] | Callable[[requests.PreparedRequest], requests.PreparedRequest] | None
#: An origin's environment: its proxies, the CA bundle, its .netrc credentials.
_Environment = tuple[dict[str, str], str | None, tuple[str, str] | None]
#: The keyword arguments of a plain GET (what Session.get passes for send_get's call).
_PLAIN_GET = frozenset({"params", "headers", "timeout", "allow_redirects", "stream"})
_NO_HOOKS: dict[str, list[Any]] = {"response": []}
#: Distinct header sets remembered, validated, per session (resumes vary their Range).
_HEADER_SETS = 64


class PlainGetSession(requests.Session):
    """A Session that prepares and sends its plain GETs itself (see the module).

    ``(user, password)``, as the session's ``auth`` or from a ``.netrc``, goes out as a
    :class:`~pydownloads.infrastructure.auth.ChallengeAuth` (one per credentials, so that an
    origin's challenge is answered once for every request).  ``netrc``: True reads the
    environment's ``.netrc`` with ``trust_env``, a path that file, False none.

    Thread-safe as a requests Session is: its caches (the environment per origin, the
    validated header sets) are dicts that a race only fills twice.
    """

    def __init__(self) -> None:
        super().__init__()
        self.netrc: Netrc = True
        self.auth_no_challenge = False
        self._challenge_auths: dict[tuple[str, str], ChallengeAuth] = {}
        self._environments: dict[tuple[str, str], _Environment] = {}
        self._header_sets: dict[tuple[Any, ...], CaseInsensitiveDict[str]] = {}

    def _auth_of(self, auth: AnyAuth) -> AnyAuth:
        """``auth`` as it goes out: ``(user, password)`` as this session's ChallengeAuth for
        them (made once; a race makes two, and one is kept), anything else as given."""
        if not isinstance(auth, tuple):
            return auth
        found = self._challenge_auths.get(auth)
        if found is None:
            found = self._challenge_auths.setdefault(
                auth, ChallengeAuth(*auth, no_challenge=self.auth_no_challenge))
        return found

    def _netrc_for(self, url: str) -> tuple[str, str] | None:
        """The credentials for ``url``'s host from this session's ``.netrc``, if any."""
        if self.netrc is True:  # the environment's, as requests reads it
            return self._environment(url)[2] if self.trust_env else None
        return None if self.netrc is False else netrc_auth(self.netrc, url)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        # A download's retry context (infrastructure.request_retry), for our adapters; the
        # generic path below has no way to pass it on, and goes without.
        request_retry = kwargs.pop("request_retry", None)
        if (args or method != "GET" or not isinstance(url, str) or not kwargs.keys() <= _PLAIN_GET
                or kwargs.get("params") is not None or self.params or self.hooks != _NO_HOOKS):
            return super().request(method, url, *args, **kwargs)
        prepared = self._prepare_get(url, kwargs.get("headers"))
        settings = self._send_settings(prepared.url or url, kwargs.get("stream"))
        if request_retry is not None:
            settings["request_retry"] = request_retry
        if kwargs.get("allow_redirects", True):
            return self._send_plain(prepared, timeout=kwargs.get("timeout"), **settings)
        return self.send(prepared, timeout=kwargs.get("timeout"), allow_redirects=False, **settings)

    def _send_settings(self, url: str, stream: bool | None) -> dict[str, Any]:
        """What ``merge_environment_settings`` gives for ``url``: proxies, stream, verify, cert."""
        if self.trust_env:  # the environment's proxies and CA bundle, as requests reads them ...
            environ_proxies, bundle, _ = self._environment(url)
            # ... except that a proxy set on the session (the manager's ``proxies``, the CLI's
            # --proxy) wins over the environment's for its scheme: requests lets the
            # environment win, so an explicit proxy was silently ignored where one was set.
            explicit = {key: value for key, value in self.proxies.items() if value is not None}
            return {"proxies": {**environ_proxies, **explicit}, "stream": self.stream if stream is None else stream,
                    "verify": (bundle or True) if self.verify is True else self.verify, "cert": self.cert}
        proxies = self.proxies if isinstance(self.proxies, Mapping) else {}
        return {"proxies": {key: value for key, value in proxies.items() if value is not None},
                "stream": self.stream if stream is None else stream, "verify": self.verify, "cert": self.cert}

    def _environment(self, url: str) -> _Environment:
        """The environment's proxies for ``url``'s origin (``no_proxy`` applied), its CA
        bundle (``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``; requests reads no
        ``SSL_CERT_FILE``) and the origin's ``$NETRC``/``~/.netrc`` credentials, as requests
        reads them, but once per origin for this session: requests reads them again for
        every request, which cost ~240 us of a small download's ~900 (the environment of a
        running program does not change under it).  A race only reads them twice."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)  # the origin (with any credentials: read the same)
        found = self._environments.get(key)
        if found is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None
            found = self._environments[key] = (get_environ_proxies(url, no_proxy=None), bundle, get_netrc_auth(url))
        return found

    def _prepare_get(self, url: str, headers: Mapping[str, str | bytes | None] | None) -> requests.PreparedRequest:
        """What ``prepare_request`` makes of a GET of ``url`` with ``headers`` on this session.

        ``PreparedRequest.prepare``'s steps in its order, less those that do nothing here:
        no body for a GET, no hooks given, no ``Cookie`` header from an empty jar, no
        credentials to apply when there are none and the URL holds no ``@``.
        """
        netrc = self._netrc_for(url) if not self.auth else None
        auth = self._auth_of(self.auth if netrc is None else netrc)
        prepared = requests.PreparedRequest()
        prepared.prepare_method("GET")
        prepared.prepare_url(url, None)
        prepared.headers = self._headers_for(headers)
        # The jar itself, not a copy: the Cookie header is computed from it here, and a
        # redirect works on a copy (PreparedRequest.copy) as it always does.
        if len(self.cookies):
            prepared.prepare_cookies(self.cookies)
        else:
            prepared._cookies = self.cookies  # type: ignore[attr-defined]
        if auth is not None or "@" in url:
            prepared.prepare_auth(auth, url)
        return prepared

    def _headers_for(self, headers: Mapping[str, str | bytes | None] | None) -> CaseInsensitiveDict[str]:
        """The session's headers merged with ``headers`` (a None value removes one), each
        checked as ``prepare_headers`` checks it: a fresh copy of the set made once per
        distinct pair of header sets."""
        store = getattr(self.headers, "_store", None)  # a CaseInsensitiveDict's own: {lower: (name, value)}
        mine = tuple(store.values()) if isinstance(store, dict) else tuple(self.headers.items())
        key: tuple[Any, ...] | None = (mine, tuple(headers.items()) if headers else ())
        try:
            found = self._header_sets.get(key)  # type: ignore[arg-type]
        except TypeError:  # a value that cannot be a key (not a str, bytes or None): no cache
            key, found = None, None
        if found is None:
            merged: CaseInsensitiveDict[str | bytes | None] = CaseInsensitiveDict(self.headers)
            if headers:
                merged.update(headers)
            checked = requests.PreparedRequest()
            checked.prepare_headers({name: value for name, value in merged.items() if value is not None})
            found = checked.headers
            if key is not None:
                if len(self._header_sets) >= _HEADER_SETS:
                    self._header_sets.clear()
                self._header_sets[key] = found
        return found.copy()

    def _send_plain(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """``Session.send`` of a prepared plain GET that follows redirects: the same steps,
        except that a response without ``Set-Cookie`` is not handed to the cookie jar and one
        that is no redirect starts no redirect loop (both would find nothing)."""
        adapter = self.get_adapter(url=request.url or "")
        start = preferred_clock()
        response: requests.Response = adapter.send(request, **kwargs)
        response.elapsed = timedelta(seconds=preferred_clock() - start)
        response = dispatch_hook("response", request.hooks, response, **kwargs)  # type: ignore[no-untyped-call]
        for earlier in response.history:  # requests a hook made (a challenge answered)
            _keep_cookies(self.cookies, earlier.request, earlier.raw)
        _keep_cookies(self.cookies, request, response.raw)
        if self.get_redirect_target(response):
            history = [response, *self.resolve_redirects(response, request, **kwargs)]
            response = history.pop()
            response.history = history
        if not kwargs.get("stream"):
            response.content  # noqa: B018  # read now, as requests does without stream
        return response


def _keep_cookies(jar: Any, request: requests.PreparedRequest, raw: Any) -> None:
    """``extract_cookies_to_jar``, only when the response sets a cookie."""
    if sets_cookies(raw):
        extract_cookies_to_jar(jar, request, raw)  # type: ignore[no-untyped-call]
