"""``kleio run``: run a command as a trial, or resume a trial by id.

Options are parsed by hand, not by argparse: everything after the first non-option token
belongs to the program, untouched, and the hot path stays fast.
"""

from __future__ import annotations

import sys

from kleio.cli.leading import parse_leading, program_or_help
from kleio.errors import ChangeRefused, CommandNotFound, KleioError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every run; annotations are strings
    from typing import Any

    from kleio.config import Config
    from kleio.launch import Prepared
    from kleio.storage.base import Store

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
  --stop-on CHECKS     stop the program when one of these checks finds something, e.g.
                       --stop-on nan,diverged (the trial ends suspended, resumable); the
                       stop_on setting of kleio.yaml otherwise (see 'kleio check --list')
  -q, --quiet          do not print the 'trial reserved' line
  --db URI             journal to use, as before the command (sqlite://PATH, mongodb://...)
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


#: Options taking a value.
VALUES = {"--stop-on": "stop_on", "--db": "db"}


def parse(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    return parse_leading(
        argv,
        prog="kleio run",
        flags=FLAGS,
        values=VALUES,
        example="kleio run --tag sweep1 python train.py",
    )


def main(argv: list[str], flags: dict[str, Any]) -> int:
    given = program_or_help(
        parse(argv), help_text=HELP, verb="run", example="kleio python train.py"
    )
    if given is None:
        return 0
    options, command, cwd = given
    flags = {**flags, "db": flags.get("db") if options["db"] is None else options["db"]}
    _start_git_status(command, cwd)
    from kleio import launch
    from kleio.cli.launch import run_prepared
    from kleio.storage import open_store
    from kleio.trial import check_executable

    config = _config_of(options, flags)
    by_id = launch.is_trial_reference(command)
    if not by_id:
        try:
            check_executable(command, cwd)
        except CommandNotFound as error:
            raise _explain_not_found(error, command) from None
    store = open_store(config.db)
    try:
        prepared = _prepared(store, config, command, cwd, options, by_id=by_id)
        if not prepared.created:
            _gate(store, prepared, command, flags, options, by_id=by_id)
        return run_prepared(
            store, config, prepared, allow_broken=options["allow_broken"], quiet=options["quiet"]
        )
    finally:
        store.close()


def _config_of(options: dict[str, Any], flags: dict[str, Any]) -> Config:
    """The run's configuration: ``--db`` and ``--stop-on`` over the layered settings; a
    misspelt check in ``--stop-on`` is refused now, not once the program runs."""
    from kleio.config import load_config

    overrides = {"db": flags.get("db")}
    if options["stop_on"] is not None:
        overrides["stop_on"] = options["stop_on"]
    config = load_config(overrides)
    if options["stop_on"] is not None:
        from kleio.checks.registry import validate

        validate(config)
    return config


def _prepared(
    store: Store,
    config: Config,
    command: list[str],
    cwd: str,
    options: dict[str, Any],
    *,
    by_id: bool,
) -> Prepared:
    """The trial to run: the recorded one (``kleio run ID``) or the command's, with a
    warning when no git repository identifies its code."""
    from kleio import launch
    from kleio.trial import resolve_trial, warn

    if by_id:
        return launch.prepare_recorded(store, config, resolve_trial(store, command[0]), cwd)
    prepared = launch.prepare_command(store, config, command, cwd, options["tags"])
    code = prepared.current[0]["code"]
    if code.get("vcs") is None:
        reason = (code.get("vcs_error") or "").strip().splitlines() or ["not a git repository"]
        warn(f"{reason[0]}: the code is identified by a hash of the script only")
    return prepared


def _gate(
    store: Store,
    prepared: Prepared,
    command: list[str],
    flags: dict[str, Any],
    options: dict[str, Any],
    *,
    by_id: bool,
) -> None:
    """An existing trial runs again only as it was: a completed one, or one whose code or
    environment changed, is refused unless ``--allow-...`` (then branched, and told)."""
    from kleio import launch
    from kleio.cli.launch import branched_line, explain_refusal

    allowed = launch.allowed_changes(options)
    launch.refuse_completed(prepared.doc, allowed)
    try:
        launch.gate(store, prepared, allowed=allowed, tags=options["tags"])
    except ChangeRefused as error:
        raise explain_refusal(error, command if not by_id else None, flags, options) from None
    for made in prepared.branched:
        sys.stderr.write(branched_line(made) + "\n")


def _start_git_status(command: list[str], cwd: str) -> None:
    """Start the snapshot's ``git status`` first thing, so that it runs while kleio imports
    the rest (:func:`kleio.git.start_status`); not for ``kleio run ID``, which runs in the
    trial's own directory."""
    token = command[0]
    # A lone hex word may be an id (kleio.trial.looks_like_id's rule, not imported here:
    # kleio.trial pulls in the configuration and the store, which git would wait for).
    if (
        len(command) == 1
        and 4 <= len(token) <= 64
        and all(c in "0123456789abcdef" for c in token.lower())
    ):
        return
    from kleio import git

    root = git.find_root(cwd)
    if root is not None:
        git.start_status(root)


def _explain_not_found(error: CommandNotFound, command: list[str]) -> KleioError:
    """Add the likely reason to a 'command not found': a typo of a subcommand, or an id
    followed by options (then a usage error: the options belong before the id)."""
    import difflib

    from kleio.cli import COMMANDS
    from kleio.trial import looks_like_id

    program = command[0]
    close = difflib.get_close_matches(program, list(COMMANDS), n=1)
    if close:
        return CommandNotFound(error.message, f"did you mean 'kleio {close[0]}'?")
    if looks_like_id(program) and len(command) > 1:
        return UsageError(
            f"{program!r} is not a program; if it is a trial id, kleio's options go before it",
            f"for example 'kleio run {' '.join(command[1:])} {program}'",
        )
    return error
