"""The human table of ``kleio cat --statistics``: columns as wide as their widest cell,
streamed in two passes (widths, then lines) so memory does not grow with the trial."""

from __future__ import annotations

import contextlib
import json
import marshal
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from kleio import cjson
from kleio.cli.cat_helper import first_pass
from kleio.cli.cat_numbers import joined_number_cells, number_cells
from kleio.cli.common import TOO_DEEP, printable, table
from kleio.storage.base import JoinedTexts, decode
from kleio.storage.summary import columns


def stream_table(
    rows: Callable[[], Iterable[dict[str, Any]]], max_last: int = 200
) -> Iterator[str]:
    """:func:`statistics_table` of the statistics ``rows()`` yields, in two passes (columns
    and widths, then the lines), so memory does not grow with the number of statistics."""
    widths: dict[str, int] = {}
    count = 0
    for stat in rows():
        count += 1
        for key, value in stat.items():
            width = len(_cell(value))
            if width > widths.get(key, -1):
                widths[key] = width
    if not count:
        return
    headers = list(widths)
    titles = list(map(_title, headers))
    sizes = [max(len(t), widths[h]) for h, t in zip(headers, titles)]
    if headers:
        sizes[-1] = min(sizes[-1], max(len(titles[-1]), max_last))
    last = headers[-1] if headers else None
    yield "  ".join(t.ljust(w) for t, w in zip(titles, sizes)).rstrip() + "\n"
    lines: list[str] = []
    for stat in rows():
        cells = []
        for key, size in zip(headers, sizes):
            cell = "" if key not in stat else _cell(stat[key])
            if key == last and len(cell) > max_last:
                cell = cell[: max_last - 1] + "…"
            cells.append(cell.ljust(size))
        lines.append("  ".join(cells).rstrip())
        if len(lines) >= 4096:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"


def table_blocks(
    batches: Callable[[], Iterable[JoinedTexts | list[str | dict[str, Any]]]],
    max_last: int = 200,
    *,
    helper: bool = True,
) -> Iterator[str]:
    """:func:`stream_table` of the statistics in ``batches()`` (stored text or objects, as
    :meth:`Store.iter_lineage_joined` gives them), to the byte, with bounded memory, at a
    fraction of its cost: a batch of statistics written with the same keys in the same
    order and scalar values (the usual one) is cut into columns and each column decoded and
    formatted whole (:func:`kleio.storage.summary.columns`, :func:`_cells`); any other
    batch is decoded statistic by statistic. The cells of the first pass (the widths)
    wait in a temporary file for the second (the lines), so the statistics are read and
    decoded once; without a temporary file they are read again. A batch of numbers alone
    (:func:`~kleio.cli.cat_numbers.number_cells`) waits as its lines, padded to the widths
    known so far: the second pass writes them as they are when the widths did not grow
    since (the usual case), else cuts them into cells again (a number's cell holds no
    white space). With ``helper``, a long trial's first pass runs on two cores
    (:mod:`kleio.cli.cat_helper`)."""
    import tempfile  # (it imports shutil and random: only the table pays for them)

    spool: Any = None
    try:
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the with below
    except OSError:
        pass
    with spool if spool is not None else contextlib.nullcontext():
        count, widths, spool = _spooled(batches(), spool, max_last, helper)
        if not count:
            return
        headers = list(widths)
        titles = list(map(_title, headers))
        sizes = [max(len(t), widths[h]) for h, t in zip(headers, titles)]
        if headers:  # (statistics that are all {} have none)
            sizes[-1] = min(sizes[-1], max(len(titles[-1]), max_last))
        yield "  ".join(t.ljust(w) for t, w in zip(titles, sizes)).rstrip() + "\n"
        if spool is None:
            for shape, cells, _ in _cell_batches(batches()):
                yield _lines(shape, cells, headers, sizes, max_last)
            return
        for shape, sized, cells in _unspooled(spool):
            if sized is None:
                yield _lines(shape, cells, headers, sizes, max_last)
            elif sized == sizes[:-1] and len(shape) == len(headers) and list(shape) == headers:
                yield cells  # the lines, as wide as they are now
            else:
                rows = map(str.split, cells[:-1].split("\n"))
                yield _lines(shape, list(zip(*rows)), headers, sizes, max_last)


def _spooled(
    batches: Iterable[Any], spool: Any, max_last: int, helper: bool
) -> tuple[int, dict[str, int], Any]:
    """The first pass: ``(statistics, widths of the columns in the order met, spool)``,
    each batch's record written to ``spool`` (None: none; None is returned when writing
    failed, a full disk: the second pass then reads the statistics again)."""
    widths: dict[str, int] = {}
    count = 0
    seen: dict[str, int] = {}  # the widths this process met (the records' padding)
    keep = spool is not None

    def work(batch: Any) -> tuple[int, list[tuple[str, int]], bytes | None]:
        return _first_pass(batch, seen, max_last, keep)

    for rows, found, data in first_pass(batches, work, helper=helper and keep):
        count += rows
        for key, width in found:  # in the order of the batches: the columns' order
            if width > widths.get(key, -1):
                widths[key] = width
        if spool is not None and data is not None:
            try:
                spool.write(len(data).to_bytes(8, "little") + data)
            except OSError:
                spool = _dropped(spool)
    if spool is not None:
        try:
            spool.flush()  # (the last records may be in the buffer: the disk may refuse them)
        except OSError:
            spool = _dropped(spool)
    return count, widths, spool


def _dropped(spool: Any) -> Any:
    """None, having closed a spool the disk refused (a full disk: closing tries the buffer
    once more, and fails again); the second pass then reads the statistics again."""
    with contextlib.suppress(OSError):
        spool.close()
    return None


def _first_pass(
    batch: Any, seen: dict[str, int], max_last: int, keep: bool
) -> tuple[int, list[tuple[str, int]], bytes | None]:
    """``(statistics, [(key, width)] in the order met, spool record or None)`` of one batch;
    ``seen``, the widths met so far here, grows by the batch's (the record's padding)."""
    for shape, cells, plain in _cell_batches([batch]):
        found = _widths_of(shape, cells)
        for key, width in found.items():
            if width > seen.get(key, -1):
                seen[key] = width
        rows = len(cells[0]) if shape is not None else len(cells)
        data = marshal.dumps(_record(shape, cells, plain, seen, max_last)) if keep else None
        return rows, list(found.items()), data
    return 0, [], None


def _record(
    shape: tuple[str, ...] | None,
    cells: list[Any],
    plain: bool,
    widths: dict[str, int],
    max_last: int,
) -> tuple[tuple[str, ...] | None, list[int] | None, Any]:
    """What the spool keeps of a batch: ``(keys, None, cells)``, or for a batch of numbers
    alone (none cut short), ``(keys, widths of all columns but the last, its lines)``:
    cells that are neither empty nor end in white space, so a line is the cells padded to
    the widths, the last one as it is (what ``str.rstrip`` leaves of it)."""
    if not plain or shape is None or max(map(len, cells[-1])) > max_last:
        return shape, None, _packed(shape, cells)
    sized = [max(len(_title(key)), widths[key]) for key in shape]
    line = "".join(f"%-{size}s  " for size in sized[:-1]) + "%s"
    return shape, sized[:-1], "\n".join(map(line.__mod__, zip(*cells))) + "\n"


def _unspooled(spool: Any) -> Iterator[tuple[Any, Any, Any]]:
    """The records written to ``spool``, in order (marshal.load of a file reads it in
    small pieces: ten times slower than loads of each batch's bytes)."""
    spool.seek(0)
    while size := int.from_bytes(spool.read(8), "little"):
        shape, sized, cells = marshal.loads(spool.read(size))
        if shape is not None and sized is None:
            cells = [c.split("\x00") if type(c) is str else c for c in cells]
        yield shape, sized, cells


def _packed(shape: tuple[str, ...] | None, cells: list[Any]) -> list[Any]:
    """Each column of cells as one text (NUL between cells) when no cell holds a NUL:
    marshal writes and reads one string much faster than thousands."""
    if shape is None:
        return cells
    packed: list[Any] = []
    for column in cells:
        text = "\x00".join(column)
        packed.append(text if text.count("\x00") == len(column) - 1 else column)
    return packed


#: A batch's cells, and whether they are numbers alone
#: (see :func:`~kleio.cli.cat_numbers.number_cells`).
_Batch = tuple[tuple[str, ...] | None, list[Any], bool]


def _cell_batches(
    batches: Iterable[JoinedTexts | list[str | dict[str, Any]]],
) -> Iterator[_Batch]:
    """Per batch, ``(keys, columns of cells, numbers alone)`` (see
    :func:`~kleio.cli.cat_numbers.number_cells`, :func:`kleio.storage.summary.columns`)
    or ``(None, [{key: cell}...], False)`` for a batch taken statistic by statistic."""
    for batch in batches:
        items: list[str | dict[str, Any]]
        if type(batch) is JoinedTexts:
            numbers = number_cells(batch.text, batch.rows)
            items = batch.texts() if numbers is None else []  # type: ignore[assignment]
        else:
            items = batch  # type: ignore[assignment]
            numbers = joined_number_cells(items)
        if numbers is not None:
            yield (*numbers, True)
            continue
        found = columns(items)
        if found is not None:
            yield found[0], [_cells(column, texts) for column, texts in zip(*found[1:])], False
        else:
            cells = [{key: _cell(value) for key, value in stat.items()} for stat in _decoded(items)]
            yield None, cells, False


def _widths_of(shape: tuple[str, ...] | None, cells: list[Any]) -> dict[str, int]:
    """Widths of a batch's columns, keys in the order :func:`stream_table` meets them."""
    widths: dict[str, int] = {}
    if shape is not None:
        for key, column in zip(shape, cells):
            widths[key] = max(map(len, column))
        return widths
    for row in cells:
        for key, cell in row.items():
            if len(cell) > widths.get(key, -1):
                widths[key] = len(cell)
    return widths


def _lines(
    shape: tuple[str, ...] | None,
    cells: list[Any],
    headers: list[str],
    sizes: list[int],
    max_last: int,
) -> str:
    """The table lines of one batch of cells, as :func:`stream_table` writes them."""
    last = len(headers) - 1
    if shape is None:
        lines = []
        for row in cells:
            out = []
            for index, (key, size) in enumerate(zip(headers, sizes)):
                cell = row.get(key, "")
                if index == last and len(cell) > max_last:
                    cell = cell[: max_last - 1] + "…"
                out.append(cell.ljust(size))
            lines.append("  ".join(out).rstrip())
        return "\n".join(lines) + "\n"
    columns = dict(zip(shape, cells))
    rows = len(cells[0])
    ordered: list[Sequence[str]] = []
    for index, key in enumerate(headers):
        column = columns.get(key)
        if column is None:
            ordered.append(("",) * rows)
            continue
        if index == last and max(map(len, column)) > max_last:
            column = [c if len(c) <= max_last else c[: max_last - 1] + "…" for c in column]
        ordered.append(column)
    # "%-8s" pads as str.ljust(8) does: one formatting per line instead of one per cell.
    line = "  ".join(f"%-{size}s" for size in sizes)
    return "\n".join(map(str.rstrip, map(line.__mod__, zip(*ordered)))) + "\n"


def _decoded(batch: list[str | dict[str, Any]]) -> list[dict[str, Any]]:
    """The statistics of a batch as :func:`decode` gives them: the C scanner of
    :mod:`kleio.cjson` on each text, and ``decode`` itself for anything it does not take
    whole (surrounding whitespace, bad text, not an object)."""
    scan = _SCAN
    if scan is None:
        return [item if isinstance(item, dict) else decode(item) for item in batch]
    out = []
    for item in batch:
        if type(item) is str:
            try:
                value, end = scan(item, 0)
                if end == len(item) and type(value) is dict:
                    out.append(value)
                    continue
            except (StopIteration, ValueError, RecursionError):
                pass
            out.append(decode(item))
        else:
            out.append(item if isinstance(item, dict) else decode(item))
    return out


_SCAN = getattr(cjson, "_scan", None)  # None on an interpreter without _json: decode alone


def _cells(column: Sequence[Any], texts: list[str] | None = None) -> list[str]:
    """``[_cell(v) for v in column]``, by one C-level ``map`` when the column has one type;
    integers are their JSON ``texts`` as they are, if given (but ``-0``)."""
    kinds = set(map(type, column))
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind is float:  # "%.6g" % value is f"{value:.6g}", a quarter of the cost
            return list(map("%.6g".__mod__, column))
        if kind is int:
            if texts is not None and "-0" not in texts:
                return texts
            return list(map(int.__repr__, column))
        if kind is str:  # one search over the column (none to escape, the usual case)
            joined = "".join(column)
            return list(column) if printable(joined) is joined else list(map(printable, column))
    return list(map(_cell, column))


def statistics_table(stats: list[dict[str, Any]]) -> str:
    columns: dict[str, None] = {}
    for stat in stats:
        for key in stat:
            columns.setdefault(key, None)
    headers = list(columns)
    rows = [["" if key not in s else _cell(s[key]) for key in headers] for s in stats]
    return table([h.upper() for h in headers], rows, max_last=200)


def _cell(value: Any) -> str:
    kind = type(value)
    if kind is float:
        return f"{value:.6g}"
    if kind is str:
        return printable(value)
    if kind is int:  # what json.dumps gives, without building an encoder per cell
        return int.__repr__(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return printable(value)
    return _compact(value)


def _title(key: str) -> str:
    """A column's title: its key in capitals, :func:`~kleio.cli.common.printable`."""
    return printable(key.upper())


def _compact(value: Any) -> str:
    """A list or mapping as one cell; a value nested too deeply to encode never crashes."""
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (RecursionError, TypeError, ValueError):
        return TOO_DEEP
