"""The layers of the package, as the picture in docs/ARCHITECTURE.md draws them, kept true.

Every module's imports are read with ``ast`` (relative ones made absolute, those inside
functions and under ``TYPE_CHECKING`` included): a module may import its own part of the
package and the parts :data:`MAY_IMPORT` lists for it, nothing above.  :data:`MAY_IMPORT`
is also the table beside the picture (checked here), so an upward import, a new part left
out of the picture, an arrow the code no longer takes, or a cycle fails here, before review.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: The sources as they are in the repository (read, never imported), and the document.
ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pydownloads"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
MODULES = sorted(PACKAGE.rglob("*.py"))

#: The parts of the package (a subpackage, or a module at the top) and what each may import
#: of ours besides itself: the arrows of the picture.  ``__init__`` is the package's root.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "_version": frozenset(),
    "domain": frozenset(),
    "events": frozenset({"domain"}),
    "tracking": frozenset({"domain"}),
    "infrastructure": frozenset({"domain", "_version"}),
    "testing": frozenset(),
    "_bars": frozenset(),
    "progress": frozenset({"domain", "events", "tracking", "_bars"}),
    "downloads": frozenset({"domain", "events", "tracking", "infrastructure", "progress"}),
    "journal": frozenset({"infrastructure"}),
    "localserver": frozenset({"testing"}),
    "results": frozenset({"domain"}),
    "api": frozenset({"domain", "events", "tracking", "downloads", "results"}),
    "aio": frozenset({"domain", "events", "tracking", "downloads", "api", "results"}),
    "_shards": frozenset({"domain", "infrastructure", "results"}),
    "distributed": frozenset({"domain", "events", "downloads", "infrastructure", "results", "_shards", "_dask_gate"}),
    "_dask_gate": frozenset({"domain", "downloads"}),
    "__init__": frozenset({"_version", "domain", "events", "tracking", "downloads", "api", "results"}),
    "cli": frozenset({"_version", "domain", "events", "infrastructure", "progress", "downloads", "results",
                      "_shards", "distributed", "localserver"}),
    "__main__": frozenset({"cli"}),
}
#: Arrows taken only inside a function (or for type checking), never when the module loads:
#: the bars only for ``progress=True`` (tqdm costs every process 20-35 ms otherwise), Dask
#: only for ``--dask-scheduler`` (it is an extra).
LAZY_ONLY = frozenset({("downloads", "progress"), ("cli", "distributed")})
#: Libraries only some parts may import: the display's, the events', the journal's, Dask.
THIRD_PARTY: dict[str, frozenset[str]] = {
    "tqdm": frozenset({"progress", "distributed"}),
    "blinker": frozenset({"events"}),
    "sqlite3": frozenset({"infrastructure"}),
    "distributed": frozenset({"distributed", "_dask_gate", "cli"}),
    "dask": frozenset({"distributed", "_dask_gate", "cli"}),
}
#: Libraries imported only inside functions, but by the parts named: tqdm costs every
#: process 20-35 ms, Dask is an extra (``distributed.py`` is Dask's own room, with its bar, and
#: ``_dask_gate.py`` its cluster-wide host cap, loaded only by ``distributed.py``).
LAZY_LIBRARIES: dict[str, frozenset[str]] = {
    "tqdm": frozenset({"distributed"}),
    "distributed": frozenset({"distributed", "_dask_gate"}),
    "dask": frozenset({"distributed", "_dask_gate"}),
}


@dataclass(frozen=True)
class Import:
    """One import statement's target: the module's absolute name, and whether it runs
    only later (inside a function, or under ``TYPE_CHECKING``)."""

    module: str
    line: int
    lazy: bool


def module_name(path: Path) -> str:
    """``pydownloads.downloads.worker`` for ``pydownloads/downloads/worker.py``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """The part of the package ``module`` belongs to (``__init__`` for the root)."""
    names = module.split(".")
    return names[1] if len(names) > 1 else "__init__"


def imports_of(path: Path) -> list[Import]:
    """Every import in the file at ``path`` (inside the package), relative ones made absolute."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return list(_walk(ast.parse(path.read_text(encoding="utf-8")), package, lazy=False))


def _walk(node: ast.AST, package: str, *, lazy: bool) -> Iterator[Import]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import):
            yield from (Import(alias.name, child.lineno, lazy) for alias in child.names)
        elif isinstance(child, ast.ImportFrom):
            yield Import(_absolute(child, package), child.lineno, lazy)
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield from _walk(child, package, lazy=True)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for statement in child.body:
                yield from _walk(ast.Module(body=[statement], type_ignores=[]), package, lazy=True)
            for statement in child.orelse:
                yield from _walk(ast.Module(body=[statement], type_ignores=[]), package, lazy=lazy)
        else:
            yield from _walk(child, package, lazy=lazy)


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _ours(module: str) -> bool:
    return module == "pydownloads" or module.startswith("pydownloads.")


def _top(module: str) -> str:
    return module.partition(".")[0]


IMPORTS = {path: imports_of(path) for path in MODULES}


def _id(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


def part_graph() -> dict[str, set[str]]:
    """Which part imports which, as the code has it (lazy imports included)."""
    graph: dict[str, set[str]] = {part: set() for part in MAY_IMPORT}
    for path, found in IMPORTS.items():
        source = part_of(module_name(path))
        for target in (part_of(item.module) for item in found if _ours(item.module)):
            if target != source:
                graph.setdefault(source, set()).add(target)
    return graph


def find_cycle(graph: dict[str, set[str]] | dict[str, frozenset[str]]) -> list[str] | None:
    """A cycle of ``graph`` (its nodes in order, the first repeated at the end), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        for following in sorted(graph.get(node, ())):
            cycle = visit(following, [*path, node])
            if cycle is not None:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle is not None:
            return cycle
    return None


# -- the rule ------------------------------------------------------------------------------


def test_every_part_of_the_package_has_its_place_in_the_layers() -> None:
    parts = {part_of(module_name(path)) for path in MODULES}
    assert parts == set(MAY_IMPORT), "a new part must be placed in MAY_IMPORT and in the picture"


@pytest.mark.parametrize("path", MODULES, ids=_id)
def test_a_module_imports_only_its_own_part_and_the_layers_below(path: Path) -> None:
    source = part_of(module_name(path))
    upward = [f"line {item.line}: {item.module}" for item in IMPORTS[path] if _ours(item.module)
              and part_of(item.module) != source and part_of(item.module) not in MAY_IMPORT[source]]
    assert not upward, f"{source} may import only {sorted(MAY_IMPORT[source])}"


@pytest.mark.parametrize("path", MODULES, ids=_id)
def test_lazy_arrows_stay_lazy(path: Path) -> None:
    source = part_of(module_name(path))
    eager = [f"line {item.line}: {item.module}" for item in IMPORTS[path]
             if _ours(item.module) and (source, part_of(item.module)) in LAZY_ONLY and not item.lazy]
    assert not eager


@pytest.mark.parametrize("path", MODULES, ids=_id)
def test_libraries_stay_in_their_parts(path: Path) -> None:
    source = part_of(module_name(path))
    misplaced = [f"line {item.line}: {item.module}" for item in IMPORTS[path]
                 if source not in THIRD_PARTY.get(_top(item.module), frozenset({source}))]
    eager = [f"line {item.line}: {item.module}" for item in IMPORTS[path] if not item.lazy
             and source not in LAZY_LIBRARIES.get(_top(item.module), frozenset({source}))]
    assert not misplaced
    assert not eager, "imported only inside the function that needs it"


def test_tracking_imports_no_events_display_or_tqdm() -> None:
    # The rule in its own words: tracking is shared state, below the display.
    tracking = [path for path in MODULES if part_of(module_name(path)) == "tracking"]
    assert {path.name for path in tracking} >= {"__init__.py", "tracker.py"}
    for path in tracking:
        found = {item.module for item in IMPORTS[path]}
        assert not {m for m in found if _top(m) == "tqdm" or (_ours(m) and part_of(m) in ("events", "progress"))}


def test_no_cycle_between_the_parts() -> None:
    assert find_cycle(part_graph()) is None


def test_no_cycle_between_modules_when_they_load() -> None:
    # Within a part too: a cycle of eager imports works or fails by the order of loading.
    names = {module_name(path) for path in MODULES}
    graph: dict[str, set[str]] = {}
    for path, found in IMPORTS.items():
        source = module_name(path)
        graph[source] = set()
        for item in found:
            if item.lazy or not _ours(item.module):
                continue
            target = item.module
            while target not in names:  # ``from package import name``: the package loads
                target = target.rpartition(".")[0]
            if target != source:
                graph[source].add(target)
    assert find_cycle(graph) is None


def test_the_rule_itself_allows_no_cycle() -> None:
    assert find_cycle(MAY_IMPORT) is None


def test_every_arrow_of_the_rule_is_taken() -> None:
    # An arrow nobody takes any more makes the picture say more than the code does.
    graph = part_graph()
    unused = {(source, target) for source, targets in MAY_IMPORT.items() for target in targets
              if target not in graph[source]}
    assert not unused


def documented_rule(text: str) -> tuple[dict[str, frozenset[str]], frozenset[tuple[str, str]]]:
    """The table of the layers in docs/ARCHITECTURE.md: what each part may import, and
    which of those arrows are marked ``(lazy...)``."""
    rows = text.split("| part | imports of ours, besides itself |", 1)[1].split("\n\n", 1)[0]
    rule: dict[str, frozenset[str]] = {}
    lazy: set[tuple[str, str]] = set()
    for row in rows.splitlines()[2:]:
        _, cell, imported, _ = row.split("|")
        part = cell.strip().strip("`").removesuffix("/").removesuffix(".py")
        rule[part] = frozenset(name for name in re.findall(r"`([\w.]+)`", imported) if name in MAY_IMPORT)
        lazy.update((part, name) for name in re.findall(r"`(\w+)` \(lazy", imported))
    return rule, frozenset(lazy)


def test_the_documented_table_is_the_rule() -> None:
    rule, lazy = documented_rule(ARCHITECTURE.read_text(encoding="utf-8"))
    assert rule == MAY_IMPORT
    assert lazy == LAZY_ONLY


def test_the_picture_shows_every_part() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    picture = text.split("```", 2)[1]  # the first block of the file is the picture of the layers
    missing = [part for part in MAY_IMPORT if part not in picture]
    assert not missing


# -- the reader itself ---------------------------------------------------------------------


def test_relative_nested_and_type_checking_imports_are_seen() -> None:
    sample = PACKAGE / "tracking" / "sample.py"  # a path inside the package, never written
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import tracker\n"
        "from ..domain.models import FileConfig\n"
        "if TYPE_CHECKING:\n"
        "    from pydownloads.progress import ProgressDisplay\n"
        "def later() -> None:\n"
        "    from pydownloads.events.types import DownloadStarted\n"
        "    import tqdm.auto\n"
    )
    found = list(_walk(ast.parse(source), module_name(sample).rpartition(".")[0], lazy=False))
    assert [(item.module, item.lazy) for item in found] == [
        ("typing", False), ("pydownloads.tracking", False), ("pydownloads.domain.models", False),
        ("pydownloads.progress", True), ("pydownloads.events.types", True), ("tqdm.auto", True),
    ]


def test_parts_and_cycles_are_told_apart() -> None:
    assert part_of("pydownloads") == "__init__"
    assert part_of("pydownloads.downloads.worker") == "downloads"
    assert part_of("pydownloads.progress") == "progress"
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
