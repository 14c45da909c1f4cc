"""``kleio checkout ID [-o DIR]``: a trial's code state, in a new directory."""

from __future__ import annotations

import os
from typing import Any

from kleio.cli.common import parser, store_from
from kleio.trial import resolve_trial


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser("checkout", "Materialize a trial's code (its commit, recorded diff and untracked "
               "sources) into a new directory. Nothing existing is overwritten.",
               json_output=False)
    p.add_argument("id", help="trial id or a unique prefix of it")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="the new directory (default: ./kleio-ID in the current directory)")
    args = p.parse_args(argv)
    from kleio.codestate import checkout

    store, _ = store_from(flags)
    with store:
        doc = resolve_trial(store, args.id)
        dest = args.output or f"kleio-{doc['id'][:7]}"
        held = checkout(store, doc, dest, [os.getcwd(), doc.get("root")])
    print(f"checked out trial {doc['id'][:7]} into {dest}: {held}")
    return 0
