"""The docs build fails on what CI promises it fails on: a ``:param:`` naming no parameter,
a reference to nothing and a code example that renders as a quotation.  Each case builds a
one-page site with the project's extension (docs/_ext) in a separate Sphinx process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="sphinx is in requirements-dev.txt")

EXTENSION = Path(__file__).resolve().parents[2] / "docs" / "_ext"

GOOD = '''
def fetch(url: str, *, timeout: float = 1.0) -> None:
    """Fetch one URL, as :func:`fetch` says.

    :param url: where from.
    :param timeout: seconds.
    """
'''


def build(tmp_path: Path, module: str, page: str = "api/sample") -> subprocess.CompletedProcess[str]:
    (tmp_path / "sample_module.py").write_text(textwrap.dedent(module), encoding="utf-8")
    source = tmp_path / "src"
    (source / "api").mkdir(parents=True)
    (source / "conf.py").write_text(textwrap.dedent(f"""\
        import sys
        sys.path[:0] = [{str(tmp_path)!r}, {str(EXTENSION)!r}]
        extensions = ["sphinx.ext.autodoc", "pydownloads_docs"]
        nitpicky = True
        """), encoding="utf-8")
    (source / "index.rst").write_text(f"Sample\n======\n\n.. toctree::\n\n   {page}\n", encoding="utf-8")
    (source / f"{page}.rst").write_text("API\n===\n\n.. automodule:: sample_module\n   :members:\n", encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-E", "-b", "html",
         str(source), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )


def test_a_correct_module_builds(tmp_path: Path) -> None:
    result = build(tmp_path, GOOD)
    assert result.returncode == 0, result.stderr


def test_a_renamed_parameter_fails_the_build(tmp_path: Path) -> None:
    result = build(tmp_path, GOOD.replace("timeout: float", "deadline: float"))
    assert result.returncode != 0
    assert ":param timeout: but there is no such parameter" in result.stderr


def test_a_reference_to_nothing_fails_the_build(tmp_path: Path) -> None:
    result = build(tmp_path, GOOD.replace(":func:`fetch`", ":func:`fetch_all`"))
    assert result.returncode != 0
    assert "fetch_all" in result.stderr


def test_an_example_without_its_double_colon_fails_the_build(tmp_path: Path) -> None:
    result = build(tmp_path, GOOD.replace('"""Fetch one URL, as :func:`fetch` says.\n',
                                          '"""Fetch one URL, as :func:`fetch` says.\n\n        fetch("x")\n'))
    assert result.returncode != 0
    assert "renders as a quotation" in result.stderr
