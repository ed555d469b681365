"""The declared dependency ranges stay one list: setup.py, requirements.txt and the pins of
the min job (requirements-min.txt) agree, so the floors CI tests are the floors users get."""

from __future__ import annotations

import ast
import os
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def setup_keyword(name: str) -> object:
    """The literal value of ``setup(name=...)`` in setup.py, read without running it."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "setup"]
    assert len(calls) == 1, "setup.py should call setup() once"
    for keyword in calls[0].keywords:
        if keyword.arg == name:
            return ast.literal_eval(keyword.value)
    raise AssertionError(f"setup.py passes no {name}= to setup()")


def requirement_lines(name: str) -> list[str]:
    """The requirement lines of a requirements file: no comments, blank lines or ``-r``."""
    lines = (line.split("#", 1)[0].strip() for line in (ROOT / name).read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def install_requires() -> list[Requirement]:
    value = setup_keyword("install_requires")
    assert isinstance(value, list)
    return [Requirement(line) for line in value]


def declared() -> list[Requirement]:
    """Every dependency setup.py declares: install_requires and every extra's."""
    extras = setup_keyword("extras_require")
    assert isinstance(extras, dict)
    return install_requires() + [Requirement(line) for lines in extras.values() for line in lines]


def floor(requirement: Requirement) -> Version:
    """The version a ``>=`` specifier starts at (every declared dependency must have one)."""
    lows = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
    assert len(lows) == 1, f"{requirement} should say its oldest version with one >="
    return lows[0]


def min_pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in requirement_lines("requirements-min.txt"):
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"requirements-min.txt should pin exactly: {line}"
        pins[canonicalize_name(requirement.name)] = Version(spec.version)
    return pins


def test_requirements_txt_says_what_setup_py_says() -> None:
    in_setup = {canonicalize_name(r.name): r.specifier for r in install_requires()}
    in_file = {canonicalize_name(r.name): r.specifier for r in map(Requirement, requirement_lines("requirements.txt"))}
    assert in_file == in_setup


def test_every_declared_dependency_has_an_upper_and_a_lower_bound() -> None:
    for requirement in install_requires():
        assert floor(requirement)
        assert any(spec.operator == "<" for spec in requirement.specifier), f"{requirement} has no upper bound"


def test_the_min_job_pins_exactly_the_declared_floors() -> None:
    assert min_pins() == {canonicalize_name(r.name): floor(r) for r in declared()}


def test_the_test_tools_pin_nothing_that_setup_py_declares() -> None:
    # requirements-test.txt goes into the min job too: a pin of, say, urllib3 there would
    # quietly replace the floor under test.
    tools = {canonicalize_name(Requirement(line).name) for line in requirement_lines("requirements-test.txt")}
    assert not tools & {canonicalize_name(r.name) for r in declared()}


@pytest.mark.skipif(not os.environ.get("PYDOWNLOADS_MIN_DEPS"), reason="only in the min job (tox -e min, .ci/run)")
def test_the_min_job_runs_on_the_floors() -> None:
    installed = {name: Version(metadata.version(name)) for name in min_pins()}
    assert installed == min_pins()
