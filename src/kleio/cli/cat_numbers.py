"""A batch of statistics that are numbers alone (the usual batch of a training loop), cut
into the cells of ``kleio cat --statistics``'s table without decoding its integers: the fast
path of :func:`kleio.cli.cat_table.table_blocks`, which gives the same bytes as formatting
each decoded statistic."""

from __future__ import annotations

import re
from typing import Any

from kleio.storage.columnar import cut_after_keys

#: ``(keys, columns of cells)``.
Cells = tuple[tuple[str, ...], list[Any]]

#: JSON integers (short enough for int(): longer ones go the general way) and JSON numbers
#: with a fraction or an exponent (floats), NUL between them: a whole column checked at once.
_INT = r"-?+(?:0|[1-9][0-9]{0,598}+)"
_FLOAT = r"-?+(?:0|[1-9][0-9]*+)(?:\.[0-9]++(?:[eE][-+]?+[0-9]++)?+|[eE][-+]?+[0-9]++)"
_INTS = re.compile(rf"{_INT}(?:\x00{_INT})*+")
_FLOATS = re.compile(rf"{_FLOAT}(?:\x00{_FLOAT})*+")


def joined_number_cells(batch: list[str | dict[str, Any]]) -> Cells | None:
    """:func:`number_cells` of a batch's texts (None for a batch holding objects)."""
    try:
        text = "\n".join(batch) + "\n"  # type: ignore[arg-type]  # TypeError: an object
    except TypeError:
        return None
    return number_cells(text, len(batch))


def number_cells(text: str, rows: int) -> Cells | None:
    """``(keys, columns of cells)`` of ``rows`` texts, each followed by a newline in
    ``text``, that all read
    ``{"k1":v1,"k2":v2,...}`` with the keys of the first, in its order, and whose every
    column holds only integers or only floats (the usual batch); None for any other.

    No value is decoded but the floats: an integer's cell is its JSON text (``-0`` aside),
    a float's is ``"%.6g"`` of ``float(text)`` (what the JSON decoder makes of it), all the
    floats of a column in one formatting. The text (a line per statistic) is cut after
    each key; every piece must end with what follows its value (the next key, or the end
    of the statistic and the first key of the next one), which one count per column
    checks, and the values left must be numbers (one match each)."""
    if not rows or "\x00" in text or text.count("\n") != rows:
        return None
    first = text[: text.index("\n")].split('"')
    cut = cut_after_keys(first, text, rows)
    if cut is None:
        return None
    shape, pieces = cut
    width = len(shape)
    tails = [',"' + key for key in shape[1:]] + ['}\n{"' + shape[0]]
    cells: list[Any] = []
    for index, tail in enumerate(tails):
        joined = "\x00".join(pieces[1 + index :: width]) + "\x00"
        marked = tail + "\x00"  # (one NUL each: the counted ones cannot overlap)
        if joined.count(marked) != rows:
            return None
        values = joined.replace(marked, "\x00")[:-1]
        if _INTS.fullmatch(values):
            column = values.split("\x00")
            if "-0" in column:
                column = ["0" if cell == "-0" else cell for cell in column]
        elif _FLOATS.fullmatch(values):
            floats = tuple(map(float, values.split("\x00")))
            column = (("%.6g\x00" * rows) % floats)[:-1].split("\x00")
        else:
            return None
        cells.append(column)
    return shape, cells
