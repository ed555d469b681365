"""Sphinx configuration: the API reference from the docstrings, the guides in Markdown.

Build (what .ci/run does; any warning fails it):
    sphinx-build -E -W --keep-going -n -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE / "_ext")]

from pydownloads import __version__  # noqa: E402

project = "pydownloads"
author = "the pydownloads authors"
copyright = "the pydownloads authors, MIT licence"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "myst_parser",
    "pydownloads_docs",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext"]

# Every reference must resolve: a renamed class or a broken link is a warning, and the
# build runs with -W.  There is no network here (no intersphinx), so names from outside
# the package (the standard library, requests, urllib3, blinker, tqdm, Dask) are taken on
# trust; every pydownloads.* name is checked.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!pydownloads\.)[A-Za-z_][\w]*\..+")]
# A Markdown link from these pages to a file of the repository outside docs/ (such as
# benchmarks/README.md) cannot become a link of the site: it is shown as text when the file
# exists, so that a link to a file that is gone still fails.
nitpick_ignore = [
    ("myst", str(path.with_suffix("")))
    for path in [*HERE.parent.glob("*.md"), *HERE.parent.glob("[!.]*/*.md")]
    if HERE not in path.parents
]

autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": True}
autoclass_content = "both"
autodoc_typehints = "signature"
python_maximum_signature_line_length = 100

myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

html_theme = "furo"
html_title = f"pydownloads {release}"
