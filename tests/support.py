"""Helpers every test folder may use (unit, integration, adversarial)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path


def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False).

    For conditions that no event or hook announces; assert on the result, so a timeout
    fails the test where it happened.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())  # a last look: a slow machine may have slept past the deadline


def saved_ranges(sidecar: Path) -> list[list[int]]:
    """The done ranges a ``<name>.part.json`` holds now ([] while it is missing or half-written)."""
    try:
        return json.loads(sidecar.read_text())["ranges"]  # type: ignore[no-any-return]
    except (OSError, ValueError, KeyError):
        return []
