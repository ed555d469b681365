"""The connections of the manager's pools: http.client's response with a cheaper header parser.

http.client parses every response's header block with the ``email`` package's feed parser
(~40 us a response, about a twelfth of a small download's CPU).  A block of plain
``name: value`` lines, which is what servers send, is parsed here into the same
``HTTPMessage`` (the same fields in the same order, the same values, no defects) in a tenth
of that; a block with anything else in it (a folded line, a line without a colon, a bare
CR, a name that is not a token) goes to http.client's own parser, as before.

The classes are set on the pools of one adapter (``ConnectionCls``), never on urllib3 or
http.client themselves.
"""

from __future__ import annotations

import http.client
import re
from email.policy import compat32
from typing import Any, BinaryIO

from urllib3.connection import HTTPConnection, HTTPSConnection

#: One header line as servers send it: a token, a colon, a value with no CR or LF in it.
_FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):([^\r\n]*)\r?\n")
#: The empty line that ends a header block.
_END = (b"\r\n", b"\n")


def parse_header_block(fp: BinaryIO) -> http.client.HTTPMessage:
    """Read a response's header block from ``fp`` (up to and including its empty line)
    and return what ``http.client.parse_headers`` would.

    :raises http.client.HTTPException: a line too long, or too many headers (http.client's
        limits, from its own reader).
    """
    lines: list[bytes] = http.client._read_headers(fp)  # type: ignore[attr-defined,unused-ignore]
    if lines[-1] not in _END:  # the connection ended in the header block
        return _parse_lines(lines)
    fields = []
    for line in lines[:-1]:
        match = _FIELD.fullmatch(line)
        if match is None:  # anything unusual: the email parser, with its defects and folding
            return _parse_lines(lines)
        # As email's compat32 policy keeps it: blanks before the value dropped, after kept.
        fields.append((match[1].decode("ascii"), match[2].decode("iso-8859-1").lstrip(" \t")))
    message = _Message()
    for name, value in fields:
        message[name] = value
    message.set_payload("")  # what the email parser leaves after an empty body
    return message


class _Message(http.client.HTTPMessage):
    """http.client's header message, read without email's policy call for each ASCII value
    (what compat32 gives back for a str without surrogates is the str itself): ``get`` and
    ``items``, which http.client and urllib3 call for every response."""

    def get(self, name: str, failobj: Any = None) -> Any:
        if self.policy is not compat32:
            return super().get(name, failobj)
        name = name.lower()
        for key, value in self._headers:  # type: ignore[attr-defined]
            if key.lower() == name:
                return value if value.__class__ is str and value.isascii() else \
                    self.policy.header_fetch_parse(key, value)
        return failobj

    def items(self) -> list[tuple[str, Any]]:
        if self.policy is not compat32:
            return super().items()
        fetch = self.policy.header_fetch_parse
        return [(key, value) if value.__class__ is str and value.isascii() else (key, fetch(key, value))
                for key, value in self._headers]  # type: ignore[attr-defined]


def _parse_lines(lines: list[bytes]) -> http.client.HTTPMessage:
    """http.client's own parse of header lines already read."""
    import email.parser

    text = b"".join(lines).decode("iso-8859-1")
    message = email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text)
    assert isinstance(message, http.client.HTTPMessage)
    return message


class _Response(http.client.HTTPResponse):
    """http.client's response, its header block read by :func:`parse_header_block`.

    ``begin`` is http.client's (the same in Python 3.10 to 3.13) but for that one call.
    """

    def begin(self) -> None:
        if self.headers is not None:  # started already
            return
        if self.debuglevel > 0:  # http.client prints what it parses: its own begin
            super().begin()
            return
        while True:  # until a response other than 100 Continue
            version, status, reason = self._read_status()
            if status != http.client.CONTINUE:
                break
            http.client._read_headers(self.fp)  # type: ignore[attr-defined,unused-ignore]  # the 100 Continue headers
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        self.headers = self.msg = parse_header_block(self.fp)
        self._frame(status)

    def _frame(self, status: int) -> None:
        """How the body ends: chunked, a length, or the connection's close (http.client's rules)."""
        encoding = self.headers.get("transfer-encoding")
        self.chunked = bool(encoding and encoding.lower() == "chunked")
        if self.chunked:
            self.chunk_left = None
        self.will_close = self._check_close()  # type: ignore[attr-defined]
        self.length = None
        length = self.headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:  # nonsensical: ignored
                    self.length = None
        if status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED) or 100 <= status < 200 \
                or self._method == "HEAD":  # type: ignore[attr-defined]
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True  # no length, not chunked: the body ends with the connection


class Connection(HTTPConnection):
    """urllib3's connection with :class:`_Response` as its response."""

    response_class: Any = _Response


class TLSConnection(HTTPSConnection):
    """urllib3's TLS connection with :class:`_Response` as its response."""

    response_class: Any = _Response
