"""What the tests of kleio.snapshot share: a code snapshot of a directory, and the changes of
one kind that refuse a resume."""

from __future__ import annotations

from kleio.git import find_root as find_repo_root
from kleio.snapshot.code import code_snapshot
from kleio.snapshot.compare import code_changes, env_changes


def changes(old, new, kind):
    """The lines of the changes of ``kind`` that refuse a resume (what the gate lists)."""
    compare = code_changes if kind == "code" else env_changes
    return [change.message for change in compare(old, new) if change.refuses]


def snap(path):
    return code_snapshot(str(path), find_repo_root(str(path)), "train.py")
