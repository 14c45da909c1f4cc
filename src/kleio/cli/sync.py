"""``kleio sync``: journal what dead runners left on this host (spool and ledger)."""

from __future__ import annotations

import os
from typing import Any

from kleio.cli.common import parser, print_json, store_from
from kleio.ledger import recover_all
from kleio.reservation import pid_alive


def _remove_orphan_artifacts(directory: str) -> list[str]:
    """Delete artifact files a killed runner was receiving (never referenced by any event)."""
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for name in names:
        parts = name.split("-")
        if parts[0] != "artifact" or len(parts) < 3 or not parts[1].isdigit():
            continue
        if int(parts[1]) == os.getpid() or pid_alive(int(parts[1])):
            continue
        try:
            os.remove(os.path.join(directory, name))
            removed.append(name)
        except OSError:
            pass
    return removed


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser(
        "sync",
        "Journal what runners that are no longer alive left on this host: "
        "their spooled events and their programs' ledger.",
    )
    args = p.parse_args(argv)
    store, config = store_from(flags, create=True)
    replayed = []
    skipped = []
    with store:
        for path, count in recover_all(store, config.spool_dir):
            if count is None:
                skipped.append(path)
            else:
                replayed.append({"file": path, "events": count})
        removed = _remove_orphan_artifacts(config.spool_dir)
    if args.json:
        print_json({"replayed": replayed, "skipped": skipped, "removed": removed})
    elif not replayed and not skipped:
        print(
            "nothing to sync: the spool is empty"
            + (
                f" (removed {len(removed)} partial artifact files of dead runners)"
                if removed
                else ""
            )
        )
    else:
        for item in replayed:
            events = item["events"]
            print(f"replayed {events} event{'s' if events != 1 else ''} from {item['file']}")
        for path in skipped:
            print(
                f"skipped {path}: its runner is still alive, another process is syncing "
                "it, or it belongs to another journal (give that one with --db)"
            )
    return 0
