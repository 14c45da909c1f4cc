"""``kleio run``: run a command as a trial, or resume a trial by id.

Options are parsed by hand, not by argparse: everything after the first non-option token
belongs to the program, untouched, and the hot path stays fast.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

from kleio.cli.leading import parse_leading
from kleio.errors import CommandNotFound, UsageError

HELP = """usage: kleio run [OPTIONS] [--] PROGRAM [ARGS...]
       kleio run [OPTIONS] ID

Run PROGRAM as a trial (the same command is the same trial: running it again resumes it),
or resume the trial whose id starts with ID.

options:
  --allow-code-change  the code changed since the trial's last run: branch it and run the branch
  --allow-env-change   the environment changed: branch it and run the branch
  --allow-any-change   code or environment changed: branch it and run the branch
  --allow-broken       run a trial again whose last run failed
  --tag TAG            tag a new trial (repeatable)
  -q, --quiet          do not print the 'trial reserved' line
  -h, --help           show this help
"""

FLAGS = {
    "--allow-code-change": "allow_code_change",
    "--allow-env-change": "allow_env_change",
    "--allow-any-change": "allow_any_change",
    "--allow-broken": "allow_broken",
    "-q": "quiet",
    "--quiet": "quiet",
}


def parse(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    return parse_leading(argv, prog="kleio run", flags=FLAGS,
                         example="kleio run --tag sweep1 python train.py")


def main(argv: list[str], flags: dict[str, Any]) -> int:
    options, command = parse(argv)
    if options.get("help"):
        sys.stdout.write(HELP)
        return 0
    if not command:
        raise UsageError("no command to run", "give one, e.g. 'kleio python train.py'")
    from kleio.config import load_config
    from kleio.storage import open_store
    from kleio.trial import (
        build_trial,
        check_executable,
        execution_dir,
        looks_like_id,
        resolve_trial,
        store_trial,
    )

    config = load_config({"db": flags.get("db")})
    cwd = os.getcwd()
    by_id = (
        len(command) == 1
        and looks_like_id(command[0])
        and shutil.which(command[0]) is None
        and not os.path.exists(command[0])
    )
    if not by_id:
        try:
            check_executable(command, cwd)
        except CommandNotFound as error:
            raise _explain_not_found(error, command) from None
    store = open_store(config.db)
    try:
        if by_id:
            doc = resolve_trial(store, command[0])
            if doc.get("redacted"):
                raise UsageError(
                    f"trial {doc['id'][:7]}'s command held secrets that were not journalled",
                    "run it again with its full command line",
                )
            command = list(doc["argv"])
            cwd = execution_dir(doc, cwd)
            # The snapshot of now, to compare with the trial's own (change detection).
            current = build_trial(command, cwd, config, options["tags"])
            created = False
        else:
            new, blobs = build_trial(command, cwd, config, options["tags"])
            if new["code"].get("vcs") is None:
                _warn("not a git repository: the code is identified by a hash of the script "
                      "only")
            created = store_trial(store, new, blobs)
            doc = store.get_trial(trial_id=new["id"]) or new
            current = (new, blobs)
        if not created:
            from kleio.branching import allowed_changes, resolve_changes

            allowed = allowed_changes(options)
            if doc.get("status") == "completed" and not allowed:
                # Completed is the answer, whatever changed since: a list of changes would
                # suggest that resolving them makes the trial run again.
                from kleio.reservation import completed_error

                raise completed_error(doc["id"])
            doc = resolve_changes(store, doc, current, argv=command, cwd=cwd,
                                  allowed=allowed, tags=options["tags"])
        return _execute(store, config, doc, command, cwd, options)
    finally:
        store.close()


def _explain_not_found(error: CommandNotFound, command: list[str]) -> CommandNotFound:
    """Add the likely reason to a 'command not found': a typo of a subcommand, or an id."""
    import difflib

    from kleio.cli import COMMANDS
    from kleio.trial import looks_like_id

    program = command[0]
    close = difflib.get_close_matches(program, list(COMMANDS), n=1)
    if close:
        return CommandNotFound(error.message, f"did you mean 'kleio {close[0]}'?")
    if looks_like_id(program) and len(command) > 1:
        return CommandNotFound(
            f"{program!r} is not a program; if it is a trial id, kleio's options go before it",
            f"for example 'kleio run {' '.join(command[1:])} {program}'",
        )
    return error


def _execute(store: Any, config: Any, doc: dict[str, Any], argv: list[str], cwd: str,
             options: dict[str, Any]) -> int:
    from kleio.reservation import hostname, reserve, runner_identity
    from kleio.runner import run_reserved

    host = hostname(config["hostname"])
    runner = runner_identity(host)
    reservation = reserve(store, doc["id"], runner=runner,
                          stale_after=float(config["stale_after"]),
                          allow_broken=options["allow_broken"])
    if reservation.failover_of:
        held = reservation.failover_of
        _warn(f"trial {doc['id'][:7]} was held by a dead runner (host {held.get('host')}, "
              f"pid {held.get('pid')}); taking it over")
    if not options["quiet"]:
        sys.stderr.write(f"trial reserved with id: {doc['id'][:7]}\n")
        sys.stderr.flush()
    return run_reserved(store=store, config=config, trial_id=doc["id"],
                        reservation=reservation, runner_info=runner, argv=argv, cwd=cwd)


def _warn(message: str) -> None:
    sys.stderr.write(f"kleio: warning: {message}\n")
