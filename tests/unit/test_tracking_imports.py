"""``tracking/`` is shared state only: it imports no events, no display and no tqdm.

The progress display, a receiver of events, lives in ``pydownloads.progress`` above it; this
test keeps every module of the folder from growing those imports back.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pydownloads.tracking

TRACKING = Path(pydownloads.tracking.__file__).parent
#: What tracking may import of ours: the domain below it, and itself.
ALLOWED = ("pydownloads.domain", "pydownloads.tracking")


def imported_modules(source: Path) -> set[str]:
    """Every module ``source`` imports, relative imports made absolute."""
    package = "pydownloads.tracking"
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0]
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module is not None:
                found.add(node.module)
    return found


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


MODULES = sorted(TRACKING.glob("*.py"))


def test_the_folder_has_modules_to_check() -> None:
    assert {path.name for path in MODULES} >= {"__init__.py", "tracker.py"}


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_a_tracking_module_imports_no_events_display_or_tqdm(module: Path) -> None:
    imports = imported_modules(module)
    assert not any(_within(name, "tqdm") for name in imports)
    ours = {name for name in imports if _within(name, "pydownloads")}
    assert all(any(_within(name, allowed) for allowed in ALLOWED) for name in ours), sorted(ours)


def test_relative_and_nested_imports_are_seen(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from . import tracker\n"
        "def later() -> None:\n"
        "    from pydownloads.events.types import DownloadStarted\n"
        "    import tqdm.auto\n",
        encoding="utf-8",
    )
    assert imported_modules(sample) == {"pydownloads.tracking", "pydownloads.events.types", "tqdm.auto"}
