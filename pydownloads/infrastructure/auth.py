"""``(user, password)`` answered as the server asks: Digest or Basic, from its 401 challenge.

:class:`ChallengeAuth` is what the session makes of ``auth=(user, password)`` and of the
credentials of a ``.netrc``.  Over plain HTTP the first request to an origin goes without
credentials, and the server's ``WWW-Authenticate`` decides: Digest when it offers Digest
(even beside Basic), else Basic.  Basic goes out before any challenge only over HTTPS, or
when asked (``no_challenge``, wget's ``--auth-no-challenge``).  Once an origin has answered,
later requests to it (other files, ranges, segment lanes) carry the right header at once:
Digest with the origin's nonce and a nonce count of their own, shared by every thread.

A challenge is answered only for the origin the request was prepared for (the session's
``rebuild_auth`` carries it over a redirect that keeps the origin), at most once per request,
and never again with a Basic or a Digest nonce the server has just refused (a stale
nonce comes back as a new one, and is answered).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import requests
import requests.auth
from requests.cookies import extract_cookies_to_jar

#: The attribute a prepared request carries when a ChallengeAuth may answer for it.
_MARK: Final = "_pydownloads_challenge_auth"
#: A 401 body larger than this is not read: the connection is closed instead of reused.
_DRAIN_LIMIT: Final = 64 << 10
_TOKEN: Final = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_SCHEME = re.compile(rf"[\s,]*({_TOKEN})")
_TOKEN68 = re.compile(r"\s+[A-Za-z0-9._~+/-]+=*\s*(?=,|$)")
_PARAM = re.compile(rf'\s*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|{_TOKEN})\s*(?:,|$)')
_NONCE_SENT = re.compile(r'\bnonce="([^"]*)"')
#: Digest algorithms by preference (RFC 7616), and the hash each uses.
_ALGORITHMS: Final[dict[str, Callable[[bytes], Any]]] = {
    "SHA-256": hashlib.sha256, "MD5": hashlib.md5,
}

Origin = tuple[str, str | None, int | None]
Challenge = tuple[str, dict[str, str]]


def parse_challenges(header: str) -> list[Challenge]:
    """The challenges of a ``WWW-Authenticate`` value: ``(scheme, params)`` in the order
    sent, scheme as sent, parameter names lowercased, quoted values unquoted.  Several
    headers joined by commas (as requests joins them) parse as one."""
    found: list[Challenge] = []
    position = 0
    while (scheme := _SCHEME.match(header, position)) is not None:
        position = scheme.end()
        params: dict[str, str] = {}
        token68 = _TOKEN68.match(header, position)
        if token68 is not None:
            position = token68.end()
        while token68 is None and (param := _PARAM.match(header, position)) is not None:
            value = param[2]
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[param[1].lower()] = value
            position = param.end()
        found.append((scheme[1], params))
    return found


def offered_schemes(header: str | None) -> list[str]:
    """The scheme names a ``WWW-Authenticate`` value offers, each once, in the order sent."""
    names: list[str] = []
    for scheme, _ in parse_challenges(header or ""):
        if scheme.lower() not in (name.lower() for name in names):
            names.append(scheme)
    return names


def origin_of(url: str | bytes | None) -> Origin:
    """``(scheme, host, port)`` of ``url``, the port filled in for http and https."""
    parts = urlsplit(url.decode() if isinstance(url, bytes) else url or "")
    try:
        port = parts.port
    except ValueError:
        port = -1
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


@dataclass
class _Digest:
    """An origin's Digest challenge and the nonce count its requests have used."""

    realm: str
    nonce: str
    algorithm: str
    sess: bool
    qop: str | None
    opaque: str | None
    count: int = field(default=0)


_BASIC: Final = "Basic"


def _digest_of(params: dict[str, str]) -> _Digest | None:
    """The Digest state of a challenge, or None when it asks for what is not supported."""
    algorithm = params.get("algorithm", "MD5").upper()
    sess = algorithm.endswith("-SESS")
    algorithm = algorithm.removesuffix("-SESS")
    if algorithm not in _ALGORITHMS or "nonce" not in params:
        return None
    qops = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
    qop = "auth" if "auth" in qops else "auth-int" if "auth-int" in qops else None
    if qops and qop is None:
        return None
    return _Digest(params.get("realm", ""), params["nonce"], algorithm, sess, qop, params.get("opaque"))


def choose(challenges: list[Challenge]) -> _Digest | str | None:
    """What to answer: the best Digest challenge offered, else Basic, else None."""
    digests = [d for scheme, params in challenges if scheme.lower() == "digest" and (d := _digest_of(params))]
    if digests:
        return min(digests, key=lambda d: list(_ALGORITHMS).index(d.algorithm))
    return _BASIC if any(scheme.lower() == "basic" for scheme, _ in challenges) else None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ChallengeAuth(requests.auth.AuthBase):
    """``(user, password)`` sent as the server's challenge asks (see the module).

    Thread-safe: one lock, held only to read or update an origin's state and take a nonce
    count.  Its repr shows no password.

    :param no_challenge: send Basic before any challenge, over plain HTTP too.
    """

    def __init__(self, user: str, password: str, *, no_challenge: bool = False) -> None:
        self._user = user
        self._password = password
        self._no_challenge = no_challenge
        self._lock = threading.Lock()
        self._known: dict[Origin, _Digest | str] = {}

    def __repr__(self) -> str:
        return f"ChallengeAuth(user={self._user!r}, password=***, no_challenge={self._no_challenge})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        setattr(request, _MARK, self)
        header = self._header(origin_of(request.url), request.method or "GET", request.url or "")
        if header is not None:
            request.headers["Authorization"] = header
        if self.answer not in request.hooks["response"]:
            request.register_hook("response", self.answer)  # type: ignore[no-untyped-call]
        return request

    def _header(self, origin: Origin, method: str, url: str) -> str | None:
        """The Authorization value for a request to ``origin``, if one goes out unasked."""
        with self._lock:
            known = self._known.get(origin)
            if isinstance(known, _Digest):
                known.count += 1
                return self._digest(known, method, url, known.count)
        if known == _BASIC or self._no_challenge or origin[0] == "https":
            return requests.auth._basic_auth_str(self._user, self._password)
        return None

    def _digest(self, state: _Digest, method: str, url: str, count: int) -> str:
        """The Digest value of request ``count`` under ``state`` (RFC 7616)."""
        hasher = _ALGORITHMS[state.algorithm]

        def digest(text: str) -> str:
            return str(hasher(text.encode("utf-8")).hexdigest())

        parts = urlsplit(url)
        uri = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        cnonce = base64.b16encode(os.urandom(8)).decode().lower()
        secret = digest(f"{self._user}:{state.realm}:{self._password}")
        if state.sess:
            secret = digest(f"{secret}:{state.nonce}:{cnonce}")
        target = digest(f"{method}:{uri}" + (f":{digest('')}" if state.qop == "auth-int" else ""))
        nc = f"{count:08x}"
        answer = digest(f"{secret}:{state.nonce}:{nc}:{cnonce}:{state.qop}:{target}" if state.qop
                        else f"{secret}:{state.nonce}:{target}")
        algorithm = state.algorithm + ("-sess" if state.sess else "")
        fields = [f"username={_quote(self._user)}", f"realm={_quote(state.realm)}", f"nonce={_quote(state.nonce)}",
                  f"uri={_quote(uri)}", f"algorithm={algorithm}", f"response={_quote(answer)}"]
        if state.opaque is not None:
            fields.append(f"opaque={_quote(state.opaque)}")
        if state.qop:
            fields += [f"qop={state.qop}", f"nc={nc}", f"cnonce={_quote(cnonce)}"]
        return "Digest " + ", ".join(fields)

    def answer(self, response: requests.Response, **send: Any) -> requests.Response:
        """The response hook: answer a 401 meant for these credentials once, by sending the
        request again (on the same connection when the 401's body is small) with the
        header its challenge asks for; any other response passes through."""
        request = response.request
        if response.status_code != 401 or getattr(request, _MARK, None) is not self:
            return response
        chosen = choose(parse_challenges(response.headers.get("WWW-Authenticate", "")))
        carried = request.headers.get("Authorization") or ""
        if chosen is None or not _worth_answering(chosen, carried):
            return response
        origin = origin_of(request.url)
        with self._lock:
            self._known[origin] = chosen
        again = request.copy()
        setattr(again, _MARK, self)
        header = self._header(origin, again.method or "GET", again.url or "")
        if header is not None:
            again.headers["Authorization"] = header
        _drain(response)
        if again._cookies is not None:  # type: ignore[attr-defined]  # a cookie the 401 set goes back
            extract_cookies_to_jar(again._cookies, request, response.raw)  # type: ignore[attr-defined,no-untyped-call]
            again.prepare_cookies(again._cookies)  # type: ignore[attr-defined]
        retried: requests.Response = response.connection.send(again, **send)
        retried.history.append(response)
        retried.request = again
        return retried


def _worth_answering(chosen: _Digest | str, carried: str) -> bool:
    """Whether a 401 to a request that carried ``carried`` may be answered with ``chosen``:
    not when the same credentials were refused for the same challenge."""
    if isinstance(chosen, str):
        return not carried.lower().startswith("basic ")
    if not carried.lower().startswith("digest "):
        return True
    sent = _NONCE_SENT.search(carried)
    return sent is None or sent[1] != chosen.nonce


def mark_of(request: requests.PreparedRequest | None) -> ChallengeAuth | None:
    """The ChallengeAuth that may answer for ``request``, if any."""
    found = getattr(request, _MARK, None)
    return found if isinstance(found, ChallengeAuth) else None


def _drain(response: requests.Response) -> None:
    """Finish with a 401 before the retry: read a small body so its connection is reused,
    else close it."""
    length = response.headers.get("Content-Length", "")
    with contextlib.suppress(requests.RequestException, OSError):
        if length.isdigit() and int(length) <= _DRAIN_LIMIT and "Transfer-Encoding" not in response.headers:
            _ = response.content
    response.close()
