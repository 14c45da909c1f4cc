"""``kleio export``: trials (or their statistics) as CSV, JSON lines or Parquet, for scripts.

One row per trial: the fields of ``kleio ls --json`` flattened (``tags`` joined with ``;``,
``command`` as one shell-quoted string), one column per option, and ``NAME.best`` /
``NAME.last`` per metric. With ``--statistics``: one row per statistic of each trial's
lineage (``trial``, ``index``, then the logged keys). JSON lines keep the nesting: each line
is the trial object of ``kleio ls --json``, or ``{"trial", "index", "statistic"}``.
CSV cells are made safe for spreadsheets by :func:`csv_cell`.
"""

from __future__ import annotations

import itertools
import re
import shlex
import sys
from collections.abc import Iterator
from typing import Any

from kleio.cli.common import count, json_line, parser, stdout_bytes, text
from kleio.cli.output import open_output

FORMATS = ("csv", "jsonl", "parquet")
BASE_COLUMNS = (
    "id",
    "status",
    "project",
    "created_at",
    "started_at",
    "ended_at",
    "duration",
    "exit_code",
    "parent",
    "tags",
    "note",
    "command",
    "primary_metric",
)


def trial_row(trial: Any) -> dict[str, Any]:
    """One flat row of a trial (see the module docstring)."""
    data = trial.to_json()
    row: dict[str, Any] = {key: data[key] for key in BASE_COLUMNS}
    row["tags"] = ";".join(data["tags"])
    row["command"] = shlex.join(data["command"])
    for key, value in trial.options.items():
        row[f"option.{key}" if key in row else key] = _flat(value)
    for name, entry in trial.metrics.items():
        row[f"{name}.best"] = entry["best"]
        row[f"{name}.last"] = entry["last"]
    return row


def _flat(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return value


#: The first characters that make a spreadsheet read a cell as a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: None empty, booleans ``true``/``false`` (as in JSON), and text
    a spreadsheet would run as a formula quoted by a leading apostrophe (OWASP's advice on
    CSV injection); text that is a plain number (``-0.1``, an option as typed) is kept."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    formula = isinstance(value, str) and value.startswith(FORMULA_STARTS)
    if formula and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def _csv_lines(header: list[str], rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    # A carriage return in a cell is not quoted by QUOTE_MINIMAL with "\n" lines (only the
    # terminator's characters are): such a row is written with every cell quoted.
    quoted = csv.DictWriter(
        buffer,
        fieldnames=header,
        extrasaction="ignore",
        lineterminator="\n",
        quoting=csv.QUOTE_ALL,
    )
    header_cells = {name: csv_cell(name) for name in header}
    cell_rows = ({k: csv_cell(v) for k, v in row.items()} for row in rows)
    for cells in itertools.chain([header_cells], cell_rows):
        chosen = quoted if any("\r" in str(v) for v in cells.values()) else writer
        chosen.writerow(cells)
        if buffer.tell() > 1 << 16:
            yield buffer.getvalue().encode("utf-8", "surrogateescape")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8", "surrogateescape")


def main(argv: list[str], flags: dict[str, Any]) -> int:
    from kleio.cli.selection import add_filters, filters_of, journal_of

    p = parser(
        "export",
        "Write the trials matching the filters (or their statistics) as "
        "CSV, JSON lines or Parquet, for scripts and spreadsheets.",
        json_output=False,
    )
    add_filters(p)
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="csv",
        help="csv (default), jsonl (one JSON object per line) or parquet "
        "(needs pandas and pyarrow)",
    )
    p.add_argument(
        "--statistics",
        action="store_true",
        help="one row per statistic of each trial's lineage instead of one per trial",
    )
    p.add_argument("--limit", type=count, default=None, help="at most this many trials")
    p.add_argument(
        "-o",
        "--output",
        type=text,
        metavar="FILE",
        help="write to FILE (created private, 0600) instead of stdout",
    )
    args = p.parse_args(argv)
    if args.format == "parquet" and not args.output:
        p.error("--format parquet needs -o FILE (it is not text)")
    if args.format == "parquet":
        _require_parquet()
    filters = filters_of(args)
    with journal_of(flags, args.metric) as journal:
        trials = journal.trials(**filters, limit=args.limit)
        if args.format == "parquet":
            _parquet(trials, args.statistics, args.output)
            return 0
        out: Any = open_output(args.output) if args.output else stdout_bytes()
        try:
            for chunk in _chunks(trials, args.format, args.statistics):
                out.write(chunk)
        finally:
            if args.output:
                out.close()
            else:
                out.flush()
    return 0


def _chunks(trials: list[Any], fmt: str, statistics: bool) -> Iterator[bytes]:
    if fmt == "jsonl":
        for trial in trials:
            if statistics:
                for index, stat in enumerate(trial.iter_statistics()):
                    yield json_line({"trial": trial.id, "index": index, "statistic": stat})
            else:
                yield json_line(trial.to_json())
        return
    if statistics:
        keys: dict[str, None] = {}
        for trial in trials:  # the header first: one pass for the keys, one for the rows
            for stat in trial.iter_statistics():
                keys.update(dict.fromkeys(stat))

        def stat_rows() -> Iterator[dict[str, Any]]:
            for trial in trials:
                for index, stat in enumerate(trial.iter_statistics()):
                    yield {
                        "trial": trial.id,
                        "index": index,
                        **{k: _cell(v) for k, v in stat.items()},
                    }

        yield from _csv_lines(
            ["trial", "index", *[k for k in keys if k not in ("trial", "index")]], stat_rows()
        )
        return
    rows = [trial_row(trial) for trial in trials]
    header: dict[str, None] = dict.fromkeys(BASE_COLUMNS)
    for row in rows:
        header.update(dict.fromkeys(row))
    yield from _csv_lines(list(header), iter(rows))


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json_line(value).decode("utf-8").rstrip("\n")
    return value


def _require_parquet() -> None:
    """Refuse ``--format parquet`` before reading anything when pandas or a Parquet engine
    is missing (exit code 76, with the install line)."""
    import importlib.util

    from kleio.errors import MissingExtra

    def importable(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    if not importable("pandas"):
        raise MissingExtra(
            "--format parquet needs pandas and pyarrow, which are not installed",
            "install them with: pip install 'kleio[pandas]' pyarrow",
        )
    if not importable("pyarrow") and not importable("fastparquet"):
        raise MissingExtra(
            "--format parquet needs pyarrow (or fastparquet), which is not installed",
            "install it with: pip install pyarrow",
        )


def _parquet(trials: list[Any], statistics: bool, path: str) -> None:
    import pandas

    from kleio.api import statistics_dataframe

    if statistics:
        frame = statistics_dataframe(trials)
    else:
        frame = pandas.DataFrame([trial_row(t) for t in trials])
    with open_output(path) as out:  # (created private; a path that cannot be written: one
        frame.to_parquet(_Writable(out))  # error naming it)
    sys.stderr.write(f"wrote {len(frame)} rows to {path}\n")


class _Writable:
    """A ``-o FILE`` (:func:`kleio.cli.output.open_output`) as the binary file object that
    ``DataFrame.to_parquet`` writes to."""

    def __init__(self, out: Any) -> None:
        self._out = out
        self.closed = False

    def write(self, data: Any) -> int:
        self._out.write(bytes(data))
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
