"""``kleio branch ID``: a new trial from another, with new option values or a cut history.

Options are walked by kleio's one rule (:mod:`kleio.argv`): kleio's own options
(``--timestamp``, ``--no-run``, ``--tag``, ``-q``) come before or after the id; every other
option is the program's, whose value replaces the parent's. After ``--`` every token belongs
to the program, for a program that has an option of the same name as one of kleio's.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any

from kleio.argv import walk
from kleio.errors import ChangeRefused, UsageError
from kleio.trial import short_id

HELP = """usage: kleio branch [--timestamp KEY=VALUE|ISO-TIME | --fresh] [--no-run] [-q]
                    [--tag TAG] [--db URI] ID [--OPTION VALUE | --OPTION=VALUE | --FLAG ...]
                    [-- ...]

Make a new trial from trial ID: the same command with the given option values replaced or
added (positional arguments cannot be changed), inheriting ID's history (statistics, output,
artifacts) up to the cut, then run it. Branching copies nothing. The same parent, cut and
options give the same branch again, which is then resumed.

options:
  --timestamp KEY=VALUE  cut after the statistic where KEY == VALUE (e.g. epoch=10), and the
                         events that follow it until the next statistic
  --timestamp ISO-TIME   cut after the last event logged at or before this time
                         (default: cut at ID's last event, inheriting its whole history)
  --fresh                inherit no history: start over from scratch (e.g. after a fix),
                         keeping the link to ID in the lineage
  --no-run               create the branch and print its id, do not run it
  --tag TAG              tag the branch (repeatable; the parent's tags are kept)
  -q, --quiet            do not print the 'trial reserved' line
  --db URI               journal to use, as before the command (before ID: after it, --db is
                         an option of the program's)
  -h, --help             show this help
  --                     every token after it is an option of the program
"""


#: kleio branch's own options: the flags, and those that take a value.
_FLAGS = {"--no-run": "no_run", "--fresh": "fresh", "-q": "quiet", "--quiet": "quiet"}
_VALUED = ("--timestamp", "--tag")


def parse(argv: list[str]) -> tuple[dict[str, Any], str | None, list[str]]:
    """Split ``kleio branch``'s arguments: its options, the trial id, the program's options.

    The tokens are walked by the one rule for options (:func:`kleio.argv.walk`); what is
    not kleio's own option is the id (the first positional) or an override.
    """
    options: dict[str, Any] = {
        "timestamp": None,
        "no_run": False,
        "tags": [],
        "quiet": False,
        "fresh": False,
        "db": None,
    }
    trial: str | None = None
    overrides: list[str] = []
    for kind, name, tokens in walk(argv):
        if kind == "end":
            overrides.extend(tokens[1:])
            break
        if kind == "opt" and tokens[0] in ("-h", "--help") and trial is None:
            options["help"] = True
            return options, None, []
        rest = tokens[1:]  # a flag's "value" is the next positional: the id or an override
        if kind == "opt" and name == "--db" and trial is None:
            uri = tokens[0].partition("=")[2] if "=" in tokens[0] else (rest[0] if rest else "")
            if not uri:
                raise UsageError("--db needs a URI", "e.g. --db sqlite:///tmp/kleio.db")
            options["db"] = uri
            continue
        if kind == "opt" and name in _VALUED:
            value = (
                tokens[0].partition("=")[2] if "=" in tokens[0] else (tokens[1] if rest else None)
            )
            if value is None:
                raise UsageError(f"{name} needs a value", "see 'kleio branch --help'")
            if name == "--tag":
                options["tags"].append(value)
            else:
                options["timestamp"] = value
            continue
        if kind == "opt" and tokens[0] in _FLAGS:
            options[_FLAGS[tokens[0]]] = True
        else:
            rest = tokens
        if rest and trial is None:
            if rest[0].startswith("-"):  # an option of the program's, or a number: no id
                raise UsageError(
                    f"unknown option {rest[0]!r} before the trial id",
                    "kleio branch's options are --timestamp, --fresh, --no-run, --tag, --db "
                    "and -q; "
                    "give the program's options after the id",
                )
            trial, rest = rest[0], rest[1:]
        overrides.extend(rest)
    return options, trial, overrides


def _check_timestamp(spec: str) -> None:
    """Refuse a ``--timestamp`` that is neither ``KEY=VALUE`` nor an ISO time, before the
    journal is opened (as :func:`kleio.branching.resolve_timestamp` reads it).

    The sentence names the form without an ``X=Y`` of kleio's own: every message passes the
    masking of secrets, which would show a literal ``KEY=VALUE`` as ``KEY=***``; what the user
    typed is quoted and masked as usual.
    """
    key, eq, _ = spec.partition("=")
    if eq and key.strip():
        return
    from datetime import datetime

    try:
        datetime.fromisoformat(spec.strip())
    except ValueError:
        raise UsageError(
            f"--timestamp {spec!r} is neither a statistic such as epoch=10 nor an ISO time",
            "write e.g. --timestamp epoch=10 or --timestamp 2024-05-01T12:30:00",
        ) from None


def main(argv: list[str], flags: dict[str, Any]) -> int:
    options, prefix, overrides = parse(argv)
    if options.get("help"):
        sys.stdout.write(HELP)
        return 0
    if prefix is None:
        raise UsageError("no trial id to branch", "give one, e.g. 'kleio branch 3f2a --lr 0.05'")
    if options["fresh"] and options["timestamp"] is not None:
        raise UsageError(
            "--fresh and --timestamp cannot be combined",
            "--fresh inherits nothing; --timestamp inherits up to a cut",
        )
    if options["timestamp"] is not None:
        _check_timestamp(options["timestamp"])
    from kleio.cli.leading import check_tags

    check_tags(options["tags"])
    from kleio import launch
    from kleio.branching import apply_overrides, create_branch, resolve_timestamp
    from kleio.cli.launch import branched_line, explain_refusal, run_prepared
    from kleio.config import load_config
    from kleio.storage import open_store
    from kleio.trial import build_trial, execution_dir, resolve_trial

    config = load_config({"db": flags.get("db") if options["db"] is None else options["db"]})
    store = open_store(config.db)
    try:
        given = resolve_trial(store, prefix)
        if options["timestamp"] is not None:
            parent, cut = resolve_timestamp(store, given, options["timestamp"])
        elif options["fresh"]:
            parent, cut = given, -1
        else:
            parent, cut = given, store.last_seq(trial_id=given["id"]) or 0
        reason = _reason(given, parent, options, overrides)
        cwd = execution_dir(given, os.getcwd())
        if given.get("redacted"):
            create_branch(store, given, cut=cut, reason=reason)  # raises: nothing to replay
        command = apply_overrides(given.get("argv") or given.get("command") or [], overrides)
        current = build_trial(command, cwd, config, options["tags"])
        child, new = create_branch(
            store,
            parent,
            cut=cut,
            reason=reason,
            argv=command,
            cwd=cwd,
            current=current,
            tags=options["tags"],
        )
        made = launch.Branched(parent=given, doc=child, reason=reason, new=new)
        sys.stderr.write(branched_line(made) + "\n")
        changed = launch.detect_changes(parent, current[0])
        if changed and new:
            sys.stderr.write(
                f"kleio: note: the branch records and runs the current code and "
                f"environment, not {short_id(parent['id'])}'s "
                f"({launch.summarize_changes(changed)})\n"
            )
        sys.stderr.flush()
        if options["no_run"]:
            print(child["id"])
            return 0
        prepared = launch.Prepared(doc=child, argv=command, cwd=cwd, current=current, created=new)
        if not new:
            # A branch made earlier with the same parent, cut and options is resumed: like
            # any resume, it must still have its own code and environment.
            launch.refuse_completed(child, set())
            try:
                launch.gate(store, prepared, allowed=set(), tags=options["tags"])
            except ChangeRefused as error:
                raise explain_refusal(error, None) from None
        return run_prepared(store, config, prepared, allow_broken=False, quiet=options["quiet"])
    finally:
        store.close()


def _reason(
    given: dict[str, Any], parent: dict[str, Any], options: dict[str, Any], overrides: list[str]
) -> str:
    from kleio.redact import redact_argv

    parts = []
    if overrides:  # journalled and shown: a secret among them is masked, as in the command
        parts.append(shlex.join(redact_argv(list(overrides))[0]))
    timestamp = options["timestamp"]
    if options["fresh"]:
        parts.append("fresh: no history inherited")
    elif timestamp is not None:
        where = timestamp
        if parent["id"] != given["id"]:
            where += f" of ancestor {short_id(parent['id'])}"
        parts.append(f"cut at {where}")
    else:
        parts.append("cut at its last event")
    return "; ".join(parts)
