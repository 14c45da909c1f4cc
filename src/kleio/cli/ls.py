"""``kleio ls`` (alias ``list``): list trials."""

from __future__ import annotations

import shlex
import time
from typing import Any

from kleio.cli.common import (
    NoJournal,
    count,
    duration,
    emit,
    parser,
    print_json,
    store_from,
    table,
    text,
    when,
)
from kleio.reservation import display_status, hostname
from kleio.storage.base import SORTABLE_FIELDS, STATUSES

SORT_KEYS = {"created": "created_at", "started": "started_at", "ended": "ended_at",
             "status": "status", "id": "id"}


def summary(doc: dict[str, Any], *, host: str, stale_after: float) -> dict[str, Any]:
    """The JSON shape of one trial in ``kleio ls --json`` (kept stable, tested)."""
    started, ended = doc.get("started_at"), doc.get("ended_at")
    status = display_status(doc, host=host, stale_after=stale_after)
    # A lost trial stopped at its last heartbeat; a running one is still going.
    end = ended or ((doc.get("heartbeat_at") if status == "lost" else time.time())
                    if started else None)
    parent = doc.get("parent") or None
    return {
        "id": doc["id"],
        "short_id": doc["id"][:7],
        "status": status,
        "command": list(doc.get("argv") or doc.get("command") or []),
        "created_at": doc.get("created_at"),
        "started_at": started,
        "ended_at": ended,
        "duration": (end - started) if started and end else None,
        "exit_code": doc.get("exit_code"),
        "parent": parent["id"] if parent else None,
        "tags": list(doc.get("tags") or []),
    }


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser("ls", "List trials, newest first.")
    p.add_argument("--status", action="append", metavar="STATUS",
                   help=f"only trials with this status (repeatable): {', '.join(STATUSES)}, "
                        "or lost (held by a runner that died)")
    p.add_argument("--tag", action="append", type=text, metavar="TAG",
                   help="only trials with this tag")
    p.add_argument("--sort", default="-created",
                   help="created, started, ended, status or id; prefix '-' for descending "
                        "(default: -created)")
    p.add_argument("--limit", type=count, default=None, help="at most this many trials")
    args = p.parse_args(argv)
    descending = args.sort.startswith("-")
    key = SORT_KEYS.get(args.sort.lstrip("-"), args.sort.lstrip("-"))
    if key not in SORTABLE_FIELDS:
        p.error(f"cannot sort by {args.sort!r}; use one of {', '.join(SORT_KEYS)}")
    statuses = None
    if args.status:
        unknown = [s for s in args.status if s not in STATUSES and s != "lost"]
        if unknown:
            p.error(f"unknown status {unknown[0]!r}; use one of {', '.join(STATUSES)}, lost")
        statuses = sorted({("running" if s == "lost" else s) for s in args.status}
                          | ({"reserved"} if "lost" in args.status else set()))
    try:
        store, config = store_from(flags)
    except NoJournal as error:
        if args.json:
            print_json([])
        else:
            emit(f"no trials yet: {error}\n")
        return 0
    with store:
        docs = store.find_trials(statuses=statuses, tags=args.tag,
                                 sort=("-" if descending else "") + key, limit=args.limit)
    host = hostname(config["hostname"])
    stale = float(config["stale_after"])
    rows = [summary(doc, host=host, stale_after=stale) for doc in docs]
    if args.status:  # a held trial whose runner died shows (and filters) as "lost"
        wanted = set(args.status)
        rows = [r for r in rows if r["status"] in wanted]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        if args.status or args.tag or args.limit == 0:
            emit("no trials match these filters\n")
        else:
            emit("no trials yet: run one with 'kleio python train.py'\n")
        return 0
    parents = {r["parent"] for r in rows if r["parent"]}
    emit(table(
        ["ID", "STATUS", "STARTED", "DURATION", "COMMAND"],
        [[r["short_id"] + ("^" if r["parent"] else "") + ("*" if r["id"] in parents else ""),
          r["status"], when(r["started_at"]), duration(r["duration"]),
          shlex.join(r["command"])] for r in rows],
    ))
    if parents:
        emit("^ a branch of another trial, * a trial with branches "
             "('kleio info ID' shows the lineage)\n")
    return 0
