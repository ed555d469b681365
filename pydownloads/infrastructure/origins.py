"""An HTTPAdapter that works out once per origin what requests works out for every request.

For each request ``HTTPAdapter.send`` parses the URL four times over (the proxy to use,
twice; the pool's key; the path to send), checks the CA bundle on disk (a ``stat`` or
three: requests' ``verify``) and builds the pool's key attributes.  For a request that goes
direct (no proxy) they depend on the URL's scheme and host only, and on ``verify`` and
``cert``: here they are computed the first time and reused.  Anything through a proxy takes
requests' own path.  (requests before 2.32.2 picks the pool through ``get_connection``,
left as it is: only the CA checks, the path and the response are remembered or trimmed.)

What changes: a CA bundle or client certificate deleted during a run is no longer noticed
by the next request before it connects (requests raises ``OSError`` then); a new
connection still fails to load it, an open one goes on.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3 import HTTPHeaderDict
from urllib3.connectionpool import HTTPConnectionPool

#: Origins (with their verify and cert) remembered per adapter before the memory starts over.
_ORIGINS = 256


class OriginAdapter(HTTPAdapter):
    """HTTPAdapter with its per-request lookups for direct connections done once per origin.

    Thread-safe as HTTPAdapter is: its memories are dicts that a race only fills twice.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._forget()

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)  # type: ignore[misc,unused-ignore]
        self._forget()

    def _forget(self) -> None:
        self._pool_keys: dict[tuple[Any, ...], tuple[Any, Any]] = {}
        self._trust: dict[tuple[Any, ...], dict[str, Any]] = {}

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[Any, Any]:
        parts = urlsplit(request.url or "")
        key = (parts.scheme, parts.netloc, verify, cert)
        try:
            found = self._pool_keys.get(key)
        except TypeError:  # a cert that is not hashable: as requests does, every time
            return super().build_connection_pool_key_attributes(request, verify, cert)
        if found is None:
            found = super().build_connection_pool_key_attributes(request, verify, cert)
            if len(self._pool_keys) >= _ORIGINS:
                self._pool_keys.clear()
            self._pool_keys[key] = found
        host, pool = found
        return dict(host), dict(pool)

    def get_connection_with_tls_context(
        self, request: requests.PreparedRequest, verify: bool | str | None, proxies: Any = None, cert: Any = None
    ) -> HTTPConnectionPool:
        if proxies:  # a proxy may apply: requests decides
            return cast(HTTPConnectionPool, super().get_connection_with_tls_context(request, verify, proxies, cert))
        # No proxy: requests' select_proxy finds none, and the pool is the origin's own.
        host, pool = self.build_connection_pool_key_attributes(request, verify, cert)  # type: ignore[arg-type,unused-ignore]
        return cast(HTTPConnectionPool, self.poolmanager.connection_from_host(**host, pool_kwargs=pool))

    def cert_verify(self, conn: Any, url: str, verify: bool | str | None, cert: Any) -> None:
        # What requests sets on the pool depends on the scheme, verify and cert alone; its
        # checks of the files on disk are made the first time.
        key = (url.lower().startswith("https"), verify, cert)
        try:
            written = self._trust.get(key)
        except TypeError:
            super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call,unused-ignore]
            return
        if written is None:
            probe = _Probe()
            super().cert_verify(probe, url, verify, cert)  # type: ignore[no-untyped-call,unused-ignore]  # raises as requests does
            written = self._trust[key] = probe.written
        for name, value in written.items():
            setattr(conn, name, value)

    def request_url(self, request: requests.PreparedRequest, proxies: Any) -> str:
        if proxies:
            return super().request_url(request, proxies)
        return request.path_url  # what requests sends when no proxy applies

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        """``HTTPAdapter.build_response`` (the same in requests 2.31 to 2.34), except that the
        response's cookie jar is handed only a response that sets cookies."""
        response = requests.Response()
        response.status_code = getattr(resp, "status", None)  # type: ignore[assignment,unused-ignore]
        response.headers = CaseInsensitiveDict(getattr(resp, "headers", {}))
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = response.raw.reason
        response.url = req.url.decode("utf-8") if isinstance(req.url, bytes) else req.url  # type: ignore[assignment,unused-ignore]
        if sets_cookies(resp):
            extract_cookies_to_jar(response.cookies, req, resp)  # type: ignore[no-untyped-call,unused-ignore]
        response.request = req
        response.connection = self  # type: ignore[attr-defined,unused-ignore]
        return response


def sets_cookies(raw: Any) -> bool:
    """True when the urllib3 response ``raw`` carries cookies for a jar (what
    ``extract_cookies_to_jar`` reads: http.client's headers); without, it adds nothing."""
    message = getattr(getattr(raw, "_original_response", None), "msg", None)
    if message is None:
        return False
    headers = getattr(raw, "headers", None)  # urllib3's copy of those headers: looked up, not scanned
    if isinstance(headers, HTTPHeaderDict):
        return "Set-Cookie" in headers or "Set-Cookie2" in headers
    return "Set-Cookie" in message or "Set-Cookie2" in message


class _Probe:
    """Stands in for a pool: records what ``cert_verify`` sets on it, and reads it back."""

    def __init__(self) -> None:
        object.__setattr__(self, "written", {})

    def __setattr__(self, name: str, value: Any) -> None:
        self.written[name] = value

    def __getattr__(self, name: str) -> Any:
        try:
            return self.written[name]
        except KeyError:
            raise AttributeError(name) from None
