"""``kleio cat --statistics``: the fast table and ``--json`` give exactly the bytes of the
formatters they replace (one statistic at a time), on hostile statistics too."""

from __future__ import annotations

import json
import random

import pytest

from kleio.cli.cat import _FLAT, json_lines, stream_table, table_blocks
from kleio.cli.common import json_line
from kleio.storage.base import JoinedTexts, decode, encode, first_seq

SEQ = first_seq(1)

HOSTILE = [
    '{"step":1,"loss":0.5}',
    '{"step":-0,"loss":1.50,"acc":1E5}',  # not as Python writes them: passed through as is
    '{"step":2,"loss":NaN,"acc":Infinity}',
    '{"step":3,"loss":-Infinity,"acc":1e-320}',
    '{"step":' + "9" * 400 + ',"loss":1e308}',  # 10**400-ish: an int past any float
    '{"step":' + "9" * 5000 + ',"loss":1}',  # past int's digit limit: not decodable
    '{"step":4,"loss":[1,2,{"a":"b"}],"acc":{"x":[]}}',
    '{"step":5,"note":"caf\\u00e9 \\ud800 \\"quoted\\", : yes","loss":0.1}',
    '{"step":6,"note":"trailing spaces   ","loss":0.2}',
    '{"step":7,"é":1,"日本":2.5}',
    '{"step":8,"a%s":1,"b%%":2}',
    '{"step":9,"a\\"b":1,"c\\\\d":2}',
    '{"step":10,"step":11,"loss":0.3}',  # a repeated key: the last wins
    '{"step":12, "loss":0.4}',
    ' {"step":13,"loss":0.4} ',
    '{"step":14,"loss":0.4,}',
    "[1,2]",
    '"text"',
    "",
    "not json",
    '{"step":15,"loss":true,"acc":null,"flag":false}',
    '{"step":16,"last":"' + "x" * 300 + '"}',
    '{"step":17}\n{"step":18}',  # a newline inside one statistic's text
    '{"step":19,"ctl\\u0001":1}',
    '{"step":20,"loss":0.5}{"step":21,"loss":0.6}',
    "{}",
    '{"step":22,"loss":1e16,"acc":123456.5,"x":1234565.0,"y":0.0001,"z":0.00001}',
    '{"step":23,"loss":-1.5e-300,"acc":5e-324}',
    '{"a":1,"b":2}',
    '{"b":2,"a":1}',
    '{"step":24,"epoch":1,"loss":1,2,"acc":0.5}',  # two values where one is: not JSON
    '{"step":25,"epoch":1,"loss":1 ,"acc":0.5}',
    '{"step":26":0.5}',  # a value where a key is: not JSON
]


def flat(rng):
    """A statistic as the logger writes it (same keys, same order), now and then odd."""
    stat = {
        "step": rng.randrange(10**6),
        "epoch": rng.randrange(100),
        "loss": rng.random() * 10 ** rng.randint(-8, 8),
        "acc": rng.random(),
    }
    if rng.random() < 0.05:
        stat["acc"] = rng.choice([1, -3, True, None, float("nan"), -0.0, 10**30])
    if rng.random() < 0.03:
        del stat["epoch"]
    return encode(stat)


def batches_of(rng, texts):
    """The texts cut in batches of random sizes, now and then an object instead of text."""
    out, low = [], 0
    while low < len(texts):
        size = rng.choice([1, 2, 3, 7, 50, 500])
        batch = texts[low : low + size]
        if rng.random() < 0.1:
            batch = [decode(batch[0]), *batch[1:]]
        out.append(batch)
        low += size
    return out


def table_before(batches):
    stats = [item if isinstance(item, dict) else decode(item) for b in batches for item in b]
    return "".join(stream_table(lambda: iter(stats)))


def json_before(batches):
    out = []
    for batch in batches:
        for item in batch:
            if type(item) is str and _FLAT.fullmatch(item):
                out.append(item.replace(',"', ', "').replace('":', '": ').encode() + b"\n")
            else:
                out.append(json_line(item if isinstance(item, dict) else decode(item)))
    return b"".join(out)


def json_now(batches):
    return b"".join(json_lines(iter(batches)))


def table_now(batches):
    return "".join(table_blocks(lambda: iter(batches)))


@pytest.mark.parametrize("seed", range(40))
def test_the_table_and_json_are_the_bytes_of_one_statistic_at_a_time(seed):
    rng = random.Random(seed)
    texts = [flat(rng) for _ in range(rng.randrange(1, 1500))]
    for _ in range(rng.randrange(6)):
        texts.insert(rng.randrange(len(texts) + 1), rng.choice(HOSTILE))
    batches = batches_of(rng, texts)
    assert table_now(batches) == table_before(batches)
    ascii_only = all(
        isinstance(i, dict) or i.isascii() or not _FLAT.fullmatch(i) for b in batches for i in b
    )
    if ascii_only:  # (a flat text that is not ASCII fails in both, as before)
        assert json_now(batches) == json_before(batches)
    joined = [as_joined(b) for b in batches]  # as SQLite gives them
    assert table_now(joined) == table_now(batches)
    if ascii_only:
        assert json_now(joined) == json_now(batches)


def as_joined(batch):
    """A batch as :meth:`iter_lineage_joined` may give it: joined, if all texts without a
    newline."""
    if all(type(i) is str and "\n" not in i for i in batch):
        return JoinedTexts("".join(i + "\n" for i in batch), len(batch))
    return batch


@pytest.mark.parametrize("text", HOSTILE)
def test_each_hostile_text_alone_and_among_flat_ones(text):
    rng = random.Random(text)
    for batches in ([[text]], [[flat(rng), text, flat(rng)]], [[text] * 3, [flat(rng)]]):
        assert table_now(batches) == table_before(batches)
        assert table_now([as_joined(b) for b in batches]) == table_now(batches)
        if text.isascii():
            assert json_now(batches) == json_before(batches)
            assert json_now([as_joined(b) for b in batches]) == json_now(batches)


def test_floats_format_as_before():
    rng = random.Random(5)
    values = [
        rng.random() * 10 ** rng.randint(-330, 308) * rng.choice([1, -1]) for _ in range(20000)
    ]
    values += [
        float("inf"),
        float("-inf"),
        float("nan"),
        -0.0,
        0.0,
        5e-324,
        1e16,
        1e-5,
        123456.5,
        1234565.0,
        0.0001,
        0.00001,
        999999.5,
        9999995.0,
    ]
    texts = [json.dumps({"v": v}, separators=(",", ":")) for v in values]
    assert table_now([texts]) == table_before([texts])


def test_no_statistics_no_table():
    assert table_now([]) == table_before([]) == ""
    assert table_now([[]]) == ""


def test_a_branch_s_lineage_through_the_store(tmp_path):
    from kleio.storage import open_store

    rng = random.Random(2)
    with open_store("sqlite://" + str(tmp_path / "k.db")) as store:
        store.create_trial(doc={"id": "p", "created_at": 1.0})
        texts = [flat(rng) for _ in range(300)] + HOSTILE[:12]
        store.append_events(
            trial_id="p", events=[(SEQ + i, "statistic", 1.0, t) for i, t in enumerate(texts)]
        )
        store.create_trial(
            doc={"id": "c", "created_at": 2.0, "parent": {"id": "p", "cut": SEQ + 150}}
        )
        store.append_events(
            trial_id="c", events=[(SEQ + i, "statistic", 1.0, flat(rng)) for i in range(40)]
        )
        batches = list(store.iter_lineage_raw(trial_id="c", kind="statistic"))
        rows = [e.data for e in store.iter_lineage_events(trial_id="c", kinds=("statistic",))]
        assert sum(map(len, batches)) == len(rows) == 191
        assert table_now(batches) == "".join(stream_table(lambda: iter(rows)))
        assert json_now(batches) == json_before(batches)
        joined = list(store.iter_lineage_joined(trial_id="c", kind="statistic", batch=64))
        assert JoinedTexts in set(map(type, joined))
        assert table_now(joined) == table_now(batches)
        assert json_now(joined) == json_now(batches)


def test_a_logger_s_batch_is_taken_column_by_column():
    from kleio.storage.summary import columns as _columns

    rng = random.Random(1)
    texts = [encode({"step": i, "loss": rng.random(), "ok": True}) for i in range(100)]
    keys, columns, _ = _columns(texts)
    assert keys == ("step", "loss", "ok") and list(columns[0]) == list(range(100))
    for text in (
        '{"step":1}',
        '{"loss":1,"step":2}',
        '{"step":1,"loss":"x","ok":true}',
        '{"step":1,"loss":1,2,"ok":true}',
    ):
        assert _columns([*texts[:3], text]) is None


@pytest.mark.parametrize("spooled", [True, False])
def test_lines_kept_as_written_or_cut_again_when_a_column_grows(spooled, monkeypatch):
    import tempfile

    if not spooled:  # no temporary file: the second pass reads the statistics again

        def refused():
            raise OSError("no room")

        monkeypatch.setattr(tempfile, "TemporaryFile", refused)
    rng = random.Random(4)

    def logged(low, high, **more):
        return [
            encode({"step": i, "loss": rng.random() * 10 ** rng.randint(-9, 9), **more})
            for i in range(low, high)
        ]

    cases = [
        [logged(0, 10), logged(10, 2000), logged(2000, 2100)],  # widths grow, then settle
        [[encode({"step": 1, "loss": 0.5})], [encode({"step": 12345678, "loss": 0.25})]],
        [[encode({"a": 1, "b": 22})], [encode({"b": 1, "a": 22})]],  # the same widths
        [logged(0, 50), logged(50, 60, acc=0.5), logged(60, 70)],  # a key later: re-cut
        [logged(0, 50, acc="text  "), logged(50, 60), logged(60, 70, acc=1)],
        [logged(0, 5), [encode({"step": 1, "loss": "x" * 300})], logged(5, 9)],
        [logged(0, 5), logged(5, 9, note=10**250)],  # a last cell cut short
        [[encode({"x": 10**250})], [encode({"x": 1})]],
        [[encode({"STRASSE_ß": 1, "b": 2})], [encode({"STRASSE_ß": 123456, "b": 0.5})]],
    ]
    for batches in cases:
        assert table_now(batches) == table_before(batches)


@pytest.mark.parametrize("fails_at", ["write", "flush"])
def test_a_spool_the_disk_refuses_late_makes_the_second_pass_read_again(monkeypatch, fails_at):
    """Found by a tester on a full tmpfs: the last records sat in the spool's buffer, and
    the flush before the second pass raised ENOSPC out of the command."""
    import errno
    import io
    import tempfile

    class Full(io.BytesIO):
        def write(self, data):
            if fails_at == "write" and self.tell() > 1000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

        def flush(self):
            if fails_at == "flush":
                raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):  # as a buffered file: its buffer tried once more, then closed
            if not self.closed:
                try:
                    self.flush()
                finally:
                    super().close()

    monkeypatch.setattr(tempfile, "TemporaryFile", Full)
    rng = random.Random(6)
    batches = [
        [encode({"step": i, "loss": rng.random()}) for i in range(start, start + 300)]
        for start in (0, 300, 600)
    ]
    rows = [decode(t) for b in batches for t in b]
    assert table_now(batches) == "".join(stream_table(lambda: iter(rows)))
