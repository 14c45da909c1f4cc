"""``kleio ls`` (alias ``list``): list, filter and rank trials.

The filter options (``--where``, ``--status``, ``--tag``, ``--project``, ``--since``,
``--metric``) are shared with ``kleio best`` and ``kleio export`` through
:mod:`kleio.cli.selection`; the reading itself is :mod:`kleio.api`.
"""

from __future__ import annotations

import shlex
from typing import Any

from kleio.cli.common import (
    count,
    duration,
    emit,
    parser,
    print_json,
    table,
    text,
    when,
)
from kleio.cli.selection import add_filters, cell, check_names, filters_of, journal_of
from kleio.errors import NoJournal

#: Trials ``kleio ls`` shows unless ``--limit`` or ``--all`` says otherwise.
DEFAULT_LIMIT = 50


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser("ls", "List trials, newest first; filter, sort and choose columns.")
    add_filters(p)
    p.add_argument(
        "--columns",
        type=text,
        metavar="A,B,...",
        help="show these options, metrics (best; NAME.last for last) or fields as "
        "columns (default: the primary metric, when one is declared)",
    )
    p.add_argument(
        "--limit",
        type=count,
        default=None,
        help=f"at most this many trials (default: {DEFAULT_LIMIT})",
    )
    p.add_argument("--all", action="store_true", help="every matching trial, no limit")
    p.add_argument(
        "--group-by-except",
        type=text,
        metavar="A,B,...",
        help="one row per group of trials whose options are equal except these "
        "(e.g. seed): N and mean ± std of each metric column's best (NAME.last: "
        "last)",
    )
    args = p.parse_args(argv)
    if args.all and args.limit is not None:
        p.error("give --limit or --all, not both")
    filters = filters_of(args)
    columns = names_of(args.columns, "--columns")
    names_of(args.group_by_except, "--group-by-except")
    limit = None if args.all else (DEFAULT_LIMIT if args.limit is None else args.limit)
    try:
        journal = journal_of(flags, args.metric)
    except NoJournal as error:
        if args.json:
            print_json([])
        else:
            emit(f"no trials yet: {error}\n")
        return 0
    with journal:
        if args.group_by_except is not None:
            return _groups(journal, filters, limit, args, columns)
        shown, more, exact = _select(journal, filters, limit)
        check_names(shown, columns, "show the column")
        if not columns and not args.columns:
            primaries = list(dict.fromkeys(t.primary for t in shown if t.primary))
            columns = primaries[:2]
        if args.json:
            print_json([{**t.to_json(), "checks": t.doc.get("checks") or {}} for t in shown])
            return 0
        if not shown:
            emit(_nothing(filters, limit))
            return 0
        parents = _with_branches(journal, shown)
        headers = ["ID", "STATUS", "STARTED", "DURATION", *[c.upper() for c in columns], "COMMAND"]
        rows = [
            [
                t.short_id + ("^" if t.parent else "") + ("*" if t.id in parents else ""),
                t.status + _checks_mark(t.doc),
                when(t.started_at),
                duration(t.duration),
                *[cell(t.value(c)) for c in columns],
                shlex.join(t.command),
            ]
            for t in shown
        ]
    emit(table(headers, rows))
    if parents or any(t.parent for t in shown):
        emit(
            "^ a branch of another trial, * a trial with branches "
            "('kleio info ID' shows the lineage)\n"
        )
    if any(_checks_mark(t.doc) for t in shown):
        emit("! a check found an error in the trial, ? a warning ('kleio info ID' shows them)\n")
    if more:
        many = f"{more} more trials match" if exact else "more trials match"
        emit(f"({many}: show them with --limit N or --all)\n")
    return 0


def _nothing(filters: dict[str, Any], limit: int | None) -> str:
    """What ``kleio ls`` says when it shows no trial."""
    if limit == 0:
        return "no trials shown: --limit 0 shows none (give --limit N or --all)\n"
    if any(filters.get(k) for k in ("where", "status", "tags", "project", "since")):
        return "no trials match these filters\n"
    return "no trials yet: run one with 'kleio python train.py'\n"


def _checks_mark(doc: dict[str, Any]) -> str:
    """``!`` when checks found an error during the trial's runs, ``?`` for a warning."""
    found = doc.get("checks") or {}
    return "!" if found.get("error") else ("?" if found.get("warning") else "")


def _select(
    journal: Any, filters: dict[str, Any], limit: int | None
) -> tuple[list[Any], int, bool]:
    """``(trials shown, how many more match, whether that count is exact)``.

    When the database sorts and limits, one more trial than shown is asked for, so the count
    of the others is not known (only that there are some).
    """
    if limit is None:
        return journal.trials(**filters), 0, True
    from kleio.api import STORE_SORTS, parse_sort, ranked_sort

    name, _ = parse_sort(filters.get("sort") or "-created")
    if name in STORE_SORTS or ranked_sort(name):  # streamed: stop one past the limit
        trials = journal.trials(**filters, limit=limit + 1 if limit < (1 << 62) else limit)
        return trials[:limit], len(trials) - len(trials[:limit]), False
    trials = journal.trials(**filters)  # sorted here: every match is read anyway
    return trials[:limit], max(0, len(trials) - limit), True


def _with_branches(journal: Any, shown: list[Any]) -> set[str]:
    """The ids of ``shown`` that have branches, listed or not (one indexed query)."""
    return journal.store.with_branches(trial_ids=[t.id for t in shown]) if shown else set()


def names_of(given: str | None, option: str) -> list[str]:
    """The names of a comma-separated option (``--columns``; a name holding a comma in double
    quotes), refusing one that names none."""
    if given is None:
        return []
    from kleio.api.conditions import split_names

    names = split_names(given)
    if not names:
        from kleio.errors import UsageError

        raise UsageError(
            f"{option} {given[:40]!r} names nothing",
            f"give names separated by commas, e.g. {option} lr,val_acc",
        )
    return names


def _groups(
    journal: Any, filters: dict[str, Any], limit: int | None, args: Any, columns: list[str]
) -> int:
    """``ls --group-by-except NAMES``: one row per group (see :func:`kleio.api.groups`)."""
    from kleio.api import groups
    from kleio.errors import UsageError

    ignored = [n.lstrip("-") for n in names_of(args.group_by_except, "--group-by-except")]
    trials = journal.trials(**filters)
    for name in ignored:
        if trials and not any(name in t.options for t in trials):
            options = sorted({o for t in trials for o in t.options})[:8]
            raise UsageError(
                f"cannot group by every option except {name!r}: no listed trial has that option",
                f"options: {', '.join(options) or 'none'}",
            )
    found = groups(trials, except_=ignored)
    more = max(0, len(found) - limit) if limit is not None else 0
    found = found[:limit] if limit is not None else found
    check_names(trials, columns, "show the column")
    if not columns:
        primaries = list(dict.fromkeys(t.primary for t in trials if t.primary))
        columns = primaries[:2]
    if args.json:
        print_json([g.to_json() for g in found])
        return 0
    if not found:
        emit("no trials match these filters\n")
        return 0
    varying = [
        k
        for k in dict.fromkeys(k for g in found for k in g.options)
        if len({repr(g.options.get(k)) for g in found}) > 1
    ]
    headers = [*[k.upper() for k in varying], "N", *[c.upper() for c in columns], "IDS"]
    rows = []
    for group in found:
        cells = [cell(group.options.get(k)) for k in varying]
        cells.append(str(group.n))
        for column in columns:
            name, _, which = column.rpartition(".")
            if which not in ("last", "best"):
                name, which = column, "best"
            mean, std = group.mean(name, which), group.std(name, which)
            cells.append("-" if mean is None else f"{mean:.4g} ± {std:.2g}")
        cells.append(",".join(t.short_id for t in group.trials))
        rows.append(cells)
    emit(table(headers, rows))
    if more:
        emit(f"({more} more groups match: show them with --limit N or --all)\n")
    return 0
