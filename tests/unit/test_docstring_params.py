"""A ``:param name:`` names a parameter of its function: the check the docs build runs
(docs/_ext/pydownloads_docs.py), here too over the whole public surface, so that a renamed
parameter fails the unit tests before it fails the API reference."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def load_extension() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pydownloads_docs", DOCS / "_ext" / "pydownloads_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


docs = load_extension()


def documented_modules() -> list[str]:
    """The modules the API reference documents (its ``public-module`` directives)."""
    found = {m for page in (DOCS / "api").glob("*.rst")
             for m in re.findall(r"^\.\. public-module:: (\S+)$", page.read_text(encoding="utf-8"), re.M)}
    return sorted(found)


def documented_callables() -> Iterator[tuple[str, Any]]:
    """Every public class and function of the documented modules, and the public methods
    (and ``__init__``) of the classes; each once."""
    seen: set[int] = set()
    for module_name in documented_modules():
        module = importlib.import_module(module_name)
        for name in docs.public_names(module):
            obj = getattr(module, name)
            if id(obj) in seen or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            seen.add(id(obj))
            yield f"{module_name}.{name}", obj
            if inspect.isclass(obj):
                for attribute, value in vars(obj).items():
                    if inspect.isfunction(value) and (attribute == "__init__" or not attribute.startswith("_")):
                        yield f"{module_name}.{name}.{attribute}", value


def docstring_lines(obj: Any) -> list[str]:
    lines = (inspect.getdoc(obj) or "").splitlines()
    init = getattr(obj, "__init__", None) if inspect.isclass(obj) else None
    if init is not None and "__init__" in vars(obj):  # autoclass_content = "both"
        lines += (inspect.getdoc(init) or "").splitlines()
    return lines


def test_the_api_reference_documents_the_public_modules() -> None:
    expected = {"pydownloads", "pydownloads.aio", "pydownloads.progress", "pydownloads.journal",
                "pydownloads.distributed", "pydownloads.localserver", "pydownloads.domain",
                "pydownloads.domain.retry", "pydownloads.downloads", "pydownloads.events", "pydownloads.tracking"}
    assert expected <= set(documented_modules())


def test_every_param_field_names_a_parameter() -> None:
    wrong = {name: unknown for name, obj in documented_callables()
             if (unknown := docs.unknown_params(obj, docstring_lines(obj)))}
    assert not wrong, f"docstrings document parameters their callables do not have: {wrong}"


def fetch(url: str, *, timeout: float = 1.0, stream: bool = False) -> None:
    """Fetch one URL.

    :param url: where from.
    :param timeout: seconds.
    :param type streaming: renamed to ``stream`` without this line following.
    :type retries: int
    """


class Client:
    """A client.

    :param base: every URL is below this one.
    :param session: gone from the signature.
    """

    def __init__(self, base: str) -> None:
        self.base = base


def forwards(*args: Any, **options: Any) -> None:
    """Takes what ``fetch`` takes.

    :param url: any keyword may be meant.
    """


@pytest.mark.parametrize(("obj", "unknown"), [
    (fetch, ["retries", "streaming"]),
    (Client, ["session"]),
    (forwards, []),
    (len, []),
])
def test_the_check_reports_each_name_that_is_no_parameter(obj: Any, unknown: list[str]) -> None:
    assert docs.unknown_params(obj, docstring_lines(obj)) == unknown


def test_public_names_follow_all_or_what_the_module_defines() -> None:
    domain = importlib.import_module("pydownloads.domain")
    retry = importlib.import_module("pydownloads.domain.retry")
    assert docs.public_names(domain) == [n for n in domain.__all__ if not n.startswith("_")]
    assert set(docs.public_names(retry)) == {"RetryConfig", "RetryPolicy"}
