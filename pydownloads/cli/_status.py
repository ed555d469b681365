"""``pydownloads status [STATEFILE|DIR]``: what a state file says, read without writing it.

A folder without a state file but with Dask jobs (``--dask-scheduler``) shows each job,
summed over its shards' state files; so does a job's own folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pydownloads._shards import SHARD_FOLDER, job_folders, job_status
from pydownloads.cli._args import EXIT_OK, EXIT_USAGE, PROG, build_status_parser, state_file_of
from pydownloads.cli._report import failure_line, record
from pydownloads.domain.errors import StateFileError
from pydownloads.domain.models import DownloadStatus
from pydownloads.infrastructure.journal import JournalStatus, read_status

#: The order counts are shown in: how it ended first, then what is left.
_ORDER = (DownloadStatus.COMPLETED, DownloadStatus.FAILED, DownloadStatus.CANCELLED,
          DownloadStatus.PENDING, DownloadStatus.IN_PROGRESS)


def show_status(argv: Sequence[str]) -> int:
    """Print the status of a state file; 0, or 2 if it is missing or unusable."""
    parser = build_status_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        path = _target(args)
    except ValueError as error:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"{PROG} status: error: {error}\n")
        return EXIT_USAGE
    try:
        statuses = [job_status(job) for job in _dask_jobs(path)] or [read_status(path)]
    except StateFileError as error:
        sys.stderr.write(f"{PROG} status: error: {error}\n")
        return EXIT_USAGE
    for status in statuses:
        if args.json:
            sys.stdout.write(json.dumps(status_record(status)) + "\n")
        else:
            sys.stdout.writelines(line + "\n" for line in status_lines(status))
    sys.stdout.flush()
    return EXIT_OK


def _dask_jobs(path: Path) -> list[Path]:
    """The Dask jobs to show for the state file ``path`` of a folder that has none: the
    folder's jobs, or the folder itself if it is a job's."""
    if path.exists():
        return []
    if path.parent.parent.name == SHARD_FOLDER and path.parent.is_dir():
        return [path.parent]
    return job_folders(path.parent)


def _target(args: argparse.Namespace) -> Path:
    """The state file to read: the one given, the one in the folder given, or -d's."""
    if args.target is not None and args.dir is not None:
        raise ValueError("give a state file or folder, or -d DIR, not both")
    if args.target is None:
        return state_file_of(None, args.dir if args.dir is not None else Path("."))
    target = Path(args.target).expanduser()
    return state_file_of(None, target) if target.is_dir() else target


def status_lines(status: JournalStatus) -> list[str]:
    """``FILE: 5 downloads: 3 completed, 1 failed, 1 pending``, then each failure."""
    counts = [f"{status.counts[s.value]} {s.value}" for s in _ORDER if status.counts.get(s.value)]
    if not counts:
        return [f"{status.path}: no downloads"]
    total = f"{status.total} download" + ("" if status.total == 1 else "s")
    return [f"{status.path}: {total}: {', '.join(counts)}"] + [failure_line(info) for info in status.failures]


def status_record(status: JournalStatus) -> dict[str, object]:
    """The ``--json`` object: path, total, counts by status (all of them), each failure."""
    return {
        "state_file": str(status.path),
        "total": status.total,
        "counts": {s.value: status.counts.get(s.value, 0) for s in _ORDER},
        "failures": [record(info) for info in status.failures],
    }
