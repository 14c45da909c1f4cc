"""A batch of statistics decoded column by column: each key's values, without one object
per statistic. The fast path of :meth:`kleio.storage.summary.Fold.add_texts` (a runner's
batches are statistics of the same keys) and of ``kleio cat --statistics``.

Pure Python and light, as :mod:`kleio.storage.summary` is.
"""

from __future__ import annotations

from itertools import chain
from operator import itemgetter

from kleio import cjson as json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

_NOT_SCALAR = '"[]{} \t\n\r'


def cut_after_keys(
    first: list[str], text: str, rows: int
) -> tuple[tuple[str, ...], list[str]] | None:
    """``(keys, pieces)``: ``text`` (``rows`` statistics joined) cut after each key, when
    the keys of the first statistic (``first``: its text split at quotes) are usable names
    (none empty, repeated, escaped nor with a control character) and the cut gives one
    piece per value; else None.

    Each piece is a value and what follows it up to the next key's name: ``,"k2`` or, after
    the last value, the separator of two statistics and ``{"k1`` (one is added at the end).
    """
    shape = tuple(first[1::2])
    width = len(shape)
    if (
        width == 0
        or first[0] != "{"
        or len(set(shape)) != width
        or any("\\" in key or any(c < " " for c in key) for key in shape)
    ):
        return None
    pieces = (text + '{"' + shape[0]).split('":')
    if len(pieces) != 1 + width * rows or pieces[0] != '{"' + shape[0]:
        return None
    return shape, pieces


def columns(
    batch: Sequence[Any],
) -> tuple[tuple[str, ...], list[list[Any]], list[list[str]]] | None:
    """``(keys, columns, texts)``: the decoded values of a batch column by column (and
    each value's text), without one object per statistic, or None when the batch is not
    made of texts that all read ``{"k1":v1,"k2":v2,...}`` with the keys of the first in the
    same order (no escape, control character nor duplicate in them) and scalar values (no
    quote, bracket, comma nor white space in them).

    The joined texts are cut after each key and the values taken from the pieces, then
    checked by filling the template of one text with them: the same text means each value
    is where its key says. Each column of values joined by commas is
    then a JSON array of exactly one value per statistic, whose decoding is what
    :func:`kleio.storage.base.decode` makes of each value in its text."""
    try:
        first = batch[0].split('"')  # AttributeError: an object, not text
        text = "".join(batch)
    except (AttributeError, IndexError, TypeError):
        return None
    rows = len(batch)
    cut = cut_after_keys(first, text, rows)
    if cut is None:
        return None
    shape, pieces = cut
    width = len(shape)
    tails = [len(key) + 2 for key in shape[1:]] + [len(shape[0]) + 3]
    texts = [
        list(map(itemgetter(slice(0, -tail)), pieces[1 + index :: width]))
        for index, tail in enumerate(tails)
    ]
    template = "{" + ",".join('"' + key.replace("%", "%%") + '":%s' for key in shape) + "}"
    if template * rows % tuple(chain.from_iterable(zip(*texts))) != text:
        return None  # the same text again: each value is where its key says
    found: list[list[Any]] = []
    for column in texts:
        joined = ",".join(column)
        if joined.count(",") != rows - 1 or any(c in joined for c in _NOT_SCALAR):
            return None
        try:
            found.append(json.loads("[" + joined + "]"))
        except (ValueError, RecursionError):
            return None
    return shape, found, texts
