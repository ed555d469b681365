"""The public surface of pydownloads: names, module paths and import-time side effects."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pydownloads

REPO_ROOT = Path(__file__).resolve().parents[2]

SEED_PATHS = {
    "pydownloads.domain": ["FileConfig", "DownloadInfo", "DownloadStatus"],
    "pydownloads.domain.retry": ["RetryConfig", "RetryPolicy"],
    "pydownloads.downloads": ["DownloadManager", "DownloadWorker", "RetryHandler", "ErrorCategoriser"],
    "pydownloads.tracking": ["DownloadTracker"],
    "pydownloads.events": [
        "DownloadQueued",
        "DownloadStarted",
        "ChunkDownloaded",
        "DownloadCompleted",
        "DownloadFailed",
        "DownloadRetrying",
        "DownloadCancelled",
        "EventEmitter",
    ],
    "pydownloads.aio": ["AsyncDownloadManager"],
}


def test_all_is_sorted_without_duplicates() -> None:
    names = pydownloads.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert all(isinstance(name, str) for name in names)


@pytest.mark.parametrize("name", pydownloads.__all__)
def test_every_name_in_all_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from pydownloads import {name}", namespace)
    assert namespace[name] is getattr(pydownloads, name)


def test_all_covers_the_core_names() -> None:
    expected = {
        "DownloadManager",
        "DownloadTracker",
        "EventEmitter",
        "FileConfig",
        "RetryConfig",
        "RetryPolicy",
        "DownloadError",
        "InvalidArgumentError",
        "__version__",
    }
    assert expected <= set(pydownloads.__all__)
    assert isinstance(pydownloads.__version__, str)
    assert pydownloads.__version__


@pytest.mark.parametrize(
    ("module_name", "name"),
    [(module, name) for module, names in SEED_PATHS.items() for name in names],
)
def test_seed_module_paths_exist(module_name: str, name: str) -> None:
    module = importlib.import_module(module_name)
    obj = getattr(module, name)
    assert isinstance(obj, type)
    assert obj.__name__ == name


def test_top_level_names_are_the_same_objects_as_the_seed_paths() -> None:
    from pydownloads.domain import FileConfig
    from pydownloads.domain.retry import RetryConfig
    from pydownloads.downloads import DownloadManager
    from pydownloads.events import EventEmitter
    from pydownloads.tracking import DownloadTracker

    assert pydownloads.FileConfig is FileConfig
    assert pydownloads.RetryConfig is RetryConfig
    assert pydownloads.DownloadManager is DownloadManager
    assert pydownloads.EventEmitter is EventEmitter
    assert pydownloads.DownloadTracker is DownloadTracker


_PROBE = """
import json, logging, threading
before_threads = threading.active_count()
before_names = sorted(t.name for t in threading.enumerate())
import pydownloads
import pydownloads.aio
logger = logging.getLogger("pydownloads")
print(json.dumps({
    "before": before_threads,
    "after": threading.active_count(),
    "before_names": before_names,
    "after_names": sorted(t.name for t in threading.enumerate()),
    "handlers": [type(h).__name__ for h in logger.handlers],
    "root_handlers": [type(h).__name__ for h in logging.getLogger().handlers],
    "level": logger.level,
}))
"""


def test_import_adds_only_a_null_handler_and_starts_no_threads() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["after"] == report["before"], report
    assert report["after_names"] == report["before_names"]
    assert report["handlers"] == ["NullHandler"]
    assert report["root_handlers"] == []
    assert report["level"] == 0  # NOTSET: the application decides
