"""Fixtures for the adversarial suite: misbehaving servers, a sandboxed download folder whose
surroundings are checked untouched, and one bounded way to run a batch of downloads."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pydownloads import DownloadManager, DownloadStatus
from pydownloads.domain import FileConfig
from pydownloads.domain.models import DownloadInfo
from pydownloads.domain.retry import RetryConfig
from pydownloads.localserver import LocalServer
from tests.adversarial.rawserver import RawServer

#: Small timeouts and retries: every case ends in a few seconds at most.
FAST: dict[str, Any] = {
    "timeout": (1.0, 1.0),
    "retry_config": RetryConfig(max_retries=1, base_delay=0.01, max_delay=0.05),
    "max_workers": 2,
    "cancel_grace": 0.2,
}
#: Generous bound on one batch (a busy 2-core machine must stay well inside it).
BOUND = 10.0
#: Suffixes of the library's working files: a failed download may leave these, nothing else.
WORK_SUFFIXES = (".part", ".part.json", ".part.json.tmp")


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    with RawServer() as server:
        yield server


@pytest.fixture
def other_server() -> Iterator[RawServer]:
    """A second raw server: another port, so another origin."""
    with RawServer() as server:
        yield server


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost (trusted by nobody by default)."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    result = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {result.stderr.strip()[:200]}")
    return Certificate(cert, key)


@pytest.fixture
def tls_server(certificate: Certificate) -> Iterator[RawServer]:
    """A raw server speaking HTTPS with the self-signed ``certificate``."""
    with RawServer(tls=certificate.server_context()) as server:
        yield server


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


# -- the sandbox --------------------------------------------------------------------------------


def _tree(root: Path, skip: Path | None = None) -> dict[str, tuple[str, int, str]]:
    """Every entry below ``root`` (not below ``skip``): kind, size and content digest."""
    seen: dict[str, tuple[str, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if skip is not None and (here == skip or skip in here.parents):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = here / name
            if skip is not None and path == skip:
                continue
            rel = str(path.relative_to(root))
            if path.is_symlink():
                seen[rel] = ("link", 0, os.readlink(path))
            elif path.is_dir():
                seen[rel] = ("dir", 0, "")
            else:
                data = path.read_bytes()
                seen[rel] = ("file", len(data), hashlib.sha256(data).hexdigest())
    return seen


@dataclass
class Sandbox:
    """``parent/downloads`` is the download folder; ``parent`` holds canary files that must
    stay exactly as they were, and nothing new may appear in it."""

    parent: Path
    root: Path
    before: dict[str, tuple[str, int, str]] = field(default_factory=dict)

    def snapshot(self) -> None:
        self.before = _tree(self.parent, skip=self.root)

    def assert_contained(self) -> None:
        after = _tree(self.parent, skip=self.root)
        assert after == self.before, f"changed outside download_dir: {sorted(set(after) ^ set(self.before))}"
        # The folder itself must still be a real folder, not swapped for a link.
        assert self.root.is_dir() and not self.root.is_symlink()

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file() or p.is_symlink())

    def final_files(self) -> list[Path]:
        """Files that are not the library's working files."""
        return [p for p in self.files() if not p.name.endswith(WORK_SUFFIXES)]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    parent = tmp_path / "parent"
    root = parent / "downloads"
    root.mkdir(parents=True)
    (parent / "canary.txt").write_text("must not change")
    (parent / "etc").mkdir()
    (parent / "etc" / "passwd").write_text("root:x:0:0")
    box = Sandbox(parent, root)
    box.snapshot()
    yield box
    box.assert_contained()


# -- running a batch ----------------------------------------------------------------------------


class Recorder:
    """Every event of a manager and every log record, for leak checks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[object] = []

    def __call__(self, event: object) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: str) -> list[Any]:
        with self._lock:
            return [e for e in self.events if type(e).__name__ == kind]


@dataclass
class Outcome:
    infos: dict[str, DownloadInfo]
    elapsed: float
    finished: bool
    events: Recorder
    sandbox: Sandbox

    def info(self, url: str) -> DownloadInfo:
        return self.infos[url]

    def assert_clean_failure(self, url: str, *error_types: str) -> DownloadInfo:
        """FAILED with a clear error of one of ``error_types``; nothing under a final name."""
        info = self.infos[url]
        assert info.status is DownloadStatus.FAILED, (info.status, info.error)
        assert info.error, "a failure must say why"
        if error_types:
            assert info.error_type in error_types, (info.error_type, info.error)
        assert info.path is None or not info.path.exists() or info.path.name.endswith(WORK_SUFFIXES)
        return info

    def assert_exact(self, url: str, data: bytes) -> Path:
        """COMPLETED with exactly ``data`` under a final name inside the folder."""
        info = self.infos[url]
        assert info.status is DownloadStatus.COMPLETED, (info.status, info.error_type, info.error)
        assert info.path is not None
        root = self.sandbox.root.resolve()
        assert root in info.path.resolve().parents
        assert info.path.read_bytes() == data
        return info.path


def run_batch(
    sandbox: Sandbox,
    items: Iterable[FileConfig | str],
    *,
    bound: float = BOUND,
    **options: Any,
) -> Outcome:
    """Download ``items`` with FAST options (overridden by ``options``); never waits more
    than ``bound`` seconds for ``queue.join()`` (then shuts down hard and says so)."""
    manager = DownloadManager(download_dir=sandbox.root, **{**FAST, **options})
    recorder = Recorder()
    for name in manager.emitter.names:
        manager.emitter.on(name, recorder)
    joined = threading.Event()
    started = time.monotonic()
    try:
        manager.add_to_queue(list(items))
        waiter = threading.Thread(target=lambda: (manager.queue.join(), joined.set()), daemon=True)
        waiter.start()
        joined.wait(bound)
        elapsed = time.monotonic() - started
    finally:
        manager.shutdown(wait_for_current=joined.is_set())
    return Outcome(manager.tracker.get_all_downloads(), elapsed, joined.is_set(), recorder, sandbox)


def final_only(sandbox: Sandbox) -> list[str]:
    return sorted(p.name for p in sandbox.final_files())


# -- privileged helpers -------------------------------------------------------------------------


def mount_tmpfs(target: Path, size: str, *, read_only: bool = False) -> None:
    """Mount a small tmpfs at ``target`` or skip the test saying why."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command on this machine")
    options = f"size={size}" + (",ro" if read_only else "")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                            capture_output=True, text=True, timeout=10, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {result.stderr.strip()}")


def unmount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=10, check=False)


@pytest.fixture
def quiet_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
