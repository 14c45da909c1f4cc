"""Start or resume a trial: identify, snapshot, create, reserve, run.

This is the public Python API under ``kleio run``; the CLI only parses arguments.
"""

from __future__ import annotations

import os
import time

from kleio.client.stderr import warn as warn  # kleio.trial.warn, for the CLI
from kleio.config import Config
from kleio.errors import CannotExecute, CommandNotFound, TrialNotFound, UsageError
from kleio.storage.base import SCHEMA_VERSION, Store, encode
from kleio.storage.base import short_id as short_id  # kleio.trial.short_id, for the CLI

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any


def check_executable(argv: list[str], cwd: str) -> None:
    """Fail like a shell would (127, 126) before anything is recorded."""
    if not argv or not argv[0]:
        raise UsageError("no command to run", "give one, e.g. 'kleio python train.py'")
    program = argv[0]
    if os.sep in program:
        path = program if os.path.isabs(program) else os.path.join(cwd, program)
        if not os.path.exists(path):
            raise CommandNotFound(f"command not found: {program}")
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise CannotExecute(f"cannot execute {program}: permission denied or not a file")
    elif which(program) is None:
        raise CommandNotFound(f"command not found: {program}", "check its spelling and your PATH")


def which(program: str) -> str | None:
    """The executable ``program`` found on PATH, like :func:`shutil.which` (which costs
    several milliseconds of imports on every ``kleio run``)."""
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(directory or ".", program)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None


def resolve_trial(store: Store, prefix: str) -> dict[str, Any]:
    """Return the trial whose id starts with ``prefix``; errors list the candidates."""
    from kleio.errors import AmbiguousId

    if not prefix.strip():
        raise TrialNotFound("an empty id matches no trial", "list trials with 'kleio ls'")
    ids = store.resolve_id(prefix=prefix.lower())
    if not ids:
        raise TrialNotFound(f"no trial matches id {prefix!r}", "list trials with 'kleio ls'")
    if len(ids) > 1:
        listed = ", ".join(i[:12] for i in ids[:5])
        more = " ..." if len(ids) > 5 else ""
        raise AmbiguousId(
            f"id prefix {prefix!r} matches {len(ids)} trials ({listed}{more})",
            "give more characters of the id",
        )
    doc = store.get_trial(trial_id=ids[0])
    assert doc is not None
    return doc


def looks_like_id(token: str) -> bool:
    return 4 <= len(token) <= 64 and all(c in "0123456789abcdef" for c in token.lower())


def build_trial(
    argv: list[str], cwd: str, config: Config, tags: list[str] | None = None
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Describe and snapshot a command: the trial document and the blobs it refers to."""
    from kleio.identity import describe_command
    from kleio.snapshot.code import code_snapshot
    from kleio.snapshot.environment import env_snapshot
    from kleio.snapshot.host import host_snapshot

    described = describe_command(argv, cwd)
    script = described["script"]
    if script is not None:
        script = script if os.path.isabs(script) else os.path.join(cwd, script)
        if not os.path.isfile(script):  # `python -m module`: no single file to hash
            script = None
    code, blobs = code_snapshot(cwd, described["root"], script, described["config_files"])
    now = time.time()
    doc = {
        "schema_version": SCHEMA_VERSION,
        "id": described["id"],
        "created_at": now,
        "project": described["project"],
        "root": described["root"],
        "command": described["command"],
        "argv": described["argv"],
        "cwd": described["cwd"],
        "config": described["config"],
        "config_files": described["config_files"],
        "redacted": described["redacted"],
        "parent": None,
        "tags": sorted(set(tags or [])),
        "code": code,
        "env": env_snapshot(),
        "host": host_snapshot(config.hostname if config is not None else None),
        "status": "new",
        "status_at": now,
        "heartbeat_at": None,
        "runner": None,
        "started_at": None,
        "ended_at": None,
        "exit_code": None,
    }
    return doc, blobs


def store_trial(store: Store, doc: dict[str, Any], blobs: dict[str, bytes]) -> bool:
    """Create the trial (with its ``new`` status event) unless it exists; True if created.

    ``blobs`` maps each blob's SHA-256 to its content; only those not stored yet are
    written (each write is made durable before it is named, which costs an fsync).
    """
    import io

    if store.get_trial(trial_id=doc["id"]) is not None:
        return False  # its blobs were stored before it was
    for sha256, content in blobs.items():
        if not store.has_blob(sha256=sha256):
            store.put_blob(fileobj=io.BytesIO(content))
    created = store.create_trial(doc=doc)

    if created:
        store.append_events(
            trial_id=doc["id"],
            events=[(0, "status", doc["created_at"], encode({"status": "new"}))],
        )
    return created


def execution_dir(doc: dict[str, Any], cwd: str) -> str:
    """Where to run a recorded trial: its directory in this checkout of its project."""
    from kleio.git import find_root

    rel = doc.get("cwd") or "."
    if os.path.isabs(rel):
        return rel
    root = find_root(cwd) or doc.get("root") or cwd
    path = os.path.join(root, rel)
    return path if os.path.isdir(path) else cwd
