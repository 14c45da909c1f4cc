"""The table's cells of a batch of numbers alone, cut without decoding its integers: the
same cells as formatting each decoded statistic, and None for any batch not so simple."""

from __future__ import annotations

import random

from kleio.cli.cat_numbers import joined_number_cells, number_cells
from kleio.cli.cat_table import _cell
from kleio.storage.base import decode, encode


def test_a_batch_of_numbers_is_cut_without_decoding_its_integers():
    rng = random.Random(3)
    stats = [{"step": i - 5, "loss": rng.random() * 10 ** rng.randint(-9, 9)} for i in range(50)]
    stats[0]["step"] = 10**300
    texts = [encode(s) for s in stats]
    texts[1] = '{"step":-4,"loss":1E400}'  # (it reads as inf)
    texts[2] = texts[2].replace('"step":-3', '"step":-0')
    keys, cells = joined_number_cells(texts)
    decoded = [decode(t) for t in texts]
    assert keys == ("step", "loss")
    assert cells == [[_cell(s[key]) for s in decoded] for key in keys]
    assert cells[0][2] == "0" and cells[1][1] == "inf"
    for text in (
        '{"step":1,"loss":2}',  # a column of floats and integers
        '{"step":1.5,"loss":0.5}',
        '{"step":true,"loss":0.5}',
        '{"step":null,"loss":0.5}',
        '{"step":1,"loss":NaN}',
        '{"step":01,"loss":0.5}',
        '{"step":1,"loss":"0.5"}',
        '{"step":1,"loss":0.5,"acc":1}',
        '{"step":1}',
        '{"loss":0.5,"step":1}',
        '{"step":1,"loss":0.5} ',
        '{"step":1,"loss":0.5}\n{"step":2,"loss":0.5}',
        '{"step":1,"loss":0.5}{"step":2,"loss":0.5}',
        '{"step":' + "9" * 700 + ',"loss":0.5}',  # int() may refuse it: the general way
        '{"step":1,"loss":0.5\x00}',
        '{"step":12":0.5}',  # as many pieces, one not ended by the next key: not JSON
    ):
        assert joined_number_cells([*texts[:3], text]) is None, text
        assert joined_number_cells([text, *texts[:3]]) is None, text
    assert joined_number_cells(['{"a\\\\b":1}']) is None
    assert joined_number_cells(['{"a":1,"a":2}']) is None
    assert joined_number_cells([]) is None
    assert joined_number_cells([{"step": 1}]) is None
    assert number_cells("", 0) is None
    text = "".join(t + "\n" for t in texts[3:])
    assert number_cells(text, 47) == joined_number_cells(texts[3:])
    assert number_cells(text, 46) is None  # (a count that is not the text's lines)
