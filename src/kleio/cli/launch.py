"""The command line's side of :mod:`kleio.launch`: rendering what preparing, gating and
reserving a trial did, for ``kleio run`` and ``kleio branch``."""

from __future__ import annotations

import sys

from kleio.errors import ChangeRefused
from kleio.trial import short_id, warn

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any

    from kleio.config import Config


def run_prepared(
    store: Any, config: Config, prepared: Any, *, allow_broken: bool, quiet: bool
) -> int:
    """Reserve and run a prepared trial, telling the user what happens on stderr."""
    from kleio import launch

    doc = prepared.doc
    # From the reservation on, a Ctrl-C or a SIGTERM waits (blocked) until the runner takes
    # it: it then goes to the program, and the trial ends 'interrupted'. Delivered in
    # between, it would kill kleio and leave the trial 'reserved' by a dead runner.
    held = launch.hold_signals()
    try:
        reserved = launch.reserve_trial(store, config, doc["id"], allow_broken=allow_broken)
        if reserved.failover_of:
            warn(launch.failover_message(doc["id"], reserved.failover_of))
        if not quiet:
            sys.stderr.write(f"trial reserved with id: {short_id(doc['id'])}\n")
        sys.stderr.flush()
        return launch.execute(store, config, doc, reserved, prepared.argv, prepared.cwd)
    finally:
        launch.release_signals(held)


def branched_line(made: Any) -> str:
    """``branched A -> B (reason)`` for a new branch; ``... already exists`` for an old one."""
    parent, child = short_id(made.parent["id"]), short_id(made.doc["id"])
    if made.new:
        return f"branched {parent} -> {child} ({made.reason})"
    return f"branch {child} of {parent} exists already ({made.reason}): resuming it"


def refusal_lines(error: ChangeRefused) -> list[str]:
    """The list of changes a refusal carries, one line each (``code: train.py (+1 -0)``)."""
    return [f"  {kind}: {line}" for kind in ("code", "env") for line in error.changes.get(kind, [])]


def explain_refusal(
    error: ChangeRefused,
    command: list[str] | None,
    flags: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> ChangeRefused:
    """Print what changed; return the error with the exact command lines to type next.

    The command lines keep what the user gave: ``--db`` and ``kleio run``'s own options
    (``--tag``, ``--stop-on``, ``-q``...), so that typing them acts on the same journal in
    the same way.
    """
    import shlex

    short = short_id(error.trial_id)
    sys.stderr.write(f"kleio: what changed since trial {short} was created:\n")
    sys.stderr.write("".join(line + "\n" for line in refusal_lines(error)))
    prefix = ["kleio"]
    if (flags or {}).get("db"):
        prefix += ["--db", str((flags or {})["db"])]
    prefix.append("run")
    kept = _run_options(options or {})
    target = command if command else [short]
    hint = "to branch it and run the branch, type: " + shlex.join(
        [*prefix, error.flag, *kept, *target]
    )
    if error.branch:
        hint += "; to resume the branch already made for this change, type: " + shlex.join(
            [*prefix, *kept, short_id(error.branch)]
        )
    hint += "; or restore the code and environment it had to resume it"
    return ChangeRefused(
        error.message,
        hint,
        trial_id=error.trial_id,
        changes=error.changes,
        flag=error.flag,
        branch=error.branch,
    )


def _run_options(options: dict[str, Any]) -> list[str]:
    """``kleio run``'s options as typed, but the ``--allow-*-change`` ones (the hint's)."""
    words: list[str] = []
    if options.get("allow_broken"):
        words.append("--allow-broken")
    for tag in options.get("tags") or []:
        words += ["--tag", str(tag)]
    if options.get("stop_on"):
        words += ["--stop-on", str(options["stop_on"])]
    if options.get("quiet"):
        words.append("-q")
    return words
