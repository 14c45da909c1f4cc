"""What a runner tells on stderr while it runs: one line each, never an exception."""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    try:
        sys.stderr.write(f"kleio: warning: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
