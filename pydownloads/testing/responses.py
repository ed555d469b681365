"""What a :class:`~pydownloads.testing.LocalServer` answers: routes, HTTP rules and faults
turned into a response, with no socket and no shared state (pure functions)."""

from __future__ import annotations

import email.utils
import http
import time
from dataclasses import dataclass

from pydownloads.testing.auth import AuthRequired
from pydownloads.testing.faults import Fault, IgnoreRange, Slow, Status, WrongRange
from pydownloads.testing.records import Headers

SERVER_VERSION = "pydownloads-test"


@dataclass(frozen=True)
class FileRoute:
    """A file served from memory, with how it is served."""

    data: bytes
    etag: str | None
    last_modified: float | None
    content_type: str
    content_disposition: str | None
    accept_ranges: bool
    send_length: bool
    rate: int | None
    auth: AuthRequired | None = None


@dataclass(frozen=True)
class RedirectRoute:
    """A path that redirects to ``location`` with ``status``."""

    location: str
    status: int


Route = FileRoute | RedirectRoute


@dataclass
class Response:
    """A response about to be sent; the handler may still cut the body or close after it."""

    status: int
    headers: list[tuple[str, str]]
    body: memoryview
    rate: int | None = None
    close: bool = False


def unauthorized(challenges: list[tuple[str, str]]) -> Response:
    """A 401 with ``challenges`` (``WWW-Authenticate`` headers) and a short body."""
    body = b"unauthorized\n"
    headers = [*challenges, ("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    return Response(401, headers, memoryview(body))


def http_date(timestamp: float) -> str:
    """``timestamp`` as an HTTP date (RFC 9110, GMT)."""
    return email.utils.formatdate(timestamp, usegmt=True)


def head_bytes(response: Response) -> bytes:
    """The status line and headers of ``response``, ready for the socket."""
    try:
        reason = http.HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Date: {http_date(time.time())}",
        f"Server: {SERVER_VERSION}",
        *(f"{name}: {value}" for name, value in response.headers),
    ]
    if response.close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_range(value: str, total: int) -> tuple[int, int] | bool | None:
    """Return ``(first, last)``, ``False`` if unsatisfiable, ``None`` to ignore it."""
    unit, _, spec = value.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_s, dash, last_s = spec.strip().partition("-")
    first_s, last_s = first_s.strip(), last_s.strip()
    if not dash or not (first_s.isdigit() or first_s == "") or not (last_s.isdigit() or last_s == ""):
        return None
    if first_s == "":  # suffix range: the last N bytes
        if last_s == "":
            return None
        length = int(last_s)
        return (max(0, total - length), total - 1) if length > 0 and total > 0 else False
    first = int(first_s)
    if last_s and int(last_s) < first:
        return None
    if first >= total:
        return False
    last = min(int(last_s), total - 1) if last_s else total - 1
    return first, last


def not_modified(entry: FileRoute, headers: Headers) -> bool:
    """RFC 9110: If-None-Match wins; else If-Modified-Since against Last-Modified."""
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return entry.etag is not None and (entry.etag.removeprefix("W/") in tags or "*" in tags)
    since = headers.get("If-Modified-Since")
    if since is None or entry.last_modified is None:
        return False
    try:
        return int(entry.last_modified) <= int(email.utils.parsedate_to_datetime(since).timestamp())
    except (TypeError, ValueError):
        return False


def if_range_matches(value: str, entry: FileRoute) -> bool:
    """Whether an ``If-Range`` value names ``entry`` as it is (a strong ETag or the date)."""
    value = value.strip()
    if value.startswith(('"', "W/")):
        etag = entry.etag
        return etag is not None and not etag.startswith("W/") and value == etag
    if entry.last_modified is None:
        return False
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return int(parsed.timestamp()) == int(entry.last_modified)


def response_for(route: Route | None, headers: Headers, fault: Fault | None) -> Response:
    """The answer to a request for ``route`` (None: nothing there) with ``fault`` applied."""
    if isinstance(fault, Status):
        given = Headers(fault.headers)
        out = [(k, v) for k, v in given.items() if k.lower() != "connection"]
        if "Content-Length" not in given:
            out.append(("Content-Length", str(len(fault.body))))
        close = given.get("Connection", "").lower() == "close"
        return Response(fault.code, out, memoryview(fault.body), close=close)
    if isinstance(route, RedirectRoute):
        return Response(route.status, [("Location", route.location), ("Content-Length", "0")], memoryview(b""))
    if route is None:
        body = b"not found\n"
        hdrs = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        return Response(404, hdrs, memoryview(body))
    if isinstance(fault, IgnoreRange):
        headers = Headers((k, v) for k, v in headers.items() if k.lower() != "range")
    elif isinstance(fault, WrongRange) and headers.get("Range"):
        parsed = parse_range(headers["Range"], len(route.data))
        if isinstance(parsed, tuple):
            first = min(max(0, parsed[0] + fault.shift), parsed[1])
            rest = {k: v for k, v in headers.items() if k.lower() not in ("range", "if-range")}
            headers = Headers([*rest.items(), ("Range", f"bytes={first}-{parsed[1]}")])
    response = file_response(route, headers)
    if isinstance(fault, Slow):
        response.rate = fault.rate
    return response


def file_response(entry: FileRoute, headers: Headers) -> Response:
    """``entry`` answered by HTTP's rules: 200, 206 for a range, 304, or 416."""
    total = len(entry.data)
    body = memoryview(entry.data)
    status = 200
    out: list[tuple[str, str]] = [("Content-Type", entry.content_type)]
    if entry.etag is not None:
        out.append(("ETag", entry.etag))
    if entry.last_modified is not None:
        out.append(("Last-Modified", http_date(entry.last_modified)))
    if entry.content_disposition is not None:
        out.append(("Content-Disposition", entry.content_disposition))
    if not_modified(entry, headers):
        return Response(304, [h for h in out if h[0] in ("ETag", "Last-Modified")], memoryview(b""))
    range_header = headers.get("Range")
    if entry.accept_ranges:
        out.append(("Accept-Ranges", "bytes"))
        if_range = headers.get("If-Range")
        if range_header is not None and (if_range is None or if_range_matches(if_range, entry)):
            parsed = parse_range(range_header, total)
            if parsed is False:
                out.append(("Content-Range", f"bytes */{total}"))
                return Response(416, [*out, ("Content-Length", "0")], memoryview(b""))
            if isinstance(parsed, tuple):
                first, last = parsed
                status, body = 206, body[first : last + 1]
                out.append(("Content-Range", f"bytes {first}-{last}/{total}"))
    if entry.send_length:
        out.append(("Content-Length", str(len(body))))
    return Response(status, out, body, entry.rate, close=not entry.send_length)
