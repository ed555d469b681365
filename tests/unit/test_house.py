"""The house rules of issue 15, kept true: small modules and functions, no decision taken on
an error's message text.  (The layers and their imports: test_layers.py.)

Every module of the package is read once, with ``ast``; nothing is imported or run.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pydownloads"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: String methods that decide on a text (``str(error).startswith("restarting")``).
_TEXT_TESTS = frozenset({"startswith", "endswith", "find", "rfind", "index", "rindex", "count", "__contains__"})
#: String methods that keep a text what it was, as far as deciding on it goes.
_TEXT_KEPT = frozenset({"lower", "upper", "casefold", "strip", "lstrip", "rstrip"})
_REGEX_CALLS = frozenset({"match", "search", "fullmatch", "findall", "finditer"})


def _id(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


@functools.cache
def _source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(_source(path), filename=str(path))


@pytest.mark.parametrize("path", MODULES, ids=_id)
def test_no_module_passes_400_lines(path: Path) -> None:
    assert len(_source(path).splitlines()) <= MAX_MODULE_LINES


def long_functions(tree: ast.AST) -> list[str]:
    """Functions and methods (nested ones too) longer than MAX_FUNCTION_LINES, from their
    ``def`` line to their last, docstring and comments included, decorators not."""
    return [f"{node.name} (line {node.lineno}: {node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno is not None and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


@pytest.mark.parametrize("path", MODULES, ids=_id)
def test_no_function_passes_60_lines(path: Path) -> None:
    assert not long_functions(_tree(path))


def decisions_on_error_text(tree: ast.AST) -> list[int]:
    """Lines where code tests an error's text: ``str(error).startswith(...)``, ``"x" in
    str(error)``, ``error.args[0] == ...``, a regular expression over ``repr(exc)``...

    An error is a name bound by ``except ... as name``, or a name that says so (``error``,
    ``exc``, ``err``, ``e``).  A typed error (its class, its attributes) says the same
    without depending on wording that is there for people.
    """
    errors = {node.name for node in ast.walk(tree) if isinstance(node, ast.ExceptHandler) and node.name}
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            if any(_is_error_text(operand, errors) for operand in (node.left, *node.comparators)):
                found.add(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method = node.func.attr
            tested = [node.func.value] if method in _TEXT_TESTS else node.args if method in _REGEX_CALLS else []
            if any(_is_error_text(operand, errors) for operand in tested):
                found.add(node.lineno)
    return sorted(found)


def _is_error_name(node: ast.AST, errors: set[str]) -> bool:
    if not isinstance(node, ast.Name):
        return False
    name = node.id.lower()
    return node.id in errors or name == "e" or "error" in name or name.startswith(("exc", "err"))


def _is_error_text(node: ast.AST, errors: set[str]) -> bool:
    """True for an expression that is an error's text: ``str(error)``, ``repr(exc)``,
    ``error.args[0]``, ``f"{error}"``, or one of them lowered, stripped or sliced."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _TEXT_KEPT:
        return _is_error_text(node.func.value, errors)
    if isinstance(node, ast.Subscript):
        return _is_error_text(node.value, errors)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("str", "repr", "format"):
        return bool(node.args) and _is_error_name(node.args[0], errors)
    if isinstance(node, ast.Attribute) and node.attr in ("args", "message", "msg"):
        return _is_error_name(node.value, errors)
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) and _is_error_name(part.value, errors)
                   for part in node.values)
    return False


@pytest.mark.parametrize("path", MODULES, ids=_id)
def test_no_decision_on_an_error_message(path: Path) -> None:
    assert not decisions_on_error_text(_tree(path))


# -- the checks themselves -----------------------------------------------------------------


def test_the_error_text_check_sees_what_it_is_for() -> None:
    flagged = [
        'if str(error).startswith("restarting from zero"): pass',
        'if "404" in str(exc): pass',
        'ok = repr(failure).lower().endswith("x")',
        'try:\n    pass\nexcept OSError as problem:\n    same = problem.args[0] == "No space left"',
        'import re\nfound = re.search("reset", f"{error}")',
        'later = str(err)[:9] != "timed out"',
    ]
    for source in flagged:
        tree = ast.parse(source.replace("failure", "error"))
        assert decisions_on_error_text(tree), source


def test_the_error_text_check_leaves_typed_decisions_and_messages_alone() -> None:
    allowed = [
        "if isinstance(error, OSError) and error.errno == 28: pass",
        'reason = str(error) or type(error).__name__',
        'message = f"failed: {error}"',
        'if url.startswith("https://"): pass',
        'if error.from_zero: pass',
        'if "x" in str(status): pass',
    ]
    for source in allowed:
        assert not decisions_on_error_text(ast.parse(source)), source


def test_the_length_check_counts_from_def_to_the_last_line() -> None:
    body = "\n".join(f"    x{n} = {n}" for n in range(MAX_FUNCTION_LINES - 1))
    assert not long_functions(ast.parse(f"@decorator\ndef fits():\n{body}\n"))
    assert long_functions(ast.parse(f"def too_long():\n{body}\n    one_more = 1\n"))
