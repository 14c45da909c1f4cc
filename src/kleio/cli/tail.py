"""``kleio tail [-n N] [-f] ID``: the last lines of a trial's output; -f follows it."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from kleio.cli.common import parser, store_from, write_line
from kleio.reservation import HELD, display_status, hostname
from kleio.trial import resolve_trial

POLL = 0.25


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser("tail", "Print the last lines of a trial's output; -f follows a running trial.")
    p.add_argument("id", help="trial id or a unique prefix of it")
    p.add_argument("-n", "--lines", type=int, default=10, metavar="N",
                   help="how many lines (default 10)")
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new lines until the trial ends")
    p.add_argument("--stderr", action="store_true", help="the error output instead")
    args = p.parse_args(argv)
    if args.lines < 0:
        p.error("-n must be positive")
    kind = "stderr" if args.stderr else "stdout"
    store, config = store_from(flags)
    host = hostname(config["hostname"])
    stale = float(config["stale_after"])

    def show(event: Any) -> None:
        if args.json:
            sys.stdout.write(json.dumps({"stream": kind, "time": event.time,
                                         "line": event.data.get("line", "")}) + "\n")
        else:
            write_line(event.data.get("line", ""))

    with store:
        doc = resolve_trial(store, args.id)
        trial_id = doc["id"]
        events = store.tail_lineage_events(trial_id=trial_id, kinds=(kind,), count=args.lines)
        for event in events:
            show(event)
        sys.stdout.flush()
        if not args.follow:
            return 0
        last = store.last_seq(trial_id=trial_id) or 0
        if doc.get("status") == "new":
            sys.stderr.write(f"kleio: trial {trial_id[:7]} has not started yet; waiting for it "
                             "(Ctrl-C to stop)\n")
        while True:
            fresh = store.read_events(trial_id=trial_id, after=last)
            for event in fresh:
                if event.kind == kind:
                    show(event)
            if fresh:
                last = fresh[-1].seq
                sys.stdout.flush()
            doc = store.get_trial(trial_id=trial_id) or doc
            status = display_status(doc, host=host, stale_after=stale)
            if not fresh and status not in HELD and status != "new":
                if status == "lost":
                    sys.stderr.write(f"kleio: trial {trial_id[:7]}'s runner is gone (lost)\n")
                return 0
            if not fresh:
                time.sleep(POLL)
