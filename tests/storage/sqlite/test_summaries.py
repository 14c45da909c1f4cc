"""SQLite's table of primary metrics (migration 0003): what ``declared_primaries`` reads.

The table is a copy of the summaries' ``is_primary`` kept in the same transaction; these
tests compare its answers with the summaries themselves over journals built at random, and
open journals of schema 1 and 2 (before the table) to see them converted.
"""

from __future__ import annotations

import random
import sqlite3

import pytest

from kleio.storage.base import encode, first_seq
from kleio.storage.sqlite import MIGRATIONS, SCHEMA_VERSION, SQLiteStore

SEQ = first_seq(1)


def metrics(seq, primary=None, **modes):
    data = {"metrics": modes}
    if primary is not None:
        data["primary"] = primary
    return (seq, "metrics", 1.0, encode(data))


def stat(seq, **values):
    return (seq, "statistic", 1.0, encode(values))


def trial_doc(trial_id, created, status="completed", tags=(), project="p", parent=None):
    return {
        "id": trial_id,
        "created_at": created,
        "status": status,
        "tags": list(tags),
        "project": project,
        "parent": parent,
    }


def from_summaries(store, **filters):
    """What the summaries say, trial by trial (the reference the table must agree with)."""
    docs = store.find_trials(branches=False, **filters)
    found = store.read_summaries(trial_ids=[d["id"] for d in docs]) if docs else {}
    names = {
        found[d["id"]]["primary"] for d in docs if d["id"] in found and found[d["id"]]["primary"]
    }
    lacking = any(d["id"] not in found or not found[d["id"]]["primary"] for d in docs)
    return names, lacking


FILTERS = [
    {},
    {"statuses": ["completed"]},
    {"statuses": ["broken", "new"]},
    {"tags": ["x"]},
    {"since": 30.0},
    {"project": "q"},
    {"statuses": ["completed"], "since": 10.0},
]


@pytest.fixture
def store(tmp_path):
    with SQLiteStore("sqlite://" + str(tmp_path / "k.db")) as opened:
        yield opened


def build(store, rng, count=60):
    ids = []
    for index in range(count):
        trial_id = f"t{index:03d}"
        parent = {"id": rng.choice(ids), "cut": SEQ + 3} if ids and rng.random() < 0.2 else None
        events = [stat(SEQ + 1, epoch=1, acc=rng.random(), loss=rng.random())]
        for seq in range(SEQ + 2, SEQ + 2 + rng.randrange(3)):  # later declarations win
            events.append(metrics(seq, rng.choice([None, "acc", "loss", "val"]), acc="max"))
        if rng.random() < 0.15:  # declared before the document exists
            store.append_events(trial_id=trial_id, events=events)
        store.create_trial(
            doc=trial_doc(
                trial_id,
                float(index),
                rng.choice(["completed", "broken", "new"]),
                rng.sample(["x", "y"], rng.randrange(3)),
                rng.choice(["p", "q", "pq"]),
                parent,
            )
        )
        store.append_events(trial_id=trial_id, events=events)
        ids.append(trial_id)
    return ids


def test_declared_primaries_agree_with_the_summaries(store):
    rng = random.Random(9)
    ids = build(store, rng)
    for filters in FILTERS:
        assert store.declared_primaries(**filters) == from_summaries(store, **filters), filters
    # Redeclared, deleted: the table follows.
    for trial_id in rng.sample(ids, 10):
        store.append_events(trial_id=trial_id, events=[metrics(SEQ + 9, "other")])
    for trial_id in rng.sample(ids, 10):
        if not store.find_trials(parent_id=trial_id):
            store.delete_trial(trial_id=trial_id)
    for filters in FILTERS:
        assert store.declared_primaries(**filters) == from_summaries(store, **filters), filters


def test_a_declaration_without_a_primary_removes_it(store):
    store.create_trial(doc=trial_doc("a", 1.0))
    store.append_events(trial_id="a", events=[metrics(SEQ, "acc")])
    assert store.declared_primaries() == ({"acc"}, False)
    store.append_events(trial_id="a", events=[metrics(SEQ + 1, acc="max")])
    assert store.declared_primaries() == ({"acc"}, False)  # an older primary still holds
    store.delete_trial(trial_id="a")
    assert store.declared_primaries() == (set(), False)


def test_a_branch_s_primary_is_not_counted(store):
    store.create_trial(doc=trial_doc("a", 1.0))
    store.create_trial(doc=trial_doc("b", 2.0, parent={"id": "a", "cut": SEQ}))
    store.append_events(trial_id="b", events=[metrics(SEQ, "acc")])
    assert store.declared_primaries() == (set(), True)
    assert store.declared_primaries(statuses=["completed"]) == (set(), True)


def downgrade(path, version):
    """Make a journal of this kleio look as one of ``version`` left it (no primaries)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TABLE primaries")
    conn.execute("DELETE FROM migrations WHERE name = ?", (MIGRATIONS[2][0],))
    if version < 2:
        for table in ("summaries", "summary_state", "step_runs", "summary_marks"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("ALTER TABLE trials DROP COLUMN project")
        conn.execute("DELETE FROM migrations WHERE name = ?", (MIGRATIONS[1][0],))
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    conn.close()


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_journal_is_converted_when_opened(tmp_path, version):
    path = str(tmp_path / "old.db")
    with SQLiteStore("sqlite://" + path) as store:
        build(store, random.Random(3), count=30)
        expected = {str(f): store.declared_primaries(**f) for f in FILTERS}
    downgrade(path, version)
    with SQLiteStore("sqlite://" + path) as store:
        assert {str(f): store.declared_primaries(**f) for f in FILTERS} == expected
        for filters in FILTERS:
            assert store.declared_primaries(**filters) == from_summaries(store, **filters)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    assert [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY name")] == [
        name for name, _ in MIGRATIONS
    ]
    conn.close()
