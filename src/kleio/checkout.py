"""Write a trial's code into a new directory (``kleio checkout``).

With git, the directory is a clone of the repository at the trial's commit, with the recorded
diff and untracked sources, and the config files the trial named outside the repository under
``kleio-config/``. Whatever the journal says, nothing is written outside the directory or
inside its ``.git``: the snapshot's names are checked first
(:func:`kleio.codestate.check_snapshot`).
"""

from __future__ import annotations

import errno
import os
from typing import Any

from kleio import git
from kleio.codestate import (
    CodeUnavailable,
    _apply,
    _config_entries,
    _git,
    _recorded_patch,
    _script_bytes,
    blob,
    find_repository,
)
from kleio.errors import UsageError
from kleio.redact import REDACTED
from kleio.snapshot.safety import check_snapshot, clipped, is_git_dir_name, refuse, safe_path
from kleio.storage.base import Store


def checkout(store: Store, doc: dict[str, Any], dest: str, candidates: list[str | None]) -> str:
    """Materialize a trial's code in the new directory ``dest`` (see :func:`_checkout`).

    On failure nothing is left behind: what was written into ``dest`` is removed.
    """
    existed = os.path.lexists(dest)
    try:
        return _checkout(store, doc, dest, candidates)
    except BaseException:
        import shutil

        if not existed and os.path.isdir(dest):
            shutil.rmtree(dest, ignore_errors=True)
        elif existed and os.path.isdir(dest) and not os.path.islink(dest):
            # It was empty (anything else is refused before writing): empty it again.
            for name in os.listdir(dest):
                full = os.path.join(dest, name)
                if os.path.isdir(full) and not os.path.islink(full):
                    shutil.rmtree(full, ignore_errors=True)
                else:
                    os.unlink(full)
        raise


def _checkout(store: Store, doc: dict[str, Any], dest: str, candidates: list[str | None]) -> str:
    """Materialize a trial's code in the new directory ``dest``; return what it holds.

    With git, ``dest`` is a clone of the repository at the trial's commit (detached), with
    the recorded diff applied to its working tree and the untracked sources written, and
    the trial's origin as its origin: running the trial's command there is the same trial.

    Whatever the journal says, nothing is written outside ``dest`` or inside its ``.git``:
    the snapshot's names are checked first (:func:`check_snapshot`), the paths git reads in
    the diff too, symbolic links the diff makes must stay inside, and files are created
    without following any symbolic link.
    """
    code = doc.get("code") or {}
    if os.path.lexists(dest) and not (os.path.isdir(dest) and not os.listdir(dest)):
        raise UsageError(f"{dest} already exists", "give a new directory with -o DIR")
    parent = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(parent):
        raise UsageError(f"{parent} is not a directory", "create it, or give another -o DIR")
    if code.get("vcs") != "git":
        content = _script_bytes(store, code)
        if content is None:
            raise CodeUnavailable("the trial ran outside git and its script was not stored")
        name = safe_path(os.path.basename(str(code.get("script") or "script.py")), "script")
        configs = _config_entries(code)  # checked before anything is written
        os.makedirs(dest, exist_ok=True)
        _write_new_file(dest, name, content)
        return f"script {name}" + _write_configs(store, dest, configs) + _masked_note(code)
    check_snapshot(code)
    configs = _config_entries(code)
    repo = find_repository(code, candidates)
    if repo is None:
        raise CodeUnavailable(
            f"no repository here holds commit {str(code.get('commit'))[:12]}",
            "run kleio checkout inside a clone of the trial's repository",
        )
    commit = code.get("commit")
    _git(parent, "clone", "-q", "--no-checkout", repo, os.path.abspath(dest))
    origin = git.origin_url(repo)
    if origin:
        _git(dest, "remote", "set-url", "origin", origin)
    if commit:
        _git(dest, "checkout", "-q", "--detach", commit)
    parts = [f"commit {commit[:12]}" if commit else "no commit"]
    if code.get("diff_sha256"):
        patch, paths = _recorded_patch(store, code, dest, None)
        if paths:
            _apply(dest, patch, commit)
            _check_links(dest, paths)
            parts.append(f"the recorded diff ({len(paths)} files)")
    untracked = code.get("untracked") or []
    for item in untracked:
        data = blob(store, item["sha256"], f"untracked file {item['path']}")
        _write_new_file(dest, item["path"], data)
    if untracked:
        parts.append(f"{len(untracked)} untracked source file(s)")
    return ", ".join(parts) + _write_configs(store, dest, configs) + _masked_note(code)


#: Where a checkout puts the config files the trial named outside its repository.
CONFIG_DIR = "kleio-config"


def _write_configs(store: Store, dest: str, configs: dict[str, dict[str, Any]]) -> str:
    """Write the stored config files under ``dest/kleio-config/`` by their absolute path.

    Never at their own place: that would overwrite the files outside the checkout, maybe
    with an older version. Returns the phrase that says so ("" when there were none).
    """
    written = []
    for path, entry in sorted(configs.items()):
        if entry.get("sha256") is None:
            continue
        absolute = entry.get("absolute")
        if not isinstance(absolute, str) or not os.path.isabs(absolute):
            raise refuse(f"config file {path!r}", "has no absolute path")
        relative = safe_path(
            f"{CONFIG_DIR}/{os.path.normpath(absolute).lstrip('/')}", "config file"
        )
        _write_new_file(dest, relative, blob(store, entry["sha256"], f"config file {path}"))
        written.append(path)
    if not written:
        return ""
    return (
        f"; {len(written)} config file(s) from outside the repository in "
        f"{os.path.join(dest, CONFIG_DIR)} (give them to the command in place of the "
        "originals)"
    )


def _check_links(dest: str, paths: list[str]) -> None:
    """Refuse the symbolic links the diff made that lead out of ``dest`` or into its .git."""
    root = os.path.realpath(dest)
    for path in paths:
        full = os.path.join(dest, path)
        if not os.path.islink(full):
            continue
        target = os.path.realpath(full)
        inside = (
            os.path.relpath(target, root)
            if target == root or target.startswith(root + os.sep)
            else None
        )
        if inside is None or any(is_git_dir_name(part) for part in inside.split(os.sep)):
            raise refuse(
                f"symbolic link {path!r} -> {os.readlink(full)!r}",
                "leads out of the directory or into .git",
            )


def _write_new_file(dest: str, path: str, content: bytes) -> None:
    """Create ``dest/path`` (a checked path), never through a symbolic link, never over a file.

    Every directory is opened with O_NOFOLLOW relative to the one before, and the file is
    created with O_EXCL: a link planted anywhere on the way (by the diff, by the commit)
    makes this fail instead of writing where the link points.
    """
    parts = path.split("/")
    directory = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, dir_fd=directory)
            except FileExistsError:
                pass
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
            os.close(directory)
            directory = inner
        handle = os.open(
            parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=directory
        )
        with os.fdopen(handle, "wb") as out:
            out.write(content)
    except FileExistsError:
        raise refuse(f"file {path!r}", "exists already (the commit or the diff has it)") from None
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise refuse(f"file {path!r}", "is under a symbolic link or a file") from None
        raise CodeUnavailable(
            f"cannot write {clipped(repr(path))} in {dest}: {error.strerror}"
        ) from None
    finally:
        os.close(directory)


def _masked_note(code: dict[str, Any]) -> str:
    masked = code.get("secrets_masked")
    if not isinstance(masked, dict) or not masked:
        return ""
    # Names from the journal, printed on a terminal: escapes shown, never sent.
    names = sorted(
        clipped(name if name.isprintable() else repr(name))
        for name in masked
        if isinstance(name, str)
    )
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    return (
        f"; secrets were masked as {REDACTED} in {', '.join(names[:10])}{more}: "
        "put them back before running it"
    )
