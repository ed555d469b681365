"""What a DownloadManager checks and opens before it runs: its settings, collaborators,
folder, session and journal.

Whatever is opened is pushed on the caller's ``ExitStack``, so that a failure midway closes
exactly what was opened, and the manager closes it all at once when it stops.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import requests

from pydownloads.domain.errors import FileSystemError, InvalidArgumentError
from pydownloads.downloads.settings import (
    DEFAULT_MAX_WORKERS,
    OPTION_NAMES,
    DownloadSettings,
    JournalSettings,
)
from pydownloads.events.emitter import EventEmitter
from pydownloads.infrastructure.http import RetryHooks, build_session
from pydownloads.infrastructure.journal import Journal
from pydownloads.infrastructure.limits import HostGate, HostLimiter
from pydownloads.infrastructure.watch import ConnectionWatch
from pydownloads.tracking.tracker import DownloadTracker


def resolve_settings(
    settings: DownloadSettings | None, max_workers: int | None, options: Mapping[str, Any]
) -> DownloadSettings:
    """The manager's settings: ``settings`` as given, or built from its keywords.

    Both at once are refused rather than merged: which value wins would be a rule to learn,
    and ``dataclasses.replace`` already says it in the caller's code.

    :raises InvalidArgumentError: a bad value, or ``settings`` with a keyword setting.
    :raises TypeError: a keyword that is not a setting.
    """
    unknown = options.keys() - OPTION_NAMES
    if unknown:
        raise TypeError(f"DownloadManager() got an unexpected keyword argument {min(unknown)!r}")
    if settings is None:
        return DownloadSettings.from_options(DEFAULT_MAX_WORKERS if max_workers is None else max_workers, **options)
    if not isinstance(settings, DownloadSettings):
        raise InvalidArgumentError(f"settings must be a DownloadSettings, not {type(settings).__name__}")
    if max_workers is not None or options:
        name = "max_workers" if max_workers is not None else min(options)
        raise InvalidArgumentError(f"give settings or {name}, not both: vary settings with dataclasses.replace")
    return settings


def check_collaborators(
    *, tracker: DownloadTracker | None, emitter: EventEmitter | None, session: requests.Session | None
) -> None:
    """:raises InvalidArgumentError: a collaborator given is not of its type."""
    for name, value, kind in (("tracker", tracker, DownloadTracker), ("emitter", emitter, EventEmitter),
                              ("session", session, requests.Session)):
        if value is not None and not isinstance(value, kind):
            raise InvalidArgumentError(f"{name} must be a {kind.__name__}, not {type(value).__name__}")


def check_timeout(timeout: float | None) -> float | None:
    """``timeout`` when it is seconds >= 0 or None.  :raises InvalidArgumentError: else."""
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout >= 0):
        raise InvalidArgumentError(f"timeout must be seconds >= 0 or None, not {timeout!r}")
    return timeout


def prepare_folder(folder: str | PathLike[str]) -> Path:
    """``folder`` made absolute, created if missing.

    :raises InvalidArgumentError: not a path.
    :raises FileSystemError: it cannot be created, is not a folder, or is not writable.
    """
    if not isinstance(folder, (str, PathLike)):
        raise InvalidArgumentError(f"download_dir must be a path, not {type(folder).__name__}")
    path = Path(folder).expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FileSystemError(f"cannot create download_dir {path}: {error.strerror or error}", cause=error) from error
    if not path.is_dir():
        raise FileSystemError(f"download_dir {path} is not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise FileSystemError(f"download_dir {path} is not writable")
    return path


@dataclass(frozen=True)
class Connection:
    """The session the downloads use, with the hooks and watch of its adapter when the
    manager built it (None for a caller's session, which is used as given)."""

    session: requests.Session
    hooks: RetryHooks | None = None
    watch: ConnectionWatch | None = None


def open_session(
    opened: contextlib.ExitStack, settings: DownloadSettings, given: requests.Session | None,
    cancel: threading.Event,
) -> Connection:
    """``given`` as it is (the caller closes it), or a pooled session built from ``settings``
    and closed with ``opened``."""
    if given is not None:
        return Connection(given)
    timeout = settings.transfer.timeout
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    watch = ConnectionWatch(header_timeout=connect + read)
    opened.callback(watch.close)
    hooks = RetryHooks(settings.retry_config, cancel)
    session = build_session(pool_size=settings.pool_size, config=settings.retry_config, hooks=hooks,
                            watch=watch, settings=settings.session)
    opened.callback(session.close)
    return Connection(session, hooks, watch)


def open_limiter(opened: contextlib.ExitStack, settings: DownloadSettings) -> HostLimiter:
    """The run's connections per host: ``settings.connections_per_host``, and with a
    ``politeness.host_gate`` the cap shared through the gate it makes (closed with ``opened``)."""
    politeness = settings.politeness
    gate: HostGate | None = None
    if politeness.host_gate is not None and politeness.max_connections_per_host is not None:
        gate = politeness.host_gate(politeness.max_connections_per_host)
        opened.callback(gate.close)
    return HostLimiter(settings.connections_per_host, gate=gate)


def open_journal(opened: contextlib.ExitStack, settings: JournalSettings, tracker: DownloadTracker) -> Journal | None:
    """The state file of ``settings`` (None: none), its unfinished downloads queued again and
    ``tracker`` reading from it; closed with ``opened``.

    :raises StateFileError: the file is busy, corrupt or of a newer pydownloads.
    """
    if settings.state_file is None:
        return None
    journal = Journal(Path(settings.state_file))
    opened.callback(journal.close)  # on a failure below, the file stays unlocked for whoever fixes the cause
    journal.requeue_unfinished(retry_failed=settings.retry_failed)
    tracker.bind_store(journal)
    return journal
