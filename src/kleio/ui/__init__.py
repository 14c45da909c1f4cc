"""The local dashboard of ``kleio ui`` (the ``ui`` extra: Starlette and uvicorn).

Nothing here is imported on the run path. This module itself imports no third-party
package: :mod:`kleio.ui.server` does, and :func:`require` turns a missing one into one line
naming the extra to install.
"""

from __future__ import annotations

import importlib.util

from kleio.errors import MissingExtra

UI_INSTALL = "pip install 'kleio[ui]'"


def require(*modules: str, command: str, install: str) -> None:
    """Raise :class:`MissingExtra` unless every one of ``modules`` can be imported."""
    missing = [name for name in modules if not _importable(name)]
    if missing:
        raise MissingExtra(
            f"{command} needs {', '.join(missing)}, which is not installed",
            f"install it with: {install}",
        )


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False
