"""The exception tree of pydownloads.

Every error the library raises for a download derives from :class:`DownloadError`::

    DownloadError                      (url, cause)
    ├── InvalidArgumentError           also a ValueError: bad caller input, raised at once
    ├── HTTPStatusError                (status): the server answered with an error status
    ├── IncompleteDownloadError        (expected, received): the body ended early or ran long
    ├── TransferError                  the connection failed, reset or timed out
    │   ├── DownloadTimeoutError       connect or read timeout, or slower than min_speed
    │   │   └── DeadlineExceededError  the download's total deadline passed (not retried)
    │   └── TLSError                   the TLS handshake or certificate check failed
    ├── RedirectError                  too many redirects, or a redirect to a URL not allowed
    ├── VerificationError              the bytes are not the ones the caller expected
    │   ├── ChecksumMismatchError      (algorithm, expected, actual)
    │   └── SizeMismatchError          (expected, actual)
    ├── ResumeMismatchError            a resumed or ranged response did not fit: restart
    ├── DestinationConflictError       (path, other_url): two items resolved to one file
    ├── FileSystemError                the destination could not be written
    ├── StateFileError                 the journal is corrupt, locked or of a newer schema
    ├── DownloadCancelledError         shutdown stopped the download
    └── DownloadsFailedError           (failures): downloads of a batch did not complete

Leaves carry facts as attributes, not prose.  Every error survives pickling (they cross
process boundaries): a ``cause`` that does not pickle is carried as its text.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydownloads.domain.models import DownloadInfo

from pydownloads.domain.redact import redact_text, redact_url


def _rebuild(cls: type[DownloadError], args: tuple[Any, ...], state: dict[str, Any]) -> DownloadError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


def _picklable(value: object) -> object:
    try:
        pickle.loads(pickle.dumps(value))  # some objects pickle but cannot be rebuilt
    except Exception:
        return repr(value)
    return value


class DownloadError(Exception):
    """Root of every pydownloads error.

    :param message: what went wrong, for people.
    :param url: the download it concerns, when there is one.
    :param cause: the lower-level exception, also chained with ``raise ... from``.

    An error is where text leaves the program: the credentials of every URL in ``message``
    and ``url`` are replaced by ``***@`` here, once, whoever raises it.
    """

    def __init__(self, message: str, *, url: str | None = None, cause: BaseException | None = None) -> None:
        super().__init__(redact_text(message))
        self.url = redact_url(url) if url is not None else None
        self.cause: object = cause

    def __reduce__(self) -> tuple[Any, ...]:
        state = dict(self.__dict__)
        state["cause"] = _picklable(state.get("cause"))
        return (_rebuild, (type(self), self.args, state))


class InvalidArgumentError(DownloadError, ValueError):
    """A caller passed a wrong type or value; raised before anything is downloaded."""


class HTTPStatusError(DownloadError):
    """The server answered with a status that is not a success.

    :ivar status: the HTTP status code.
    :ivar retry_after: seconds the server asked to wait (Retry-After), when it said.
    :ivar auth_schemes: a 401's authentication schemes offered (WWW-Authenticate), in order.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        retry_after: float | None = None,
        url: str | None = None,
        cause: BaseException | None = None,
        auth_schemes: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, url=url, cause=cause)
        self.status = status
        self.retry_after = retry_after
        self.auth_schemes = auth_schemes


class IncompleteDownloadError(DownloadError):
    """The body did not have the length the server announced.

    :ivar expected: bytes announced (Content-Length).
    :ivar received: bytes actually received.
    """

    def __init__(
        self,
        message: str,
        *,
        expected: int,
        received: int,
        url: str | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message, url=url, cause=cause)
        self.expected = expected
        self.received = received


class TransferError(DownloadError):
    """The connection could not be made, or broke while the body was streaming."""


class DownloadTimeoutError(TransferError):
    """Connecting, or waiting for the next bytes, took longer than the timeout."""


class DeadlineExceededError(DownloadTimeoutError):
    """The download took longer than its total deadline; not retried."""


class TLSError(TransferError):
    """The TLS handshake failed or the certificate did not verify (not retried)."""


class RedirectError(DownloadError):
    """Too many redirects, or a redirect to a URL that cannot be downloaded (not retried)."""


class VerificationError(DownloadError):
    """The download finished, but its bytes are not what the caller said they would be.

    Retried once (the bytes may have been damaged in flight), then the download fails.

    :ivar final: True on the failure that is not retried any more.
    """

    final: bool = False


class ChecksumMismatchError(VerificationError):
    """The file's digest is not the expected one.

    :ivar algorithm: e.g. ``"sha256"``.
    :ivar expected: the digest the caller gave.
    :ivar actual: the digest of the bytes received.
    """

    def __init__(self, message: str, *, algorithm: str, expected: str, actual: str, url: str | None = None) -> None:
        super().__init__(message, url=url)
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual


class SizeMismatchError(VerificationError):
    """The server's size for the file is not the ``expected_size`` the caller gave.

    :ivar expected: the size the caller gave.
    :ivar actual: the size the server announced or sent.
    """

    def __init__(self, message: str, *, expected: int, actual: int, url: str | None = None) -> None:
        super().__init__(message, url=url)
        self.expected = expected
        self.actual = actual


class ResumeMismatchError(DownloadError):
    """A ranged response did not fit what was asked (416, wrong Content-Range, changed
    validators): the bytes kept so far are dropped and the download starts over.

    :ivar from_zero: True once the bytes kept were dropped for this error and its message
        says so: the next attempt starts from byte zero.
    """

    def __init__(
        self, message: str, *, url: str | None = None, cause: BaseException | None = None, from_zero: bool = False
    ) -> None:
        super().__init__(message, url=url, cause=cause)
        self.from_zero = from_zero


class DestinationConflictError(DownloadError):
    """Another download of the same run already owns the destination file.

    :ivar path: the contested destination.
    :ivar other_url: the download that owns it.
    """

    def __init__(self, message: str, *, path: str, other_url: str, url: str | None = None) -> None:
        super().__init__(message, url=url)
        self.path = path
        self.other_url = redact_url(other_url)


class FileSystemError(DownloadError):
    """The destination folder or file could not be created or written."""


class StateFileError(DownloadError):
    """The state file (journal) cannot be used: corrupt, not a journal, written by a newer
    pydownloads, or open in another process.  Never silently reset."""


class DownloadCancelledError(DownloadError):
    """The download was stopped by a shutdown before it finished."""


class DownloadsFailedError(DownloadError):
    """Downloads of a batch did not complete (``DownloadResults.raise_for_failures``).

    :ivar failures: the final :class:`DownloadInfo` of each download that failed or was
        cancelled, in the batch's order, their URLs redacted as the message shows them.
    """

    def __init__(self, message: str, *, failures: Sequence[DownloadInfo], url: str | None = None) -> None:
        super().__init__(message, url=url)
        self.failures = failures
