"""``kleio tail [-n N] [-f] ID``: the last lines of a trial's output; -f follows it."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, Callable

from kleio.cli.common import count, json_line, parser, stdout_bytes, store_from, write_line
from kleio.cli.output import ended_lines, output_record
from kleio.reservation import HELD, display_status, hostname
from kleio.storage.base import Event, Store
from kleio.trial import resolve_trial, short_id

POLL = 0.25


def last_events(
    store: Store, trial_id: str, *, kinds: Sequence[str], count: int, upto: int | None
) -> list[Event]:
    """The last ``count`` events of a lineage, the trial's own ones only up to ``upto``.

    ``upto`` is the trial's last sequence number read *before* this call: events journalled
    meanwhile are left to the follow loop (after ``upto``), so none is skipped or doubled.
    ``upto=None`` means the trial had no event of its own yet: only its ancestors are read.
    """
    result: list[Event] = []
    for doc, cut in reversed(store.lineage(trial_id=trial_id)):
        need = count - len(result)
        if need <= 0:
            break
        own = doc["id"] == trial_id and cut is None
        if own and upto is None:
            continue
        result.extend(
            store.read_events(
                trial_id=doc["id"], kinds=kinds, upto=upto if own else cut, limit=need, reverse=True
            )
        )
    result.reverse()
    return result


def tail(
    store: Store,
    doc: dict[str, Any],
    *,
    kind: str,
    lines: int,
    follow: bool,
    show: Callable[[Event], None],
    host: str,
    stale_after: float,
    poll: float = POLL,
) -> int:
    """Show the last ``lines`` events of ``kind``, then (``follow``) every new one until the
    trial is no longer held by a runner. Returns the exit code."""
    trial_id = doc["id"]
    # The last seq first, then the tail up to it: an event journalled between the two reads
    # is above ``last`` and comes through the follow loop (reading the tail first skipped
    # every line written while it was printed).
    last = store.last_seq(trial_id=trial_id)
    for event in ended_lines(last_events(store, trial_id, kinds=(kind,), count=lines, upto=last)):
        show(event)
    stdout_bytes().flush()
    if not follow:
        return 0
    if doc.get("status") == "new":
        sys.stderr.write(
            f"kleio: trial {short_id(trial_id)} has not started yet; waiting for it "
            "(Ctrl-C to stop)\n"
        )
    while True:
        # The status before the events: once it says the run ended, the read that follows
        # sees everything the runner journalled before ending, and nothing is left behind.
        doc = store.get_trial(trial_id=trial_id) or doc
        status = display_status(doc, host=host, stale_after=stale_after)
        fresh = store.read_events(trial_id=trial_id, after=last)
        for event in fresh:
            if event.kind == kind:
                show(event)
        if fresh:
            last = fresh[-1].seq
            stdout_bytes().flush()
            continue
        if status not in HELD and status != "new":
            if status == "lost":
                sys.stderr.write(f"kleio: trial {short_id(trial_id)}'s runner is gone (lost)\n")
            return 0
        time.sleep(poll)


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser("tail", "Print the last lines of a trial's output; -f follows a running trial.")
    p.add_argument("id", help="trial id or a unique prefix of it")
    p.add_argument(
        "-n", "--lines", type=count, default=10, metavar="N", help="how many lines (default 10)"
    )
    p.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new lines until the trial ends"
    )
    p.add_argument("--stderr", action="store_true", help="the error output instead")
    args = p.parse_args(argv)
    kind = "stderr" if args.stderr else "stdout"
    store, config = store_from(flags)
    out = stdout_bytes()
    # A line not ended yet (a progress bar) is redrawn in place on a terminal, as the
    # program's own terminal shows it; a pipe gets ended lines only.
    live = sys.stdout.isatty()
    drawn = [False]  # a partial line is on the screen, to be overwritten

    def show(event: Event) -> None:
        partial = bool(event.data.get("partial"))
        if args.json:
            out.write(json_line(output_record(kind, event)))
        elif partial:
            if live:
                out.write(
                    b"\r\x1b[K" + event.data.get("line", "").encode("utf-8", "surrogateescape")
                )
                drawn[0] = True
        else:
            if drawn[0]:
                out.write(b"\r\x1b[K")
                drawn[0] = False
            write_line(event.data.get("line", ""))

    with store:
        doc = resolve_trial(store, args.id)
        return tail(
            store,
            doc,
            kind=kind,
            lines=args.lines,
            follow=args.follow,
            show=show,
            host=hostname(config.hostname),
            stale_after=config.stale_after,
        )
