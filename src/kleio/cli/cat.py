"""``kleio cat ID``: the journalled output (or statistics) of a trial's whole lineage."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from kleio.cli.cat_table import _compact, statistics_table, table_blocks
from kleio.cli.cat_table import stream_table as stream_table  # (its old import path)
from kleio.cli.common import emit, json_line, parser, stdout_bytes, store_from, write_line
from kleio.cli.output import ended_lines, output_record
from kleio.storage.base import JoinedTexts, decode
from kleio.trial import resolve_trial, short_id


def sort_key(key: str):  # noqa: ANN201 - a key function
    """Order statistics by ``key``: numbers, then strings, then others; missing last."""

    def order(stat: dict[str, Any]) -> tuple[int, Any]:
        if key not in stat or stat[key] is None:
            return (3, 0)
        value = stat[key]
        if isinstance(value, bool):
            return (0, int(value))
        if isinstance(value, (int, float)):
            return (0, value)
        if isinstance(value, str):
            return (1, value)
        return (2, _compact(value))

    return order


def sort_statistics(stats: list[dict[str, Any]], spec: str, trial_id: str) -> list[dict[str, Any]]:
    """Sort by ``KEY`` (``-KEY`` descending); statistics without the key come last."""
    from kleio.errors import UsageError

    key = spec[1:] if spec.startswith("-") else spec
    if stats and not any(key in stat for stat in stats):
        keys = sorted({k for stat in stats for k in stat})
        raise UsageError(
            f"no statistic of trial {short_id(trial_id)} has the key {key!r}",
            f"sort by one of: {', '.join(keys)}",
        )
    present = [s for s in stats if s.get(key) is not None]
    missing = [s for s in stats if s.get(key) is None]
    present.sort(key=sort_key(key), reverse=spec.startswith("-"))
    return present + missing


#: Statistic text whose every value is a JSON number, true, false or null and whose keys hold
#: no quote, backslash, comma, colon or control character: it is strict JSON, and Python's
#: json.dumps of its object differs from it only by the space after each separator, so
#: ``kleio cat --json`` writes it without decoding it. Anything else is decoded.
_VALUE = r"(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null)"
_KEY = r'"[^"\\,:\x00-\x1f]*"'
_FLAT = re.compile(rf"\{{{_KEY}:{_VALUE}(?:,{_KEY}:{_VALUE})*\}}")


#: Lines of flat statistic text, each ended by a newline: one match checks a whole batch.
_V = r"(?:-?+(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][-+]?+[0-9]++)?+|true|false|null)"
_K = r'"[^"\\,:\x00-\x1f]*+"'
_FLAT_LINES = re.compile(rf"(?:\{{{_K}:{_V}(?:,{_K}:{_V})*+\}}\n)++")


def json_lines(batches: Iterable[JoinedTexts | list[str | dict[str, Any]]]) -> Iterator[bytes]:
    """``--json`` lines of batches of statistics as the store gives them (stored JSON text
    or objects): the same bytes as :func:`json_line` of each decoded object; flat text is
    checked by one regular expression and spaced by two replacements, never decoded.

    A batch of flat ASCII text (the usual one) is checked, spaced and encoded whole: no
    work per statistic in Python. Any other batch is taken statistic by statistic."""
    flat = _FLAT.fullmatch
    for batch in batches:
        items: list[Any]
        if type(batch) is JoinedTexts:
            block, rows, items = batch.text, batch.rows, []
        else:
            items = batch  # type: ignore[assignment]
            rows = len(items)
            try:
                block = "\n".join(items) + "\n"
            except TypeError:  # an object
                block = ""
        # A newline inside one statistic's text would make two lines of one: counted.
        if block and block.isascii() and block.count("\n") == rows and _FLAT_LINES.fullmatch(block):
            yield block.replace(',"', ', "').replace('":', '": ').encode("ascii")
            continue
        if type(batch) is JoinedTexts:
            items = batch.texts()
        lines: list[Any] = []
        for item in items:
            if type(item) is str and flat(item):
                lines.append(item)
            else:
                lines.append(_Decoded(json_line(item if isinstance(item, dict) else decode(item))))
        yield _spaced(lines)


class _Decoded(bytes):
    """A line already encoded by json_line (not to be spaced again)."""


def _spaced(lines: list[Any]) -> bytes:
    if not any(type(line) is _Decoded for line in lines):
        block = "\n".join(lines) + "\n"
        return block.replace(',"', ', "').replace('":', '": ').encode("ascii")
    out = []
    for line in lines:
        if type(line) is _Decoded:
            out.append(bytes(line))
        else:
            out.append(line.replace(',"', ', "').replace('":', '": ').encode("ascii") + b"\n")
    return b"".join(out)


def _statistics(store: Any, trial_id: str, args: Any) -> int:
    """``cat --statistics``: streamed (bounded memory) unless sorted."""

    def rows() -> Iterator[dict[str, Any]]:
        return (
            e.data
            for e in store.iter_lineage_events(trial_id=trial_id, kinds=("statistic",), batch=20000)
        )

    def batches() -> Iterator[JoinedTexts | list[str | dict[str, Any]]]:
        return store.iter_lineage_joined(trial_id=trial_id, kind="statistic")

    out = stdout_bytes()
    if args.sort:
        stats = sort_statistics(list(rows()), args.sort, trial_id)
        if args.json:
            for stat in stats:
                out.write(json_line(stat))
        elif stats:
            emit(statistics_table(stats))
    elif args.json:
        for block in json_lines(batches()):
            out.write(block)
        return 0
    else:
        written = False
        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        for text in table_blocks(batches):
            out.write(text.encode(encoding, "kleio-output"))
            written = True
        if written:
            return 0
        stats = []
    if not stats:
        sys.stderr.write(f"trial {short_id(trial_id)} has no statistics yet\n")
    return 0


def main(argv: list[str], flags: dict[str, Any]) -> int:
    p = parser("cat", "Print a trial's journalled output, or its statistics.")
    p.add_argument("id", help="trial id or a unique prefix of it")
    p.add_argument("--stderr", action="store_true", help="print the error output instead")
    p.add_argument("--statistics", action="store_true", help="print the logged statistics")
    p.add_argument(
        "--sort", metavar="KEY", help="sort statistics by this key; prefix '-' for descending"
    )
    p.add_argument(
        "--artifact",
        metavar="NAME",
        help="write the newest artifact named NAME to stdout (or -o FILE) instead",
    )
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COND",
        help="with --artifact: only artifacts whose metadata satisfies COND, e.g. epoch=3 "
        "(repeatable)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="with --artifact: write it to FILE (created private, 0600)",
    )
    args = p.parse_args(argv)
    if args.sort and not args.statistics:
        p.error("--sort applies to --statistics")
    if args.artifact is not None:
        if args.statistics or args.stderr:
            p.error("--artifact prints an artifact: not with --statistics or --stderr")
        # ``kleio artifacts ID NAME [--where COND] [-o FILE]`` by another name.
        from kleio.api import Condition
        from kleio.cli.artifact_out import newest, write_out
        from kleio.cli.selection import journal_of

        conditions = [Condition(spec) for spec in args.where]
        with journal_of(flags, []) as journal:
            item = newest(journal.trial(args.id), args.artifact, conditions)
            return write_out(journal.store, item, args.output, as_json=args.json)
    if args.where or args.output is not None:
        p.error("--where and -o apply to --artifact")
    store, _ = store_from(flags)
    with store:
        doc = resolve_trial(store, args.id)
        if args.statistics:
            return _statistics(store, doc["id"], args)
        kind = "stderr" if args.stderr else "stdout"
        out = stdout_bytes()
        for event in ended_lines(store.iter_lineage_events(trial_id=doc["id"], kinds=(kind,))):
            if args.json:
                out.write(json_line(output_record(kind, event)))
            else:
                write_line(event.data.get("line", ""))
    stdout_bytes().flush()
    return 0
