"""SQLite's joined reads (``_read_joined``): a batch of event texts joined by SQLite in the
order of seq, and the batches it cannot join (a text holding a newline, bytes that are not
UTF-8) read row by row instead, with the same result as :meth:`iter_lineage_raw`."""

from __future__ import annotations

import random
import sqlite3

from kleio.storage.base import JoinedTexts, decode, encode, first_seq
from kleio.storage.sqlite import SQLiteStore

SEQ = first_seq(1)


def stat(seq, **values):
    return (seq, "statistic", 1.0, encode(values))


def flattened(batches):
    out = []
    for batch in batches:
        out.extend(batch.texts() if type(batch) is JoinedTexts else batch)
    return out


def test_a_batch_is_joined_in_the_order_of_seq_whatever_the_order_of_writing(tmp_path):
    path = str(tmp_path / "k.db")
    seqs = list(range(SEQ, SEQ + 700))
    random.Random(3).shuffle(seqs)
    with SQLiteStore(path) as store:
        store.create_trial(doc={"id": "t", "created_at": 1.0})
        for start in range(0, 700, 70):  # out of order, in several transactions
            store.append_events(trial_id="t", events=[stat(s, step=s) for s in seqs[start:][:70]])
        batches = list(store.iter_lineage_joined(trial_id="t", kind="statistic", batch=256))
        assert [type(b) for b in batches] == [JoinedTexts] * 3
        assert [b.rows for b in batches] == [256, 256, 188]
        steps = [decode(t)["step"] for t in flattened(batches)]
        assert steps == sorted(seqs)
        assert flattened(batches) == flattened(
            store.iter_lineage_raw(trial_id="t", kind="statistic", batch=256)
        )


def test_batches_it_cannot_join_are_read_row_by_row(tmp_path):
    path = str(tmp_path / "k.db")
    with SQLiteStore(path) as store:
        store.create_trial(doc={"id": "t", "created_at": 1.0})
        store.append_events(trial_id="t", events=[stat(SEQ + i, step=i) for i in range(9)])
    conn = sqlite3.connect(path)
    with conn:  # damage by hand: a raw newline in one text, bytes that are not UTF-8 in another
        conn.execute("UPDATE events SET data = ? WHERE seq = ?", ('{"step":\n1}', SEQ + 1))
        conn.execute(
            "UPDATE events SET data = CAST(x'7b22ff223a317d' AS TEXT) WHERE seq = ?", (SEQ + 7,)
        )
    conn.close()
    with SQLiteStore(path) as store:
        batches = list(store.iter_lineage_joined(trial_id="t", kind="statistic", batch=3))
        raw = list(store.iter_lineage_raw(trial_id="t", kind="statistic", batch=3))
    assert [type(b) for b in batches] == [list, JoinedTexts, list]
    assert flattened(batches) == flattened(raw)
    assert flattened(batches)[1] == '{"step":\n1}' and flattened(batches)[7] == {"\udcff": 1}


def test_a_batch_too_big_to_join_is_read_row_by_row(tmp_path):
    """SQLite builds no text past its length limit (1,000,000,000 bytes by default: a batch
    of 20,000 statistics of 50 KB): such a batch is read row by row, not refused."""
    path = str(tmp_path / "k.db")
    with SQLiteStore(path) as store:
        store.create_trial(doc={"id": "t", "created_at": 1.0})
        store.append_events(
            trial_id="t", events=[stat(SEQ + i, step=i, note="x" * 100) for i in range(40)]
        )
        store._db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1000)  # (the same limit, smaller)
        batches = list(store.iter_lineage_joined(trial_id="t", kind="statistic", batch=10))
        assert [type(b) for b in batches] == [list] * 4
        store._db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1_000_000_000)
        raw = list(store.iter_lineage_raw(trial_id="t", kind="statistic", batch=10))
    assert flattened(batches) == flattened(raw) and len(flattened(raw)) == 40
