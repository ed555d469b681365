"""Transport failures in words: what went wrong, whole, from under urllib3's wrappers.

requests and urllib3 wrap the reason a request failed several times over
(``ConnectionError(MaxRetryError("HTTPSConnectionPool(host=...): Max retries exceeded with
url: ... (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED]
...')))"))``).  :func:`describe` finds the reason inside, by type, and says it in words
without the URL: ``TLS: certificate verify failed: self-signed certificate in certificate
chain``, ``connection failed: Connection refused``, ``proxy http://proxy:3128 refused the
connection``.  ``transport.translate`` puts these words in the DownloadError it raises,
followed by the URL that answered (:func:`answered`); the transport retries report the same
words before each retry, so a retry line and the final error read alike.

Credentials a proxy URL may carry are left to the boundaries that redact them (DownloadError
and the events).
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator

import requests
import requests.exceptions as rex
import urllib3.exceptions as uex

#: How deep :func:`_chain` looks through wrappers (urllib3 and requests nest four or five).
_DEPTH = 8
#: The longest reason kept whole (OpenSSL's and the system's are far shorter).
_LONGEST = 1000
#: The connection ended under the request: for a request to a proxy, the proxy closed it.
_CLOSED = (http.client.RemoteDisconnected, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


def describe(error: BaseException, *, pool: object = None) -> str:
    """What ``error`` (from requests, urllib3, ssl or a socket) says went wrong, in words and
    without a URL.

    :param pool: the urllib3 connection pool the request went through, when the caller has
        it (urllib3's Retry does); else the one a ``MaxRetryError`` inside names.  Through a
        proxy, a failure to reach it or to tunnel through it names the proxy.
    """
    chain = list(_chain(error))
    if pool is None:
        pool = next((e.pool for e in chain if isinstance(e, uex.MaxRetryError)), None)
    words = _words(chain)
    proxy = getattr(pool, "proxy", None)
    # The proxy failed: urllib3 says so for a tunnel (https), and a plain http request
    # through a proxy has no other connection than the one to it.
    if proxy is not None and (any(isinstance(e, uex.ProxyError) for e in chain) or (
            getattr(pool, "scheme", None) == "http" and not _is_tls(chain))):
        return _proxy_words(str(proxy), chain, words)
    return words


def answered(error: BaseException, url: str) -> str:
    """The URL whose request failed: the last of the redirects that led there, else ``url``."""
    request = getattr(error, "request", None)
    last = getattr(request, "url", None)
    if not isinstance(last, str) or not last or last == _prepared(url):
        return url
    return last


def _prepared(url: str) -> str:
    """``url`` as requests sends it (quoted, a ``/`` path): what an unredirected request shows."""
    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
    except (rex.RequestException, ValueError):
        return url
    return prepared.url or url


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the errors it wraps, outermost first: urllib3's ``reason`` and
    ``original_error``, exceptions among the arguments, causes and contexts."""
    seen: set[int] = set()
    todo = [(error, 0)]
    while todo:
        current, depth = todo.pop(0)
        if id(current) in seen or depth > _DEPTH:
            continue
        seen.add(id(current))
        yield current
        inner: list[object] = [*current.args, getattr(current, "reason", None), current.__cause__, current.__context__]
        todo += [(value, depth + 1) for value in inner if isinstance(value, BaseException)]


def _words(chain: list[BaseException]) -> str:
    """The words for the innermost reason of the chain, whatever it went through."""
    if any(isinstance(e, (uex.ReadTimeoutError, rex.ReadTimeout)) for e in chain):
        return "timed out waiting for data"
    if any(isinstance(e, (uex.ConnectTimeoutError, rex.ConnectTimeout)) and not isinstance(e, uex.NewConnectionError)
           for e in chain):  # NewConnectionError subclasses ConnectTimeoutError: refused isn't slow
        return "timed out connecting"
    if any(isinstance(e, socket.timeout) for e in chain):
        return "timed out waiting for data"
    tls = next((e for e in chain if isinstance(e, (ssl.SSLError, ssl.CertificateError))), None)
    if tls is not None:
        return f"TLS: {_tls_words(tls)}"
    if _is_tls(chain):  # urllib3's own TLS errors, with no ssl module error under them
        return f"TLS: {_text(chain[-1])}"
    system = next((e for e in chain if isinstance(e, OSError) and e.strerror), None)
    if system is not None:
        return f"connection failed: {system.strerror}"
    return f"connection failed: {_text(_innermost(chain))}"


def _tls_words(error: ssl.SSLError | ssl.CertificateError) -> str:
    """OpenSSL's reason without its ``[SSL: CODE]`` and ``(_ssl.c:1006)`` wrapping."""
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_message:
        return f"certificate verify failed: {error.verify_message}"
    reason = getattr(error, "reason", None)
    if isinstance(reason, str) and reason:  # OpenSSL's code names its reason: WRONG_VERSION_NUMBER
        return reason.replace("_", " ").lower()
    return _text(error)


def _proxy_words(proxy: str, chain: list[BaseException], words: str) -> str:
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return f"proxy {proxy} refused the connection"
    if any(isinstance(e, _CLOSED) for e in chain):
        return f"proxy {proxy} closed the connection"
    original = next((e.original_error for e in chain if isinstance(e, uex.ProxyError)), None)
    if isinstance(original, OSError) and not original.strerror and original.args:
        return f"proxy {proxy} failed: {_text(original)}"  # "Tunnel connection failed: 502 Bad Gateway"
    return f"proxy {proxy} failed: {words}"


def _is_tls(chain: list[BaseException]) -> bool:
    return any(isinstance(e, (uex.SSLError, rex.SSLError, ssl.SSLError, ssl.CertificateError)) for e in chain)


def _innermost(chain: list[BaseException]) -> BaseException:
    """The last error of the chain that is not one of requests' or urllib3's wrappers."""
    wrappers = (rex.RequestException, uex.MaxRetryError, uex.ProxyError, uex.ProtocolError)
    plain = [e for e in chain if not isinstance(e, wrappers)]
    return plain[-1] if plain else chain[-1]


def _text(error: BaseException) -> str:
    """The error's own text, whole up to a bound (a server may put anything in it)."""
    text = str(error) or type(error).__name__
    return text if len(text) <= _LONGEST else text[:_LONGEST - 3] + "..."
