"""``kleio best``: the short id of the best trial by a metric, for scripts."""

from __future__ import annotations

from typing import Any

from kleio.cli.common import emit, parser, print_json


def main(argv: list[str], flags: dict[str, Any]) -> int:
    from kleio.cli.selection import add_filters, filters_of, journal_of

    p = parser(
        "best",
        "Print the short id of the best trial by a metric (best value by its "
        "mode) among the trials matching the filters, e.g. "
        "'kleio checkout $(kleio best --metric val_acc)'.",
    )
    add_filters(p, sort=False)
    args = p.parse_args(argv)
    filters = filters_of(args)
    with journal_of(flags, args.metric) as journal:
        metric = args.metric[0] if args.metric else None
        found = journal.best(metric, **filters)
        if args.json:
            print_json(found.to_json())
        else:
            emit(found.short_id + "\n")
    return 0
