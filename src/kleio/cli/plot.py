"""``kleio plot ID... --y METRIC``: learning curves to a PNG, SVG or PDF (the ``plot`` extra)."""

from __future__ import annotations

import os
import sys
from typing import Any

from kleio.cli.common import parser, stdout_bytes
from kleio.trial import short_id


def _names(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return list(dict.fromkeys(out))


def default_path(ids: list[str], ys: list[str]) -> str:
    """Where a plot goes without -o: the working directory, named after what it shows."""
    name = "-".join([*(short_id(i) for i in ids[:3]), *(["more"] if len(ids) > 3 else []), *ys[:2]])
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
    return os.path.abspath(f"kleio-plot-{safe}.png")


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser(
        "plot",
        "Draw trials' statistics as learning curves: one panel per metric, one "
        "line per trial (or a mean ± std band per group).",
        json_output=False,
    )
    p.add_argument("ids", nargs="+", metavar="ID", help="trial ids or unique prefixes")
    p.add_argument(
        "--y",
        action="append",
        metavar="NAME",
        required=True,
        help="statistic to draw, one panel each (repeatable, or comma-separated)",
    )
    p.add_argument(
        "--x",
        metavar="KEY",
        help="statistic for the x axis (default: step, global_step, epoch, "
        "iteration or iter, the first logged; else the statistic's number)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="image to write: .png, .svg or .pdf (default on a terminal: a PNG in "
        "the working directory; otherwise PNG bytes on stdout)",
    )
    p.add_argument(
        "--group-by-except",
        action="append",
        metavar="OPTION",
        help="draw trials whose options differ only in these (e.g. seed) as one "
        "mean line with a ±std band",
    )
    p.add_argument("--title", help="a title above the panels")
    args = p.parse_args(argv)
    ys = _names(args.y)
    if not ys:
        p.error("--y needs a statistic name")
    except_ = _names(args.group_by_except)

    from kleio.plot import format_of

    fmt = format_of(args.output) if args.output else "png"
    from kleio.ui import require

    require("matplotlib", command="kleio plot", install="pip install 'kleio[plot]'")

    from kleio.api import open_journal
    from kleio.plot import panels_for, render

    with open_journal(flags.get("db")) as journal:
        trials = list({t.id: t for t in (journal.trial(i) for i in args.ids)}.values())
        panels = panels_for(journal, trials, ys, args.x, except_)
    if args.output:
        path = os.path.abspath(args.output)
        render(panels, path, fmt, title=args.title)
        sys.stderr.write(f"wrote {path}\n")
    elif sys.stdout is not None and sys.stdout.isatty():
        path = default_path([t.id for t in trials], ys)
        render(panels, path, "png", title=args.title)
        sys.stdout.write(path + "\n")
    else:
        out = stdout_bytes()
        render(panels, out, "png", title=args.title)
        out.flush()
    return 0
