"""Files behind authentication: a route's :class:`AuthRequired`, and the :class:`AuthGate`
that checks requests against it (Basic, and Digest with its nonces and nonce counts)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pydownloads.testing.records import Headers

__all__ = ["AuthRequired"]

_HASHES: Final[dict[str, Callable[[bytes], Any]]] = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)\s*(?:,|$)')


@dataclass(frozen=True)
class AuthRequired:
    """A file served only to requests that carry ``user`` and ``password``; any other gets a
    401 challenging with each of ``schemes``, in order.

    :param schemes: the schemes offered: ``"Digest"`` and ``"Basic"`` are checked; any other
        (``"Negotiate"``) is offered only, and never accepted.
    :param algorithm: Digest's, ``"MD5"`` or ``"SHA-256"``.
    :param realm: the realm of the challenges.

    Digest: each challenge hands out a new nonce (qop ``auth``); a request is accepted once
    per nonce count, so a replayed or shared count is refused, and an unknown nonce is
    answered with ``stale=true``.
    """

    user: str
    password: str
    schemes: tuple[str, ...] = ("Digest",)
    algorithm: str = "MD5"
    realm: str = "pydownloads-test"

    def __post_init__(self) -> None:
        if self.algorithm not in _HASHES:
            raise ValueError(f"algorithm must be one of {', '.join(_HASHES)}")
        if not self.schemes:
            raise ValueError("schemes must name at least one scheme")


class AuthGate:
    """The Digest nonces a server handed out and the nonce counts each has seen.  Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, set[str]] = {}

    def check(self, rule: AuthRequired, method: str, target: str, headers: Headers) -> list[tuple[str, str]] | None:
        """None when the request may have the file, else the headers of the 401."""
        given = headers.get("Authorization") or ""
        scheme, _, value = given.partition(" ")
        stale = False
        if scheme.lower() == "basic" and "Basic" in rule.schemes and self._basic_ok(rule, value):
            return None
        if scheme.lower() == "digest" and "Digest" in rule.schemes:
            verdict = self._digest_ok(rule, method, target, value)
            if verdict is True:
                return None
            stale = verdict is None
        return [("WWW-Authenticate", self._challenge(rule, name, stale)) for name in rule.schemes]

    def _challenge(self, rule: AuthRequired, scheme: str, stale: bool) -> str:
        if scheme == "Basic":
            return f'Basic realm="{rule.realm}"'
        if scheme != "Digest":
            return scheme
        nonce = secrets.token_hex(16)
        with self._lock:
            self._counts[nonce] = set()
        return (f'Digest realm="{rule.realm}", qop="auth", algorithm={rule.algorithm}, nonce="{nonce}", '
                f'opaque="0p4que"' + (", stale=true" if stale else ""))

    @staticmethod
    def _basic_ok(rule: AuthRequired, value: str) -> bool:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return decoded == f"{rule.user}:{rule.password}"

    def _digest_ok(self, rule: AuthRequired, method: str, target: str, value: str) -> bool | None:
        """True: accepted; False: refused; None: a nonce this server never gave (stale)."""
        fields = {m[1].lower(): m[2].strip('"') for m in _PARAM.finditer(value)}
        nonce, count = fields.get("nonce", ""), fields.get("nc", "")
        with self._lock:
            seen = self._counts.get(nonce)
            if seen is None:
                return None
            if count in seen or not re.fullmatch(r"[0-9a-f]{8}", count):
                return False
            seen.add(count)

        def digest(text: str) -> str:
            return str(_HASHES[rule.algorithm](text.encode()).hexdigest())

        secret = digest(f"{rule.user}:{rule.realm}:{rule.password}")
        expected = digest(f"{secret}:{nonce}:{count}:{fields.get('cnonce', '')}:auth:{digest(f'{method}:{target}')}")
        return (fields.get("username") == rule.user and fields.get("uri") == target
                and fields.get("qop") == "auth" and secrets.compare_digest(fields.get("response", ""), expected))
