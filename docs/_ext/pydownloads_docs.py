"""Sphinx extension for the pydownloads API reference.

Two things Sphinx does not do by itself:

* ``.. public-module:: NAME`` documents a public module's ``__all__`` once: the package page
  groups ``pydownloads.__all__`` by where each name is defined, and a subpackage page documents
  only what the package does not re-export (and links to the rest), so no object is
  described twice and a new public name shows up without editing the pages.
* Every docstring's ``:param name:`` and ``:type name:`` must name a parameter of the
  documented callable; a renamed parameter whose docstring was not updated is a warning,
  which ``sphinx-build -W`` turns into a failed build.

:func:`unknown_params` imports nothing from Sphinx so that the unit tests can use it.
"""

from __future__ import annotations

import ast
import enum
import importlib
import importlib.util
import inspect
import re
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

PACKAGE = "pydownloads"

# Where a name of pydownloads.__all__ is defined -> the heading it is listed under on the
# package page; the first matching prefix wins, anything else goes under the last heading.
GROUPS: tuple[tuple[str, str], ...] = (
    ("pydownloads.api", "Downloading"),
    ("pydownloads.downloads", "Downloading"),
    ("pydownloads.domain.errors", "Errors"),
    ("pydownloads.domain", "Configuration and results"),
    ("pydownloads.results", "Configuration and results"),
    ("pydownloads.events", "Events"),
    ("pydownloads.tracking", "Tracking"),
    ("", "More"),
)

_FIELD = re.compile(r"^\s*:(param|type)\s+(?:[^:]*\s)?\*{0,2}([A-Za-z_]\w*)\s*:")


def unknown_params(obj: Any, lines: Iterable[str]) -> list[str]:
    """Names in ``:param name:`` / ``:type name:`` fields of ``lines`` that are not
    parameters of ``obj`` (a function, method or class: a class's are its constructor's).

    Nothing is reported when ``obj`` has no signature or takes ``**kwargs`` (any keyword
    may be meant).
    """
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    parameters = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return []
    known = {p.name for p in parameters}
    found = (_FIELD.match(line) for line in lines)
    return sorted({m.group(2) for m in found if m is not None} - known)


def public_names(module: Any) -> list[str]:
    """``module.__all__`` without dunders; without ``__all__``, what autodoc documents then:
    the public names the module defines itself."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items() if getattr(v, "__module__", None) == module.__name__]
    return [name for name in names if not name.startswith("_")]


def exported_by_package(module: Any) -> list[str]:
    """Names of ``module.__all__`` that ``pydownloads`` re-exports as the very same object."""
    package = importlib.import_module(PACKAGE)
    top = set(public_names(package))
    return [n for n in public_names(module) if n in top and getattr(package, n) is getattr(module, n)]


def _auto(name: str, obj: Any) -> str:
    if inspect.isclass(obj):
        return "autoexception" if issubclass(obj, BaseException) else "autoclass"
    return "autofunction" if inspect.isfunction(obj) else "autodata"


def package_lines(package: Any) -> list[str]:
    """reST for the package page: its docstring, then ``__all__`` under GROUPS' headings."""
    grouped: dict[str, list[str]] = {heading: [] for _, heading in GROUPS}
    for name in public_names(package):
        where = getattr(getattr(package, name), "__module__", "") or ""
        heading = next(h for prefix, h in GROUPS if not prefix or where == prefix or where.startswith(prefix + "."))
        grouped[heading].append(name)
    lines = [f".. automodule:: {package.__name__}", ""]
    for heading, names in grouped.items():
        if not names:
            continue
        lines += [heading, "-" * len(heading), ""]
        for name in names:
            obj = getattr(package, name)
            lines += [f".. {_auto(name, obj)}:: {package.__name__}.{name}"]
            lines += ["   :members:", ""] if inspect.isclass(obj) else [""]
    return lines


def module_lines(module: Any) -> list[str]:
    """reST for a public module's page: what only it exports, then links to the rest."""
    shared = exported_by_package(module)
    lines = [f".. automodule:: {module.__name__}", "   :members:"]
    if shared:
        lines.append(f"   :exclude-members: {', '.join(shared)}")
    lines.append("")
    if shared:
        links = ", ".join(f":py:obj:`{PACKAGE}.{n}`" for n in shared)
        lines += [f"Also exported here, and documented with the package: {links}.", ""]
    return lines


def find_object(dotted: str) -> Any:
    """The object a dotted ``pydownloads`` name points to (module attributes followed), or
    ``None``."""
    if dotted.split(".", 1)[0] != PACKAGE:
        return None
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj
    return None


def canonical_name(obj: Any) -> str | None:
    """``module.qualname`` of a class or function, where autodoc registers it too."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else None


def stand_in(module: str, name: str) -> type:
    """A class that says ``module.name`` wherever autodoc prints it, and takes ``[...]`` as
    the type stubs' generic classes do; nothing is imported."""
    namespace = {"__module__": module, "__qualname__": name, "__class_getitem__": classmethod(types.GenericAlias)}
    return type(name, (), namespace)


def add_type_checking_names(module: Any) -> None:
    """Give ``module`` the names its ``if TYPE_CHECKING:`` blocks import, as stand-ins, so that
    autodoc can evaluate every annotation (one it cannot evaluate spoils the whole signature
    and every reference in it).  Names the module already has are left alone; docs build only."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return
    for block in tree.body:
        if not (isinstance(block, ast.If) and ast.unparse(block.test).endswith("TYPE_CHECKING")):
            continue
        for statement in block.body:
            if isinstance(statement, ast.ImportFrom):
                relative = "." * statement.level + (statement.module or "")
                source = importlib.util.resolve_name(relative, module.__package__)
                for alias in statement.names:
                    vars(module).setdefault(alias.asname or alias.name, stand_in(source, alias.name))
            elif isinstance(statement, ast.Import):
                for alias in statement.names:
                    imported = importlib.import_module(alias.name)
                    if alias.asname:
                        vars(module).setdefault(alias.asname, imported)
                    else:
                        top = alias.name.split(".", 1)[0]
                        vars(module).setdefault(top, sys.modules[top])


def setup(app: Any) -> dict[str, Any]:
    from docutils import nodes
    from sphinx.util import logging
    from sphinx.util.docutils import SphinxDirective

    logger = logging.getLogger(__name__)

    class PublicModule(SphinxDirective):
        """``.. public-module:: NAME``: see the module docstring."""

        required_arguments = 1

        def run(self) -> list[nodes.Node]:
            module = importlib.import_module(self.arguments[0])
            make: Callable[[Any], list[str]] = package_lines if module.__name__ == PACKAGE else module_lines
            return self.parse_text_to_nodes("\n".join(make(module)), allow_section_headings=True)

    def check_params(
        app: Any, what: str, name: str, obj: Any, options: Any, lines: Sequence[str]
    ) -> None:
        if what not in {"function", "method", "class", "exception"}:
            return
        for param in unknown_params(obj, lines):
            logger.warning("%s: the docstring documents :param %s: but there is no such parameter",
                           name, param, type="pydownloads", subtype="param")

    def private_or_elsewhere(app: Any, env: Any, node: Any, contnode: Any) -> Any:
        """A Python reference Sphinx could not resolve: if it names a real pydownloads object,
        link to where that object is documented, or show plain text if it is private (a type
        in a public signature, a private module); a name that exists nowhere stays a warning."""
        if node.get("refdomain") != "py":
            return None
        target, module, cls = node["reftarget"], node.get("py:module"), node.get("py:class")
        # A name in a docstring is read where the docstring was written: the class's own
        # module, which is not the page's module for a re-exported class.
        home = getattr(find_object(f"{module}.{cls}") if module and cls else None, "__module__", None)
        scopes = [module, f"{module}.{cls}" if module and cls else None, home]
        for dotted in [target, *(f"{scope}.{target}" for scope in scopes if scope)]:
            obj = find_object(dotted)
            if obj is None:
                continue
            canonical = canonical_name(obj)
            python = env.get_domain("py")
            if canonical and canonical != dotted and python.objects.get(canonical):
                found = python.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], canonical,
                                            node, contnode)
                if found is not None:
                    return found
            return contnode
        return None

    def no_block_quotes(app: Any, doctree: nodes.document) -> None:
        """In the API pages an indented block is meant as code: a quotation means the line
        before it lacks its ``::``."""
        if not app.env.docname.startswith("api/"):
            return
        for quote in doctree.findall(nodes.block_quote):
            logger.warning("an indented block renders as a quotation; end the line before it with ::",
                           location=quote, type="pydownloads", subtype="blockquote")

    done: set[str] = set()

    def complete_annotations(app: Any, obj: Any, bound_method: bool) -> None:
        module = sys.modules.get(getattr(obj, "__module__", None) or "")
        if module is not None and module.__name__ not in done:
            done.add(module.__name__)
            add_type_checking_names(module)

    def readable_signature(
        app: Any, what: str, name: str, obj: Any, options: Any, signature: str | None, annotation: str | None
    ) -> tuple[str | None, str | None]:
        # A default without a source to show (a dataclass field's ``<factory>``) is no Python:
        # the signature would then be split at every comma.  ``...`` is, and the docstring
        # says what the default is.
        if signature is not None:
            signature = re.sub(r"=(\s*)<[^<>]*>", r"=\1...", signature)
        return signature, annotation

    def show_enum_members(app: Any, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
        # An enum's members are its API (DownloadStatus.COMPLETED) even without a docstring.
        return False if isinstance(obj, enum.Enum) and not name.startswith("_") else None

    app.add_directive("public-module", PublicModule)
    app.connect("autodoc-skip-member", show_enum_members)
    app.connect("autodoc-process-signature", readable_signature)
    app.connect("autodoc-before-process-signature", complete_annotations)
    app.connect("missing-reference", private_or_elsewhere)
    app.connect("doctree-read", no_block_quotes)
    app.connect("autodoc-process-docstring", check_params)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
