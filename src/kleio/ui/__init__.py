"""The local dashboard of ``kleio ui`` (the ``ui`` extra: Starlette and uvicorn).

Nothing here is imported on the run path. This module itself imports no third-party
package: :mod:`kleio.ui.server` does, and :func:`require` turns a missing one into one line
naming the extra to install.
"""

from __future__ import annotations

import importlib.util

from kleio.errors import KleioError

UI_INSTALL = "pip install 'kleio[ui]'"


class MissingExtra(KleioError):
    """An optional extra that a command needs is not installed."""

    exit_code = 64


def require(*modules: str, command: str, install: str) -> None:
    """Raise :class:`MissingExtra` unless every one of ``modules`` can be imported."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtra(f"{command} needs {', '.join(missing)}, which is not installed",
                           f"install it with: {install}")
