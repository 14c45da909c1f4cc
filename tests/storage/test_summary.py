"""The summaries of a batch folded by columns (Fold.add_texts) are those of the fold of one
statistic at a time (Fold.add of each decoded text), over random and hostile batches."""

from __future__ import annotations

import math
import random

import pytest

from kleio.storage.base import decode, encode, first_seq
from kleio.storage.summary import Fold

SEQ = first_seq(1)

ODD = [
    float("nan"),
    float("inf"),
    float("-inf"),
    True,
    False,
    None,
    10**400,
    -(10**400),
    2**63,
    -(2**63) - 1,
    "text",
    [1, 2],
    {"a": 1},
    -0.0,
    0.0,
    5e-324,
    1e308,
]


def value(rng):
    roll = rng.random()
    if roll < 0.6:
        return round(rng.random(), rng.choice([1, 2, 17]))
    if roll < 0.8:
        return rng.randrange(-5, 5)
    return rng.choice(ODD)


def statistic(rng, index, shape):
    stat = {}
    for key in shape:
        if key in ("step", "iteration"):
            stat[key] = index
        elif key == "epoch":
            stat[key] = (
                index // rng.choice([3, 7, 50])
                if rng.random() < 0.97
                else rng.choice([1.0, "one", None, True, float("nan"), 2**70])
            )
        else:
            stat[key] = value(rng)
    return stat


def texts(rng, count):
    shapes = [
        ("step", "epoch", "loss", "acc"),
        ("epoch", "loss"),
        ("loss",),
        ("acc", "step"),
        ("iteration", "val", "val"),
    ]
    shape = rng.choice(shapes)
    floats = rng.random() < 0.3  # epoch 1.0 after epoch 1: another run (another type)
    out = []
    for index in range(count):
        if rng.random() < 0.02:
            shape = rng.choice(shapes)
        stat = statistic(rng, index, shape)
        if floats and type(stat.get("epoch")) is int:
            stat["epoch"] = float(stat["epoch"])
        text = encode(stat)
        if rng.random() < 0.01:
            text = rng.choice(
                [
                    '{"loss":1,"loss":2}',
                    '{"loss": 3}',
                    "not json",
                    "[1]",
                    '{"lo\\u0073s":4}',
                    '{"\\ud800":1}',
                    '{"loss":1e999}',
                    '{"step":' + "9" * 30 + ',"loss":0.5}',
                ]
            )
        out.append(text)
    return out


def same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def same_entries(got, want):
    assert set(got) == set(want)
    for name in want:
        for field in want[name]:
            assert same(got[name][field], want[name][field]), (name, field, got[name], want[name])


def check(got, want):
    same_entries(got.entries, want.entries)
    assert got.state == want.state
    assert got.changed == want.changed
    assert got.runs == want.runs
    assert got.changed_runs == want.changed_runs
    assert [s for s, _ in got.marks] == [s for s, _ in want.marks]
    for (_, a), (_, b) in zip(got.marks, want.marks):
        same_entries(a, b)


@pytest.mark.parametrize("seed", range(60))
def test_a_batch_by_columns_is_the_fold_of_each_statistic(seed):
    rng = random.Random(seed)
    mark_every = rng.choice([None, 3, 10, 97, 10_000])
    by_columns = Fold(mark_every=mark_every)
    one_by_one = Fold(mark_every=mark_every)
    seq = SEQ
    for _ in range(rng.randrange(1, 8)):
        batch = texts(rng, rng.choice([1, 2, 5, 40, 300]))
        seqs = list(range(seq, seq + len(batch)))
        if rng.random() < 0.1:  # out of order (a replayed spool): the runs stop
            rng.shuffle(seqs)
        if rng.random() < 0.1:  # gaps: other events between the statistics
            seqs = [s * 2 for s in seqs]
        seq = max(seqs) + 1
        stats = list(zip(seqs, batch))
        # Each batch starts a new fold from what the last one stored, as the store does.
        by_columns = Fold(by_columns.entries, by_columns.state, by_columns.runs, mark_every)
        one_by_one = Fold(one_by_one.entries, one_by_one.state, one_by_one.runs, mark_every)
        by_columns.add_texts(stats)
        for item_seq, text in stats:
            one_by_one.add(item_seq, decode(text))
        check(by_columns, one_by_one)


def test_the_runner_s_batches_go_by_columns(monkeypatch):
    rng = random.Random(3)
    fold = Fold(mark_every=10)
    stats = [
        (SEQ + i, encode({"step": i, "epoch": i // 4, "loss": rng.random()})) for i in range(25)
    ]
    monkeypatch.setattr(Fold, "add", lambda *a: pytest.fail("one by one"))
    fold.add_texts(stats)
    assert [s for s, _ in fold.marks] == [SEQ + 9, SEQ + 19]
    assert fold.entries["loss"]["count"] == 25 and fold.runs["epoch"]["value"] == 6
