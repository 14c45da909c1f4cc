"""kleio's warnings on stderr: one line each, never an exception.

One ``warn`` for the program's side (:mod:`kleio.client.transport`), the core's
(:mod:`kleio.trial`, which the command line imports it from) and the runner's
(:mod:`kleio.writer`). It lives in the client because the client may import nothing of the
core, while the core may import the client; and it is cheap on the run path: ``sys`` only,
and no package of the core behind it.
"""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    """Write ``kleio: warning: <message>`` to stderr, flushed.

    A closed or broken stderr (a closed pipe, a terminal gone) loses the warning, never the
    call that had something to say.
    """
    try:
        sys.stderr.write(f"kleio: warning: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
