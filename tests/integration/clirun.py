"""Run the ``pydownloads`` command in a real subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of the command: this checkout importable, no proxy unless given."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pydownloads", *args]


def run_cli(*args: str, cwd: Path, stdin: str | None = None, timeout: float = 30, **env: str) -> Any:
    """``python -m pydownloads *args`` to its end; a CompletedProcess with text output."""
    return subprocess.run(
        cli_command(*args), cwd=cwd, input=stdin if stdin is not None else "", capture_output=True,
        text=True, timeout=timeout, env=cli_env(**env),
    )
