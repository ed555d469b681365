"""Credentials never leave the program: where text goes out (errors, events, logs), the
``user:password@`` of every URL in it is replaced by ``***@``.

Redaction happens at those boundaries, once: :class:`~pydownloads.domain.errors.DownloadError`
redacts its message and URLs, every event its URL and text, and every logger made with
:func:`get_logger` the text of each record it emits.  Inside, URLs travel as they are (the
tracker and the journal key downloads by them).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

#: The userinfo of a URL anywhere in a text (``scheme://user:password@``); greedy up to the
#: last ``@`` before the path, so a password holding ``@`` goes too.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s'\"]*@")


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``."""
    if "@" not in url:  # the usual case, and the cheap one
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc="***@" + host))


def redact_text(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it replaced by ``***@``."""
    return _USERINFO.sub(r"\1***@", text) if "@" in text else text


class _RedactingFilter(logging.Filter):
    """Redacts the message and the text arguments of every record of the logger it is on.

    Stateless; filters may rewrite the records they pass (the logging documentation says so).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


def _redacted(arg: object) -> object:
    if isinstance(arg, str):
        return redact_text(arg)
    if isinstance(arg, BaseException):  # ours are redacted already; a foreign one may quote a URL
        return redact_text(str(arg))
    return arg


_FILTER = _RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the redacting filter on it (once): whatever the
    caller logs, no URL's credentials reach a handler."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
