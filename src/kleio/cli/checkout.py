"""``kleio checkout ID [-o DIR]``: a trial's code state, in a new directory."""

from __future__ import annotations

import os
import re
from typing import Any

from kleio.cli.common import parser, store_from
from kleio.errors import UsageError
from kleio.trial import resolve_trial, short_id


def default_directory(trial_id: str, cwd: str) -> str:
    """Where ``kleio checkout ID`` writes without ``-o``: never inside the user's repository.

    A checkout is a clone, and a clone inside the working tree would be untracked clutter in
    it (and a repository inside a repository): it goes beside the repository, named after it.
    """
    from kleio.git import find_root

    root = find_root(cwd)
    if root is None:
        return f"kleio-{short_id(trial_id)}"
    parent, name = os.path.split(root.rstrip(os.sep))
    return os.path.join(os.path.relpath(parent, cwd), f"{name}-kleio-{short_id(trial_id)}")


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser(
        "checkout",
        "Materialize a trial's code (its commit, recorded diff, untracked "
        "sources, and the config files it named outside the repository) into a new "
        "directory. Nothing existing is overwritten.",
        json_output=False,
    )
    p.add_argument("id", help="trial id or a unique prefix of it")
    p.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="the new directory (default: REPO-kleio-ID beside the repository "
        "holding the current directory, else ./kleio-ID)",
    )
    args = p.parse_args(argv)
    from kleio.checkout import checkout

    store, _ = store_from(flags)
    with store:
        doc = resolve_trial(store, args.id)
        if not re.fullmatch(r"[0-9a-f]{64}", str(doc.get("id"))):
            # The default directory is named after the id the journal holds, and the id is
            # printed: it must be one, not a path or terminal escapes.
            raise UsageError(
                f"the trial's id {str(doc.get('id'))[:80]!r} is not a trial id",
                "the journal may have been altered",
            )
        dest = args.output or default_directory(doc["id"], os.getcwd())
        held = checkout(store, doc, dest, [os.getcwd(), doc.get("root")])
    print(f"checked out trial {short_id(doc['id'])} into {dest}: {held}")
    return 0
