"""Trial identity: the same command in the same project is the same trial (DESIGN §2).

A trial id is the sha256 of the canonical JSON of

* the **project**: the repository's origin URL without credentials and in one spelling
  (``git@github.com:a/b.git`` and ``https://github.com/a/b`` are both ``github.com/a/b``), else
  the repository root, else the working directory;
* the **normalized command** in its identity form (:func:`kleio.argv.identity_form`: the
  spellings and orders of one experiment's options are one): paths to files inside the
  repository are relative to its root,
  so any checkout location and any working directory inside the repository give the same id;
  a path to a Python interpreter is reduced to its name (``/opt/venv/bin/python`` is
  ``python``); secrets are masked (a rotated token is not a new experiment, and an id must not allow
  anyone to guess a password by hashing candidates);
* the content hash of every YAML/JSON **config file** named on the command line;
* the **parent** reference ``{"id", "cut"}`` of a branch.

Everything here is pure Python on the start path of every run: no git subprocess (the origin
is read from ``.git/config`` by :mod:`kleio.git`), a handful of ``stat`` calls. Reading
options is :mod:`kleio.argv`'s; naming the project and finding the repository,
:mod:`kleio.git`'s.
"""

from __future__ import annotations

import os

from kleio import cjson as json  # json's C codec without json's imports (re, enum)
from kleio.argv import identity_form, is_option, is_python, parse_config, script_of
from kleio.git import find_root, project_of
from kleio.hashing import sha256_hex
from kleio.redact import redact_argv

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import; annotations are strings anyway
    from typing import Any

_CONFIG_EXTENSIONS = (".yaml", ".yml", ".json")
# A config file larger than this is identified by its size only: hashing a multi-gigabyte
# JSON dataset on every start would defeat the purpose of a fast wrapper.
_MAX_HASHED_CONFIG = 64 * 1024 * 1024


# -- command -------------------------------------------------------------------------------


def _inside(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` when it lies inside, else None."""
    if path == root:
        return "."
    if path.startswith(root.rstrip(os.sep) + os.sep):
        return os.path.relpath(path, root)
    return None


def _normalize_path(value: str, cwd: str, root: str | None) -> str | None:
    """The repository-relative spelling of ``value`` if it names an existing path inside it."""
    if root is None or not value or "\0" in value:
        return None
    path = os.path.normpath(os.path.join(cwd, os.path.expanduser(value)))
    try:
        if not os.path.exists(path):
            return None
    except (OSError, ValueError):
        return None
    relative = _inside(path, os.path.abspath(root))
    if relative is None:
        # A symlinked checkout or working directory: compare the resolved paths.
        relative = _inside(os.path.realpath(path), os.path.realpath(root))
    return relative


def normalize_command(argv: list[str], cwd: str, root: str | None) -> list[str]:
    """Spell a command so that it is the same from any checkout location and working directory.

    Arguments (and ``--option=value`` values) naming existing paths inside the repository
    become relative to its root; a path to a Python interpreter (absolute, or relative such as
    ``../venv/bin/python``, which would depend on the working directory) becomes its base
    name; everything else is kept as typed. The result identifies the command; it is not
    meant to be executed.
    """
    result: list[str] = []
    for index, token in enumerate(argv):
        if index == 0 and is_python(token):
            result.append(os.path.basename(token))
            continue
        if is_option(token):
            name, eq, value = token.partition("=")
            if eq:
                normalized = _normalize_path(value, cwd, root)
                if normalized is not None:
                    token = name + "=" + normalized
            result.append(token)
            continue
        normalized = _normalize_path(token, cwd, root)
        result.append(token if normalized is None else normalized)
    return result


def _sha256_file(path: str) -> str | None:
    try:
        size = os.path.getsize(path)
        if size > _MAX_HASHED_CONFIG:
            return f"size:{size}"
        with open(path, "rb") as handle:
            return sha256_hex(handle.read())
    except OSError:
        return None


def _config_files(argv: list[str], cwd: str, root: str | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for token in argv[1:]:
        value = token.partition("=")[2] if is_option(token) else token
        if not value.lower().endswith(_CONFIG_EXTENSIONS):
            continue
        path = os.path.join(cwd, os.path.expanduser(value))
        if not os.path.isfile(path):
            continue
        digest = _sha256_file(path)
        if digest is not None:
            found[_normalize_path(value, cwd, root) or value] = digest
    return found


def config_files(argv: list[str], cwd: str) -> dict[str, str]:
    """Map every YAML/JSON file named by an argument to the sha256 of its content.

    Keys are spelled as :func:`normalize_command` spells them (relative to the repository
    root when inside it), so that editing a config file makes a new trial while moving the
    checkout does not.
    """
    return _config_files(argv, cwd, find_root(cwd))


def trial_id(
    *,
    project: str,
    command: list[str],
    config_files: dict[str, str],
    parent: dict[str, Any] | None = None,
) -> str:
    """Return the id of a trial: the sha256 hex digest of its identity as canonical JSON.

    The command is hashed in its identity form (:func:`kleio.argv.identity_form`):
    ``--epochs=5`` and ``--epochs 5``, or two orders of the same named options, are one trial.

    Args:
        project: from :func:`kleio.git.project_of`.
        command: from :func:`normalize_command` (and redacted).
        config_files: from :func:`config_files`.
        parent: ``{"id": ..., "cut": ...}`` for a branch, else None.
    """
    return _digest(project, identity_form(command), config_files, parent)


def _digest(
    project: str, command: list[str], config_files: dict[str, str], parent: dict[str, Any] | None
) -> str:
    identity = {
        "project": project,
        "command": list(command),
        "config_files": dict(config_files),
        "parent": parent,
    }
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return sha256_hex(text.encode("utf-8", "surrogatepass"))


def legacy_id(doc: dict[str, Any]) -> str | None:
    """The id kleio 0.1 gave the trial of ``doc`` (the command hashed as typed), if another.

    Trials journalled before the identity form keep their ids. A command run again whose new
    id is not in the journal must look for this one before creating a trial, or a resume of
    an old trial would silently start a new one (see :func:`find_recorded`).
    """
    command = list(doc.get("command") or [])
    old = _digest(
        doc.get("project") or "", command, doc.get("config_files") or {}, doc.get("parent")
    )
    return None if old == doc.get("id") else old


def find_recorded(store: Any, doc: dict[str, Any]) -> dict[str, Any] | None:
    """The journalled trial of a described command: by its id, else by its :func:`legacy_id`.

    Args:
        store: a :class:`kleio.storage.base.Store`.
        doc: a trial document as built for the command (``id``, ``project``, ``command``,
            ``config_files``, ``parent``).
    """
    found = store.get_trial(trial_id=doc["id"])
    if found is not None:
        return found
    old = legacy_id(doc)
    return None if old is None else store.get_trial(trial_id=old)


def describe_command(
    argv: list[str], cwd: str, *, parent: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Everything the runner needs to know about a command's identity, in one call.

    Returns:
        A JSON-compatible dict: ``root`` (repository root or None), ``project``, ``command``
        (normalized and redacted), ``argv`` (as typed, redacted), ``redacted`` (whether
        anything was masked: such a command cannot be replayed from the journal), ``cwd``
        (relative to the root, or absolute without a repository), ``script`` (as typed, or
        None), ``config`` (parsed from ``command``), ``config_files`` and ``id``.
    """
    cwd = os.path.abspath(cwd)
    root = find_root(cwd)
    project = project_of(root, cwd)
    redacted_argv, redacted = redact_argv(list(argv))
    command = normalize_command(redacted_argv, cwd, root)
    files = _config_files(list(argv), cwd, root)
    relative_cwd = (_inside(cwd, os.path.abspath(root)) or cwd) if root is not None else cwd
    return {
        "root": root,
        "project": project,
        "command": command,
        "argv": redacted_argv,
        "redacted": redacted,
        "cwd": relative_cwd,
        "script": script_of(redacted_argv),
        "config": parse_config(command),
        "config_files": files,
        "id": trial_id(project=project, command=command, config_files=files, parent=parent),
    }


__all__ = [
    "config_files",
    "describe_command",
    "find_recorded",
    "legacy_id",
    "normalize_command",
    "trial_id",
]
