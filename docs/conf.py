"""Sphinx configuration of kleio's documentation.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (warnings are errors).
Only the built-in alabaster theme and Sphinx's own extensions are used: the ``docs`` extra
needs nothing but Sphinx.
"""

from __future__ import annotations

import os
import re

_here = os.path.dirname(os.path.abspath(__file__))
_init = os.path.join(_here, os.pardir, "src", "kleio", "__init__.py")
try:
    with open(_init, encoding="utf-8") as _handle:
        _match = re.search(r'^__version__ = "([^"]+)"', _handle.read(), re.MULTILINE)
except OSError:
    _match = None

project = "kleio"
author = "the kleio developers"
copyright = "the kleio developers"  # noqa: A001 - Sphinx's name
release = _match.group(1) if _match else "0.0.0"
version = release

extensions: list[str] = []
templates_path: list[str] = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
highlight_language = "console"

html_theme = "alabaster"
html_theme_options = {
    "description": "An experiment journal for command-line programs",
    "fixed_sidebar": True,
}
html_static_path: list[str] = []
