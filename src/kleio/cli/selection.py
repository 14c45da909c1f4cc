"""What the reading commands share: the trial filters of ``ls``, ``best`` and ``export``
(``--where``, ``--status``, ``--tag``, ``--project``, ``--since``, ``--metric``, ``--sort``),
the journal they read, and how a value shows in a table cell.

Command modules never import each other (``tests/test_layout.py``): what two commands
share lives here or in :mod:`kleio.cli.common`.
"""

from __future__ import annotations

from typing import Any

from kleio.cli.common import text
from kleio.storage.base import STATUSES

#: Aliases of the sort fields (``--sort started`` means the first start).
FIELD_ALIASES = {"created_at": "created", "started_at": "started", "ended_at": "ended"}


def add_filters(p: Any, *, sort: bool = True) -> None:
    """The filter options of ``ls``, ``best`` and ``export`` (combined with AND)."""
    p.add_argument(
        "--where",
        action="append",
        type=text,
        metavar="COND",
        default=[],
        help="only trials where COND holds: NAME OP VALUE with OP one of "
        "= != < <= > >=, NAME a field (status, id, project, tag...), an "
        "option or a metric (its best; NAME.last for its last value), e.g. "
        "'lr<0.1' or status=completed; created, started, ended take a date "
        "(created>2024-05-01), id= an id prefix (repeatable)",
    )
    p.add_argument(
        "--status",
        action="append",
        type=text,
        metavar="STATUS",
        help=f"only trials with this status (repeatable): {', '.join(STATUSES)}, "
        "or lost (held by a runner that died)",
    )
    p.add_argument(
        "--tag",
        action="append",
        type=text,
        metavar="TAG",
        help="only trials with this tag (repeatable: every one)",
    )
    p.add_argument(
        "--project", type=text, metavar="TEXT", help="only trials whose project contains TEXT"
    )
    p.add_argument(
        "--since",
        type=text,
        metavar="WHEN",
        help="only trials created since WHEN: 2d, 3h, 30m, 1w, a date (2024-05-01) or "
        "epoch seconds",
    )
    p.add_argument(
        "--metric",
        action="append",
        type=text,
        metavar="NAME[:MODE]",
        default=[],
        help="treat NAME as a metric, MODE min or max (over the trial's own "
        "declaration and the name rule); the first is the primary metric "
        "(repeatable)",
    )
    if sort:
        p.add_argument(
            "--sort",
            default=None,
            metavar="KEY",
            help="created, started, ended, duration, status, id, an option or a "
            "metric (its best value); prefix '-' for descending; trials "
            "without it come last (default: -created)",
        )


def filters_of(args: Any) -> dict[str, Any]:
    """The keyword arguments of :meth:`kleio.api.Journal.trials` for parsed filter options."""
    from kleio.api import parse_since, parse_sort

    for status in args.status or ():
        if status not in STATUSES and status != "lost":
            from kleio.errors import UsageError

            raise UsageError(
                f"unknown status {status!r}", f"use one of {', '.join(STATUSES)}, lost"
            )
    filters: dict[str, Any] = {
        "where": list(args.where),
        "status": args.status,
        "tags": args.tag,
        "project": args.project,
    }
    if args.since is not None:
        filters["since"] = parse_since(args.since)
    sort = getattr(args, "sort", None)
    if sort is not None:
        name, descending = parse_sort(sort)
        filters["sort"] = ("-" if descending else "") + FIELD_ALIASES.get(name, name)
    return filters


def journal_of(flags: dict[str, Any], metrics: list[str]) -> Any:
    """The :class:`kleio.api.Journal` of ``--db`` (an SQLite journal must exist)."""
    from kleio.api import Journal

    journal = Journal(flags.get("db"), metrics=metrics)
    journal.store  # noqa: B018 - fail now (NoJournal) rather than half-way
    return journal


def check_names(trials: list[Any], names: list[str], what: str) -> None:
    """Refuse a column or sort key that no listed trial has (a typo, most often)."""
    from kleio.api.conditions import check_known

    check_known(trials, names, what)


def cell(value: Any) -> str:
    """A value in a table cell: numbers in 6 significant digits, long text clipped."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
        shown = ",".join(cell(v) for v in value)  # tags, a repeated option
    elif isinstance(value, (list, tuple, dict)):
        import json

        from kleio.cli.common import TOO_DEEP

        try:
            shown = json.dumps(value, sort_keys=True, default=str)
        except (RecursionError, TypeError, ValueError):
            shown = TOO_DEEP
    else:
        shown = str(value)
    return shown if len(shown) <= 40 else shown[:39] + "…"
