"""``kleio worker``: run saved trials until none is left (see :mod:`kleio.worker`)."""

from __future__ import annotations

import sys
from typing import Any

from kleio.cli.common import parser, store_from, text


def _count(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser(
        "worker",
        "Run saved trials ('kleio save'), oldest first, one after the other, until none is "
        "left. Any number of workers on any machines sharing the journal run every trial "
        "exactly once. SIGINT, SIGTERM or SIGHUP interrupts the running trial (it stays "
        "resumable) "
        "and stops the worker.",
        json_output=False,
    )
    p.add_argument(
        "--tag",
        action="append",
        default=[],
        type=text,
        metavar="TAG",
        help="run only trials carrying this tag (repeatable: every tag given)",
    )
    p.add_argument(
        "--max-trials", type=_count, default=None, metavar="N", help="stop after running N trials"
    )
    p.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=0.0,
        metavar="S",
        help="wait up to S seconds for new trials when none is left (default 0: stop at once)",
    )
    p.add_argument(
        "--allow-broken",
        action="store_true",
        help="also re-run trials that were broken when the worker started",
    )
    p.add_argument(
        "--allow-code-change",
        action="store_true",
        help="a trial whose code differs from this checkout's is branched and the "
        "branch run (default: the trial is skipped)",
    )
    p.add_argument(
        "--allow-env-change", action="store_true", help="likewise for a changed environment"
    )
    p.add_argument(
        "--allow-any-change",
        action="store_true",
        help="likewise for any change of code or environment",
    )
    args = p.parse_args(argv)

    from kleio.launch import allowed_changes
    from kleio.worker import Worker, WorkerOptions, summary

    options = WorkerOptions(
        tags=list(args.tag),
        max_trials=args.max_trials,
        idle_timeout=args.idle_timeout,
        allow_broken=args.allow_broken,
        allow_changes=allowed_changes(vars(args)),
    )
    store, config = store_from(flags, create=True)
    with store:
        result = Worker(store, config, options).run()
    sys.stderr.write(f"kleio worker: {summary(result)}\n")
    if result.stopped == "interrupted":
        return 128 + (result.signal or 2)
    if result.skipped:
        from kleio.errors import EXIT_SKIPPED

        return EXIT_SKIPPED
    return 0
