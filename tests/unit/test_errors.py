"""Unit tests for the exception tree in pydownloads.domain.errors.

Instances are built from each class's constructor signature, so that a class added to the
module later is checked by the same tests (subclassing, pickling, names) without edits here.
"""

from __future__ import annotations

import builtins
import inspect
import pickle
import threading

import pytest

from pydownloads.domain import errors
from pydownloads.domain.errors import (
    DestinationConflictError,
    DownloadCancelledError,
    DownloadError,
    DownloadTimeoutError,
    FileSystemError,
    HTTPStatusError,
    IncompleteDownloadError,
    InvalidArgumentError,
    RedirectError,
    TLSError,
    TransferError,
)

ERROR_CLASSES = [
    obj
    for _, obj in inspect.getmembers(errors, inspect.isclass)
    if issubclass(obj, BaseException) and obj.__module__ == errors.__name__
]
CAUSE_CLASSES = [cls for cls in ERROR_CLASSES if "cause" in inspect.signature(cls.__init__).parameters]

URL = "https://***@example.com/file.bin"


def _value_for(name: str, annotation: str, index: int) -> object:
    """A distinctive value for a keyword argument, chosen from its name and annotation."""
    known: dict[str, object] = {"status": 503, "retry_after": 7.5, "path": "/tmp/downloads/a.bin"}
    if name in known:
        return known[name]
    kind = annotation.split("|")[0].strip()
    if kind == "int":
        return 1000 + index
    if kind == "float":
        return 0.25 + index
    return f"{name}-{index}"


def _make(cls: type[DownloadError], cause: BaseException | None = None) -> tuple[DownloadError, dict[str, object]]:
    """An instance of ``cls`` with every keyword argument set, and the attributes it must carry."""
    kwargs: dict[str, object] = {}
    for index, (name, parameter) in enumerate(inspect.signature(cls.__init__).parameters.items()):
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        if name == "url":
            kwargs[name] = URL
        elif name == "cause":
            kwargs[name] = cause
        else:
            kwargs[name] = _value_for(name, str(parameter.annotation), index)
    expected = {name: value for name, value in kwargs.items() if name != "cause"}
    return cls(f"{cls.__name__} happened", **kwargs), expected


class _LockHolder(Exception):
    """An exception that cannot be pickled: it holds a lock."""

    def __init__(self) -> None:
        super().__init__("holds a lock")
        self.lock = threading.Lock()


class _KeywordOnly(Exception):
    """Pickles fine, but cannot be rebuilt: BaseException.__reduce__ drops keyword arguments."""

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code


def _ids(cls: type) -> str:
    return cls.__name__


# -- the tree -----------------------------------------------------------------------------------


def test_the_module_defines_at_least_the_documented_classes() -> None:
    assert {cls.__name__ for cls in ERROR_CLASSES} >= {
        "DownloadError",
        "InvalidArgumentError",
        "HTTPStatusError",
        "IncompleteDownloadError",
        "TransferError",
        "DownloadTimeoutError",
        "TLSError",
        "RedirectError",
        "DestinationConflictError",
        "FileSystemError",
        "DownloadCancelledError",
    }


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=_ids)
def test_every_error_subclasses_download_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, DownloadError)
    assert issubclass(cls, Exception)


def test_hierarchy_matches_the_documented_tree() -> None:
    assert issubclass(InvalidArgumentError, ValueError)
    assert issubclass(DownloadTimeoutError, TransferError)
    assert issubclass(TLSError, TransferError)
    for cls in (HTTPStatusError, IncompleteDownloadError, RedirectError, FileSystemError, DownloadCancelledError):
        assert not issubclass(cls, TransferError)
    assert not issubclass(DownloadError, ValueError)


@pytest.mark.parametrize("cls", [cls for cls in ERROR_CLASSES if cls is not InvalidArgumentError], ids=_ids)
def test_only_invalid_argument_error_is_a_value_error(cls: type[BaseException]) -> None:
    assert not issubclass(cls, ValueError)


def test_invalid_argument_error_is_caught_as_value_error() -> None:
    with pytest.raises(ValueError, match="bad input"):
        raise InvalidArgumentError("bad input")


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=_ids)
def test_no_class_shadows_a_builtin_name(cls: type[BaseException]) -> None:
    assert not hasattr(builtins, cls.__name__)


# -- attributes ---------------------------------------------------------------------------------


def test_leaves_carry_their_facts_as_attributes() -> None:
    status = HTTPStatusError("HTTP 503", status=503, retry_after=7.5, url=URL)
    assert (status.status, status.retry_after, status.url) == (503, 7.5, URL)
    short = IncompleteDownloadError("short body", expected=100, received=42, url=URL)
    assert (short.expected, short.received) == (100, 42)
    conflict = DestinationConflictError("taken", path="/d/a.bin", other_url="https://example.com/o", url=URL)
    assert (conflict.path, conflict.other_url, conflict.url) == ("/d/a.bin", "https://example.com/o", URL)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=_ids)
def test_every_error_keeps_message_url_and_attributes(cls: type[DownloadError]) -> None:
    error, expected = _make(cls)
    assert str(error) == f"{cls.__name__} happened"
    assert error.args == (f"{cls.__name__} happened",)
    assert error.url == URL
    for name, value in expected.items():
        assert getattr(error, name) == value


def test_defaults_are_none() -> None:
    error = DownloadError("plain")
    assert (error.url, error.cause) == (None, None)
    assert HTTPStatusError("HTTP 404", status=404).retry_after is None
    assert DestinationConflictError("c", path="p", other_url="o").cause is None


def test_errors_chain_with_raise_from() -> None:
    cause = OSError("disk full")
    with pytest.raises(FileSystemError) as info:
        try:
            raise cause
        except OSError as error:
            raise FileSystemError("cannot write", url=URL, cause=error) from error
    assert info.value.__cause__ is cause
    assert info.value.cause is cause


# -- pickling -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=_ids)
def test_every_error_round_trips_through_pickle(cls: type[DownloadError]) -> None:
    cause = ConnectionResetError(104, "reset by peer") if cls in CAUSE_CLASSES else None
    error, expected = _make(cls, cause)
    restored = pickle.loads(pickle.dumps(error))
    assert type(restored) is cls
    assert str(restored) == str(error) == f"{cls.__name__} happened"
    assert restored.args == error.args
    assert restored.url == URL
    for name, value in expected.items():
        assert getattr(restored, name) == value
    assert {k: v for k, v in vars(restored).items() if k != "cause"} == {
        k: v for k, v in vars(error).items() if k != "cause"
    }
    if cause is None:
        assert restored.cause is None
    else:
        assert type(restored.cause) is ConnectionResetError
        assert restored.cause.args == (104, "reset by peer")


def test_known_attributes_round_trip_through_pickle() -> None:
    originals = [
        HTTPStatusError("HTTP 429", status=429, retry_after=12.0, url=URL),
        IncompleteDownloadError("short", expected=100, received=42, url=URL),
        DestinationConflictError("taken", path="/d/a.bin", other_url="https://example.com/o", url=URL),
    ]
    restored = [pickle.loads(pickle.dumps(error)) for error in originals]
    assert (restored[0].status, restored[0].retry_after, restored[0].url) == (429, 12.0, URL)
    assert (restored[1].expected, restored[1].received) == (100, 42)
    assert (restored[2].path, restored[2].other_url) == ("/d/a.bin", "https://example.com/o")
    assert [str(error) for error in restored] == ["HTTP 429", "short", "taken"]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_works_with_every_protocol(protocol: int) -> None:
    error = HTTPStatusError("HTTP 503", status=503, retry_after=7.5, url=URL)
    restored = pickle.loads(pickle.dumps(error, protocol=protocol))
    assert (restored.status, restored.retry_after, str(restored)) == (503, 7.5, "HTTP 503")


@pytest.mark.parametrize("cls", CAUSE_CLASSES, ids=_ids)
def test_unpicklable_cause_becomes_its_repr(cls: type[DownloadError]) -> None:
    cause = _LockHolder()
    with pytest.raises(TypeError):
        pickle.dumps(cause)
    error, _ = _make(cls, cause)
    restored = pickle.loads(pickle.dumps(error))
    assert restored.cause == repr(cause) == "_LockHolder('holds a lock')"
    assert str(restored) == str(error)
    # The original keeps its real cause: only the pickled copy carries text.
    assert error.cause is cause


def test_pickled_error_with_download_error_cause_keeps_it_structured() -> None:
    inner = HTTPStatusError("HTTP 503", status=503, url=URL)
    outer = TransferError("wrapped", url=URL, cause=inner)
    restored = pickle.loads(pickle.dumps(outer))
    assert isinstance(restored.cause, HTTPStatusError)
    assert restored.cause.status == 503


def test_extra_attributes_set_after_construction_survive_pickle() -> None:
    error = TransferError("with extra", url=URL)
    error.attempts = 4  # type: ignore[attr-defined]
    restored = pickle.loads(pickle.dumps(error))
    assert restored.attempts == 4


def test_cause_that_pickles_but_cannot_be_unpickled_does_not_break_loading() -> None:
    error = TransferError("odd cause", url=URL, cause=_KeywordOnly("boom", code=7))
    restored = pickle.loads(pickle.dumps(error))
    assert str(restored) == "odd cause"
