"""The Python clients that benchmarks/run.py measures, each run in a child process of its own.

    python benchmarks/clients.py TOOL SPEC.json

TOOL is ``pydownloads`` (the API), ``pydownloads-cli`` (``python -m pydownloads`` run in
this process), ``requests`` (the naive baseline), ``parfive`` or ``pypdl``.  SPEC.json holds
``urls``, ``folder``, the tool's ``options`` and ``ca``: None, or the CA certificate to trust
(HTTPS workloads: ``verify=`` for pydownloads and requests, ``--ca-bundle`` for the command,
an ``ssl.SSLContext`` for aiohttp under parfive and pypdl).  The last line printed is a JSON
object: ``wall`` (seconds from just before the client is built to the end, imports
excluded), ``cpu`` (this process's CPU seconds, all threads, over the same span) and
``peak_rss_mib`` (VmHWM of this process: it starts afresh at exec, whereas ru_maxrss
would also count the parent's pages at fork).  Any failed download exits non-zero.

Only the standard library is imported at the top: the same file runs under the project's
interpreter and under the venv that holds parfive and pypdl (benchmarks/.venv-others).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def peak_rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_pydownloads(urls: list[str], folder: Path, options: dict[str, Any], ca: str | None) -> None:
    from pydownloads import DownloadManager
    from pydownloads.progress import ProgressDisplay

    progress = options.pop("progress", False)
    if ca is not None:
        options["verify"] = ca
    with open(os.devnull, "w") as sink, DownloadManager(folder, **options) as manager:
        display = ProgressDisplay(manager.emitter, manager.tracker, file=sink) if progress else None
        manager.add_to_queue(urls)
        manager.queue.join()
        if display is not None:
            display.close()
    failed = [info for info in manager.tracker.get_all_downloads().values() if info.error]
    stats = manager.tracker.get_stats()
    if failed or stats.completed != len(urls):
        raise SystemExit(f"pydownloads: {stats.completed}/{len(urls)} completed; first error: "
                         f"{failed[0].error if failed else None}")


def run_cli(urls: list[str], folder: Path, options: dict[str, Any], ca: str | None) -> None:
    import runpy

    if len(urls) == 1:
        sources = [urls[0]]
    else:
        listing = folder.parent / (folder.name + ".urls")
        listing.write_text("\n".join(urls) + "\n")
        sources = ["-i", str(listing)]
    trust = ["--ca-bundle", ca] if ca is not None else []
    sys.argv = ["pydownloads", *sources, "-d", str(folder), "-q", *trust, *options.get("args", [])]
    try:
        runpy.run_module("pydownloads", run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise SystemExit(f"pydownloads CLI exited {stop.code}") from None


def run_requests(urls: list[str], folder: Path, options: dict[str, Any], ca: str | None) -> None:
    """The naive baseline: one requests Session, a thread per download, 1 MiB iter_content."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    workers = options.get("workers", 16)
    session = requests.Session()
    # A pool as big as the thread count: without it requests would drop and reopen
    # connections, and the baseline would be a straw man.
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=workers)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # Per request: a session's verify loses to REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment.
    trust: dict[str, Any] = {} if ca is None else {"verify": ca}

    def fetch(url: str) -> None:
        with session.get(url, stream=True, timeout=60, **trust) as response:
            response.raise_for_status()
            with open(folder / url.rsplit("/", 1)[1], "wb") as file:
                for chunk in response.iter_content(1 << 20):
                    file.write(chunk)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(fetch, urls))
    session.close()


def _ssl_context(ca: str | None) -> dict[str, Any]:
    """aiohttp's request keyword for trusting ``ca`` (nothing when None)."""
    import ssl

    return {} if ca is None else {"ssl": ssl.create_default_context(cafile=ca)}


def run_parfive(urls: list[str], folder: Path, options: dict[str, Any], ca: str | None) -> None:
    from parfive import Downloader

    downloader = Downloader(progress=False, **options)
    trust = _ssl_context(ca)  # enqueue_file passes it on to aiohttp's request
    for url in urls:
        downloader.enqueue_file(url, path=folder, **trust)
    results = downloader.download()
    if results.errors:
        raise SystemExit(f"parfive: {len(results.errors)} failed; first: {results.errors[0]}")


def run_pypdl(urls: list[str], folder: Path, options: dict[str, Any], ca: str | None) -> None:
    import logging

    from pypdl import Pypdl

    logger = logging.getLogger("pypdl-benchmark")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    downloader = Pypdl(max_concurrent=options.pop("max_concurrent", 16), logger=logger)
    tasks = [{"url": url, "file_path": str(folder / url.rsplit("/", 1)[1])} for url in urls]
    downloader.start(tasks=tasks, display=False, block=True, **options, **_ssl_context(ca))  # kwargs go to aiohttp
    if downloader.failed:
        raise SystemExit(f"pypdl: {len(downloader.failed)} failed")


#: Imported before the clock starts, so that ``wall`` is the download, not the imports.
IMPORTS = {
    "pydownloads": ["pydownloads", "pydownloads.progress"],
    "pydownloads-cli": ["pydownloads", "pydownloads.cli"],
    "requests": ["requests"],
    "parfive": ["parfive"],
    "pypdl": ["pypdl"],
}

CLIENTS: dict[str, Callable[[list[str], Path, dict[str, Any], str | None], None]] = {
    "pydownloads": run_pydownloads,
    "pydownloads-cli": run_cli,
    "requests": run_requests,
    "parfive": run_parfive,
    "pypdl": run_pypdl,
}


def main() -> None:
    tool, spec_path = sys.argv[1], sys.argv[2]
    spec = json.loads(Path(spec_path).read_text())
    folder = Path(spec["folder"])
    for module in IMPORTS[tool]:
        importlib.import_module(module)
    started, cpu = time.perf_counter(), time.process_time()
    CLIENTS[tool](spec["urls"], folder, dict(spec["options"]), spec.get("ca"))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_rss_mib": peak_rss_mib()}))


if __name__ == "__main__":
    main()
