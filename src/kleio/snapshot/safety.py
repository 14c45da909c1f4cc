"""What a journal's code snapshot may say, checked before anything is built from it.

The code snapshot is read from the journal, which other people (a team's MongoDB, a shared
file) can write. Before anything is written (:mod:`kleio.codestate`, :mod:`kleio.checkout`),
every name it holds is checked: commits and digests are hex, paths are relative, normalized,
and stay out of ``.git``.
"""

from __future__ import annotations

import os
import re
from typing import Any

from kleio.errors import UsageError


class UnsafeSnapshot(UsageError):
    """The journal's code snapshot would write outside the new directory, or into ``.git``.

    Only a journal edited by hand (or by someone else) says such things: kleio records paths
    that git listed. So nothing is written, and the message says which entry it was.
    """


COMMIT = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1 or SHA-256 repositories
DIGEST = re.compile(r"[0-9a-f]{64}")
# Characters that macOS (HFS+) ignores in names: there ".g\u200cit" is ".git".
_IGNORED_IN_NAMES = dict.fromkeys(
    [*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)


def clipped(text: str) -> str:
    """``text`` cut to a length one line of an error message can hold."""
    return text if len(text) <= 200 else text[:200] + "..."


def refuse(what: str, why: str) -> UnsafeSnapshot:
    return UnsafeSnapshot(
        f"refusing the trial's recorded code: {clipped(what)} {why}",
        "the journal may have been altered; nothing was written",
    )


def is_git_dir_name(part: str) -> bool:
    # Also what a case-insensitive (macOS, Windows) or NTFS file system takes for .git:
    # ".GIT", ".g\u200cit", ".git.", "git~1", ".git::$INDEX_ALLOCATION".
    name = part.split(":", 1)[0].translate(_IGNORED_IN_NAMES).rstrip(". ").casefold()
    return name in (".git", "git~1")


def safe_path(path: object, what: str) -> str:
    """``path`` if it names a place inside a checkout and outside its ``.git``; else raise.

    Raises:
        UnsafeSnapshot: an absolute path, ``..``, ``.``, an empty part, a NUL byte, or a part
            that is (or a file system takes for) ``.git``.
    """
    if not isinstance(path, str) or not path:
        raise refuse(f"{what} {path!r}", "is not a path")
    label = f"{what} {path!r}"
    if "\0" in path:
        raise refuse(label, "holds a NUL byte")
    if path.startswith("/") or os.path.isabs(path):
        raise refuse(label, "is an absolute path")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise refuse(label, "leaves the directory (or is not a normalized path)")
        if is_git_dir_name(part):
            raise refuse(label, "is inside .git")
    try:
        longest = max(len(part.encode("utf-8", "surrogateescape")) for part in path.split("/"))
    except UnicodeEncodeError:
        raise refuse(label, "is not a file name") from None
    if longest > 255:  # NAME_MAX of every common file system: git could not have listed it
        raise refuse(label, "has a name longer than 255 bytes")
    return path


def check_snapshot(code: dict[str, Any]) -> None:
    """Check every name a git code snapshot holds before it is used (see :func:`safe_path`)."""
    commit = code.get("commit")
    if commit is not None and not (isinstance(commit, str) and COMMIT.fullmatch(commit)):
        raise refuse(f"commit {commit!r}", "is not a commit id")
    digest = code.get("diff_sha256")
    if digest is not None and not (isinstance(digest, str) and DIGEST.fullmatch(digest)):
        raise refuse(f"diff digest {digest!r}", "is not a sha256 digest")
    untracked = code.get("untracked") or []
    if not isinstance(untracked, list):
        raise refuse("list of untracked files", "is not a list")
    for item in untracked:
        if not isinstance(item, dict):
            raise refuse(f"untracked file {item!r}", "is not a file entry")
        safe_path(item.get("path"), "untracked file")
        sha = item.get("sha256")
        if not (isinstance(sha, str) and DIGEST.fullmatch(sha)):
            raise refuse(f"untracked file {item.get('path')!r}", "has no sha256 digest")
