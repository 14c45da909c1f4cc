"""``kleio save [--tag T]... [--] PROGRAM ARGS...``: register a trial without running it.

The trial gets the same identity and snapshots ``kleio run`` would record, and status
``new``: ``kleio worker`` (on any machine sharing the journal) runs it, or ``kleio run ID``.
Options are parsed by hand, like ``kleio run``: the program's own arguments stay untouched.
"""

from __future__ import annotations

import sys
from typing import Any

from kleio.cli.leading import parse_leading, program_or_help
from kleio.errors import UsageError
from kleio.trial import short_id

HELP = """usage: kleio save [--tag TAG]... [--db URI] [--] PROGRAM [ARGS...]

Register PROGRAM ARGS as a trial without running it (status 'new'), with the same id and
code/environment snapshots 'kleio run' would record. Run saved trials with 'kleio worker'
(any number of them, on any machines sharing the journal) or 'kleio run ID'. Saving a trial
that already exists changes nothing but adds the given tags.

options:
  --tag TAG   tag the trial (repeatable); workers can select trials by tag
  -q, --quiet print only the trial's id
  --db URI    journal to use, as before the command (sqlite://PATH, mongodb://...)
  -h, --help  show this help
"""


def parse(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    return parse_leading(
        argv,
        prog="kleio save",
        flags={"-q": "quiet", "--quiet": "quiet"},
        values={"--db": "db"},
        example="kleio save --tag sweep1 python train.py",
    )


def main(argv: list[str], flags: dict[str, Any]) -> int:
    given = program_or_help(
        parse(argv), help_text=HELP, verb="save", example="kleio save python train.py"
    )
    if given is None:
        return 0
    options, command, cwd = given
    from kleio.config import load_config
    from kleio.launch import prepare_command
    from kleio.redact import redact_argv
    from kleio.storage import open_store
    from kleio.trial import check_executable, warn

    check_executable(command, cwd)
    if redact_argv(list(command))[1]:
        raise UsageError(
            "the command line holds secrets, which kleio never journals, so no worker could "
            "run this trial",
            "pass secrets through environment variables or a file instead",
        )
    config = load_config({"db": flags.get("db") if options["db"] is None else options["db"]})
    store = open_store(config.db)
    try:
        prepared = prepare_command(store, config, command, cwd, options["tags"])
        existing = prepared.doc
        short = short_id(existing["id"])
        if prepared.current[0]["code"].get("vcs") is None:
            warn("not a git repository: the code is identified by a hash of the script only")
        if prepared.created:
            message = f"trial saved with id: {short}"
        else:
            tags = sorted(set(existing.get("tags") or []) | set(options["tags"]))
            if tags != sorted(existing.get("tags") or []):
                store.update_trial(trial_id=existing["id"], fields={"tags": tags})

            status = existing.get("status", "new")
            message = f"trial already saved with id: {short} (status {status})"
        sys.stdout.write((short if options["quiet"] else message) + "\n")
        return 0
    finally:
        store.close()
