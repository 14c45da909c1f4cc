"""Rebuild a trial's code from its snapshot: the commit, the recorded diff, the untracked sources.

Used by ``kleio diff`` (a unified diff between two code states) and :mod:`kleio.checkout`
(a new directory holding one). The commit is read with git from a repository that has it: the one
holding the current directory, else the one the trial ran in. Trees are built in a temporary
index and a temporary object directory that borrows the repository's objects, so nothing is
written to the user's repository.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

from kleio import git
from kleio.errors import UsageError
from kleio.process import Finished
from kleio.snapshot.code import MAX_CONFIG_BLOB
from kleio.snapshot.masking import restore_patch
from kleio.snapshot.safety import (  # noqa: F401 - UnsafeSnapshot and safe_path re-exported
    DIGEST,
    UnsafeSnapshot,
    check_snapshot,
    clipped,
    refuse,
    safe_path,
)
from kleio.storage.base import Store


class CodeUnavailable(UsageError):
    """The code of a trial cannot be rebuilt here (commit or blob missing)."""


def _patch_paths(repo: str, patch: bytes, env: dict[str, str] | None) -> list[str]:
    """The paths ``git apply`` would touch (as git itself reads the patch), each checked."""
    listed = _git(repo, "apply", "--numstat", "-z", "-", env=env, input=patch, check=False)
    if listed.returncode != 0:
        raise CodeUnavailable(
            f"the recorded diff is not a patch git can read ({_last_line(listed.stderr)})"
        )
    records = listed.stdout.split(b"\0")
    paths: list[str] = []
    index = 0
    while index < len(records):
        fields = records[index].split(b"\t", 2)
        index += 1
        if len(fields) != 3:
            continue
        # A rename or copy: an empty path, then its two paths as records of their own.
        names = [fields[2]] if fields[2] else records[index : index + 2]
        index += 0 if fields[2] else 2
        for name in names:
            paths.append(safe_path(name.decode("utf-8", "surrogateescape"), "file in the diff"))
    return paths


def _last_line(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return clipped(lines[-1]) if lines else "no message"


def _base_reader(
    repo: str, commit: str | None, env: dict[str, str] | None
) -> Callable[[str], bytes | None]:
    def read(path: str) -> bytes | None:
        if commit is None:
            return None
        shown = _git(repo, "cat-file", "blob", f"{commit}:{path}", env=env, check=False)
        return shown.stdout if shown.returncode == 0 else None

    return read


def _recorded_patch(
    store: Store, code: dict[str, Any], repo: str, env: dict[str, str] | None
) -> tuple[bytes, list[str]]:
    """The trial's diff, ready to apply at its commit, and the paths it touches."""
    patch = blob(store, code["diff_sha256"], "recorded diff")
    if not patch.strip():
        return patch, []
    patch = restore_patch(patch, _base_reader(repo, code.get("commit"), env))
    return patch, _patch_paths(repo, patch, env)


def _git(
    cwd: str,
    *args: str,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> Finished:
    """:func:`kleio.git.run`, failing with :class:`CodeUnavailable` (and, if ``check``, on a
    non-zero exit)."""
    try:
        result = git.run(cwd, *args, env=env, input=input, timeout=120)
    except OSError as error:  # git missing, or too slow (TimeoutError)
        raise CodeUnavailable(
            f"git could not be run ({error})", "install git and put it on PATH"
        ) from None
    if check and result.returncode != 0:
        raise CodeUnavailable(f"git {args[0]} failed: {_last_line(result.stderr)}")
    return result


def find_repository(code: dict[str, Any], candidates: list[str | None]) -> str | None:
    """The first candidate repository root holding the snapshot's commit (any, if none)."""
    roots = []
    for candidate in candidates:
        if isinstance(candidate, str) and candidate and os.path.isdir(candidate):
            root = git.find_root(candidate)
            if root and root not in roots:
                roots.append(root)
    commit = code.get("commit")
    for root in roots:
        if commit is None or git.has_commit(root, commit):
            return root
    return None


def blob(store: Store, sha256: str, what: str) -> bytes:
    try:
        with store.open_blob(sha256=sha256) as handle:
            return handle.read()
    except KeyError:
        raise CodeUnavailable(
            f"the {what} (sha256 {sha256[:12]}) is not in the journal",
            "it was too large to be stored",
        ) from None


class Workspace:
    """A temporary index and object directory on top of a repository's objects."""

    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.tmp = tempfile.TemporaryDirectory(prefix="kleio-code-")
        common = _git(repo, "rev-parse", "--git-common-dir").stdout.decode().strip()
        objects = (
            os.path.join(repo, common, "objects")
            if not os.path.isabs(common)
            else os.path.join(common, "objects")
        )
        self.env = dict(os.environ)
        self.env["GIT_OBJECT_DIRECTORY"] = os.path.join(self.tmp.name, "objects")
        self.env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = objects
        os.makedirs(os.path.join(self.tmp.name, "objects"))

    def tree(self, store: Store, code: dict[str, Any], name: str) -> str:
        """Write the tree of a git code snapshot; return its id."""
        check_snapshot(code)
        env = {**self.env, "GIT_INDEX_FILE": os.path.join(self.tmp.name, f"index-{name}")}
        commit = code.get("commit")
        if commit is not None and not git.has_commit(self.repo, commit, env):
            raise CodeUnavailable(
                f"commit {commit[:12]} is not in the repository at {self.repo}",
                "fetch it (git fetch) and try again",
            )
        _git(self.repo, "read-tree", commit or git.EMPTY_TREE, env=env)
        if code.get("diff_sha256"):
            patch, paths = _recorded_patch(store, code, self.repo, env)
            if paths:
                _apply(self.repo, patch, commit, "--cached", env=env)
        elif code.get("dirty") and code.get("diffstat"):
            raise CodeUnavailable("the trial's uncommitted changes were not recorded")
        for item in code.get("untracked") or []:
            content = blob(store, item["sha256"], f"untracked file {item['path']}")
            oid = (
                _git(self.repo, "hash-object", "-w", "--stdin", env=env, input=content)
                .stdout.decode()
                .strip()
            )
            _git(
                self.repo,
                "update-index",
                "--add",
                "--cacheinfo",
                f"100644,{oid},{item['path']}",
                env=env,
            )
        return _git(self.repo, "write-tree", env=env).stdout.decode().strip()

    def diff(self, tree_a: str, tree_b: str) -> str:
        out = _git(
            self.repo, "diff", "--no-color", "--no-ext-diff", tree_a, tree_b, env=self.env
        ).stdout
        return out.decode("utf-8", "surrogateescape")

    def close(self) -> None:
        self.tmp.cleanup()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _script_bytes(store: Store, code: dict[str, Any]) -> bytes | None:
    digest = code.get("script_sha256")
    if not digest:
        return None
    if not (isinstance(digest, str) and DIGEST.fullmatch(digest)):
        raise refuse(f"script digest {digest!r}", "is not a sha256 digest")
    return blob(store, digest, "script") if store.has_blob(sha256=digest) else None


def _script_text(store: Store, code: dict[str, Any]) -> list[str] | None:
    content = _script_bytes(store, code)
    return None if content is None else content.decode("utf-8", "replace").splitlines(keepends=True)


def code_diff(
    store: Store, code_a: dict[str, Any], code_b: dict[str, Any], candidates: list[str | None]
) -> str:
    """A unified diff from the code of one trial to another's ("" when they are the same).

    It covers the config files outside the repository too, as stored (see
    :func:`kleio.snapshot.code.code_snapshot`).
    """
    return _tree_diff(store, code_a, code_b, candidates) + _config_diff(store, code_a, code_b)


def _config_entries(code: dict[str, Any]) -> dict[str, dict[str, Any]]:
    entries = code.get("config_files") or []
    if not isinstance(entries, list):
        raise refuse("list of config files", "is not a list")
    found: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise refuse(f"config file {entry!r}", "is not a file entry")
        sha = entry.get("sha256")
        if sha is not None and not (isinstance(sha, str) and DIGEST.fullmatch(sha)):
            raise refuse(f"config file {entry['path']!r}", "has no sha256 digest")
        found[entry["path"]] = entry
    return found


def _config_text(store: Store, entry: dict[str, Any] | None) -> list[str] | None:
    """The stored lines of a config file ([] when absent, None when not stored)."""
    if entry is None:
        return []
    if entry.get("sha256") is None or not store.has_blob(sha256=entry["sha256"]):
        return None
    content = blob(store, entry["sha256"], f"config file {entry['path']}")
    return content.decode("utf-8", "replace").splitlines(keepends=True)


def _config_diff(store: Store, code_a: dict[str, Any], code_b: dict[str, Any]) -> str:
    import difflib

    files_a, files_b = _config_entries(code_a), _config_entries(code_b)
    out = []
    for path in sorted(set(files_a) | set(files_b)):
        a, b = files_a.get(path), files_b.get(path)
        if (
            a is not None
            and b is not None
            and (a.get("sha256"), a.get("size")) == (b.get("sha256"), b.get("size"))
        ):
            continue
        old, new = _config_text(store, a), _config_text(store, b)
        shown = clipped(path if path.isprintable() else repr(path))
        if old is None or new is None:
            out.append(
                f"Config file {shown} differs (not stored: larger than "
                f"{MAX_CONFIG_BLOB // 1024} KiB, or binary)\n"
            )
            continue
        lines = "".join(
            difflib.unified_diff(
                old,
                new,
                "/dev/null" if a is None else f"a/{shown}",
                "/dev/null" if b is None else f"b/{shown}",
            )
        )
        out.append(lines if lines.endswith("\n") or not lines else lines + "\n")
    return "".join(out)


def _tree_diff(
    store: Store, code_a: dict[str, Any], code_b: dict[str, Any], candidates: list[str | None]
) -> str:
    if code_a.get("vcs") == code_b.get("vcs") == "git":
        same = all(
            code_a.get(k) == code_b.get(k) for k in ("commit", "diff_sha256")
        ) and code_a.get("untracked") == code_b.get("untracked")
        if same:
            return ""
        check_snapshot(code_a)  # before git is asked about anything the journal says
        check_snapshot(code_b)
        repo = find_repository(code_a, candidates)
        if repo is None or find_repository(code_b, [repo]) is None:
            missing = [c["commit"][:12] for c in (code_a, code_b) if c.get("commit")]
            raise CodeUnavailable(
                f"no repository here holds commit(s) {', '.join(missing)}",
                "run kleio diff inside a clone of the trials' repository",
            )
        with Workspace(repo) as space:
            return space.diff(space.tree(store, code_a, "a"), space.tree(store, code_b, "b"))
    import difflib

    old, new = _script_text(store, code_a), _script_text(store, code_b)
    if old is None or new is None:
        if code_a.get("script_sha256") == code_b.get("script_sha256"):
            return ""
        raise CodeUnavailable(
            "the trials' scripts were not stored", "compare them by hand: their hashes differ"
        )
    return "".join(
        difflib.unified_diff(
            old, new, "a/" + str(code_a.get("script")), "b/" + str(code_b.get("script"))
        )
    )


def _apply(
    repo: str, patch: bytes, commit: str | None, *options: str, env: dict[str, str] | None = None
) -> None:
    applied = _git(repo, "apply", *options, "--binary", "-", env=env, input=patch, check=False)
    if applied.returncode != 0:
        at = f"commit {commit[:12]}" if commit else "an empty repository"
        raise CodeUnavailable(
            f"the recorded diff does not apply to {at} ({_last_line(applied.stderr)})"
        )
