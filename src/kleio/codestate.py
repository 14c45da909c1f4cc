"""Rebuild a trial's code from its snapshot: the commit, the recorded diff, the untracked sources.

Used by ``kleio diff`` (a unified diff between two code states) and ``kleio checkout`` (a new
directory holding one). The commit is read with git from a repository that has it: the one
holding the current directory, else the one the trial ran in. Trees are built in a temporary
index and a temporary object directory that borrows the repository's objects, so nothing is
written to the user's repository.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Any

from kleio.errors import KleioError, UsageError
from kleio.storage.base import Store

_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


class CodeUnavailable(UsageError):
    """The code of a trial cannot be rebuilt here (commit or blob missing)."""


def _git(cwd: str, *args: str, env: dict[str, str] | None = None,
         input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, env=env, input=input,
                                capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as error:
        raise CodeUnavailable(f"git could not be run ({error})",
                              "install git and put it on PATH") from None
    if check and result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise KleioError(f"git {args[0]} failed: {message[-1] if message else result.returncode}")
    return result


def _has_commit(repo: str, commit: str) -> bool:
    return _git(repo, "cat-file", "-e", f"{commit}^{{commit}}", check=False).returncode == 0


def find_repository(code: dict[str, Any], candidates: list[str | None]) -> str | None:
    """The first candidate repository root holding the snapshot's commit (any, if none)."""
    from kleio.identity import find_repo_root

    roots = []
    for candidate in candidates:
        if candidate and os.path.isdir(candidate):
            root = find_repo_root(candidate)
            if root and root not in roots:
                roots.append(root)
    commit = code.get("commit")
    for root in roots:
        if commit is None or _has_commit(root, commit):
            return root
    return None


def blob(store: Store, sha256: str, what: str) -> bytes:
    try:
        with store.open_blob(sha256=sha256) as handle:
            return handle.read()
    except KeyError:
        raise CodeUnavailable(f"the {what} (sha256 {sha256[:12]}) is not in the journal",
                              "it was too large to be stored") from None


class Workspace:
    """A temporary index and object directory on top of a repository's objects."""

    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.tmp = tempfile.TemporaryDirectory(prefix="kleio-code-")
        common = _git(repo, "rev-parse", "--git-common-dir").stdout.decode().strip()
        objects = os.path.join(repo, common, "objects") if not os.path.isabs(common) \
            else os.path.join(common, "objects")
        self.env = dict(os.environ)
        self.env["GIT_OBJECT_DIRECTORY"] = os.path.join(self.tmp.name, "objects")
        self.env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = objects
        os.makedirs(os.path.join(self.tmp.name, "objects"))

    def tree(self, store: Store, code: dict[str, Any], name: str) -> str:
        """Write the tree of a git code snapshot; return its id."""
        env = {**self.env, "GIT_INDEX_FILE": os.path.join(self.tmp.name, f"index-{name}")}
        commit = code.get("commit")
        if commit is not None and not _has_commit_env(self.repo, commit, env):
            raise CodeUnavailable(f"commit {commit[:12]} is not in the repository at "
                                  f"{self.repo}", "fetch it (git fetch) and try again")
        _git(self.repo, "read-tree", commit or _EMPTY_TREE, env=env)
        if code.get("diff_sha256"):
            patch = blob(store, code["diff_sha256"], "recorded diff")
            if patch.strip():
                _git(self.repo, "apply", "--cached", "--binary", "-", env=env, input=patch)
        elif code.get("dirty") and code.get("diffstat"):
            raise CodeUnavailable("the trial's uncommitted changes were not recorded")
        for item in code.get("untracked") or []:
            content = blob(store, item["sha256"], f"untracked file {item['path']}")
            oid = _git(self.repo, "hash-object", "-w", "--stdin", env=env,
                       input=content).stdout.decode().strip()
            _git(self.repo, "update-index", "--add", "--cacheinfo",
                 f"100644,{oid},{item['path']}", env=env)
        return _git(self.repo, "write-tree", env=env).stdout.decode().strip()

    def diff(self, tree_a: str, tree_b: str) -> str:
        out = _git(self.repo, "diff", "--no-color", "--no-ext-diff", tree_a, tree_b,
                   env=self.env).stdout
        return out.decode("utf-8", "surrogateescape")

    def close(self) -> None:
        self.tmp.cleanup()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _has_commit_env(repo: str, commit: str, env: dict[str, str]) -> bool:
    return _git(repo, "cat-file", "-e", f"{commit}^{{commit}}", env=env,
                check=False).returncode == 0


def _script_text(store: Store, code: dict[str, Any]) -> list[str] | None:
    digest = code.get("script_sha256")
    if not digest or not store.has_blob(sha256=digest):
        return None
    return blob(store, digest, "script").decode("utf-8", "replace").splitlines(keepends=True)


def code_diff(store: Store, code_a: dict[str, Any], code_b: dict[str, Any],
              candidates: list[str | None]) -> str:
    """A unified diff from the code of one trial to another's ("" when they are the same)."""
    if code_a.get("vcs") == code_b.get("vcs") == "git":
        same = all(code_a.get(k) == code_b.get(k) for k in ("commit", "diff_sha256")) and \
            code_a.get("untracked") == code_b.get("untracked")
        if same:
            return ""
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
        raise CodeUnavailable("the trials' scripts were not stored",
                              "compare them by hand: their hashes differ")
    return "".join(difflib.unified_diff(old, new, "a/" + str(code_a.get("script")),
                                        "b/" + str(code_b.get("script"))))


def checkout(store: Store, doc: dict[str, Any], dest: str, candidates: list[str | None]
             ) -> str:
    """Materialize a trial's code in the new directory ``dest`` (see :func:`_checkout`).

    On failure nothing is left behind: what was written into ``dest`` is removed.
    """
    existed = os.path.lexists(dest)
    try:
        return _checkout(store, doc, dest, candidates)
    except BaseException:
        if not existed and os.path.isdir(dest):
            import shutil

            shutil.rmtree(dest, ignore_errors=True)
        raise


def _checkout(store: Store, doc: dict[str, Any], dest: str, candidates: list[str | None]
              ) -> str:
    """Materialize a trial's code in the new directory ``dest``; return what it holds.

    With git, ``dest`` is a clone of the repository at the trial's commit (detached), with
    the recorded diff applied to its working tree and the untracked sources written, and
    the trial's origin as its origin: running the trial's command there is the same trial.
    """
    code = doc.get("code") or {}
    if os.path.lexists(dest) and not (os.path.isdir(dest) and not os.listdir(dest)):
        raise UsageError(f"{dest} already exists", "give a new directory with -o DIR")
    if code.get("vcs") != "git":
        content = _script_text(store, code)
        if content is None:
            raise CodeUnavailable("the trial ran outside git and its script was not stored")
        os.makedirs(dest, exist_ok=True)
        path = os.path.join(dest, os.path.basename(str(code.get("script") or "script.py")))
        with open(path, "w", encoding="utf-8") as handle:
            handle.writelines(content)
        return f"script {os.path.basename(path)}"
    repo = find_repository(code, candidates)
    if repo is None:
        raise CodeUnavailable(
            f"no repository here holds commit {str(code.get('commit'))[:12]}",
            "run kleio checkout inside a clone of the trial's repository",
        )
    commit = code.get("commit")
    _git(os.path.dirname(os.path.abspath(dest)) or ".", "clone", "-q", "--no-checkout",
         repo, os.path.abspath(dest))
    from kleio.identity import origin_url

    origin = origin_url(repo)
    if origin:
        _git(dest, "remote", "set-url", "origin", origin)
    if commit:
        _git(dest, "checkout", "-q", "--detach", commit)
    parts = [f"commit {commit[:12]}" if commit else "no commit"]
    if code.get("diff_sha256"):
        patch = blob(store, code["diff_sha256"], "recorded diff")
        if patch.strip():
            _git(dest, "apply", "--binary", "-", input=patch)
            parts.append(f"the recorded diff ({len(code.get('diffstat') or [])} files)")
    untracked = code.get("untracked") or []
    root = os.path.realpath(dest)
    for item in untracked:
        path = os.path.realpath(os.path.join(dest, item["path"]))
        if not path.startswith(root + os.sep) or os.path.lexists(path):
            raise UsageError(f"refusing to write untracked file {item['path']!r}",
                             "the journal's path leaves the directory or exists")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(blob(store, item["sha256"], f"untracked file {item['path']}"))
    if untracked:
        parts.append(f"{len(untracked)} untracked source file(s)")
    return ", ".join(parts)
