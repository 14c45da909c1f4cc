"""Snapshots taken at every start, one module per concern (DESIGN §2).

* :mod:`kleio.snapshot.code`: the commit, the uncommitted diff, the untracked sources and
  the config files a command names outside the repository;
* :mod:`kleio.snapshot.environment`: the interpreter, distributions, platform, GPU driver
  and a documented list of variables;
* :mod:`kleio.snapshot.host`: the host name, user, CPUs, memory and GPUs;
* :mod:`kleio.snapshot.compare`: what differs between two snapshots, and what refuses a
  resume.

Nothing is imported here: ``kleio python train.py`` loads the three snapshot modules it
needs, and the comparison only on a resume or a ``kleio diff``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import; annotations are strings anyway
    from typing import Any


def changes(old: dict[str, Any], new: dict[str, Any], kind: str) -> list[str]:
    """The lines of the ``code`` or ``env`` changes that refuse a resume.

    Transitional, for callers not yet on :func:`kleio.snapshot.compare.code_changes` and
    :func:`kleio.snapshot.compare.env_changes` (which also list what does not refuse).
    """
    from kleio.snapshot.compare import refusing_lines

    return refusing_lines(old, new, kind)
