"""The storage contract for summaries, step runs and ranking (kleio.storage.summary).

Like ``test_contract.py``, written against :class:`kleio.storage.base.Store` and run on
every backend through the ``store`` fixture. ``forget`` makes a trial look as a kleio from
before summaries left it (the one place that knows each backend's layout).
"""

from __future__ import annotations

import math

import pytest

from kleio.metrics import STEP_KEYS as METRIC_STEP_KEYS
from kleio.metrics import summarize
from kleio.storage.base import encode, first_seq
from kleio.storage.summary import STEP_KEYS, metric_entry
from tests.storage.test_contract import ev, ids, make_doc

EXEC1 = first_seq(1)
EXEC2 = first_seq(2)


def forget(store, trial_id):
    """Remove what the store keeps of a trial's summaries, as an older kleio wrote it."""
    from kleio.storage.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        key = store._read_key(trial_id)
        with store._write() as conn:
            for table in ("summaries", "summary_state", "step_runs"):
                conn.execute(f"DELETE FROM {table} WHERE trial = ?", (key,))
        return
    store._db.summaries.delete_many({"trial_id": trial_id})
    store._db.step_runs.delete_many({"trial_id": trial_id})
    store._db.trials.update_one({"_id": trial_id}, {"$unset": {"_sum": ""}})


def summary(store, trial_id):
    return store.read_summaries(trial_ids=[trial_id])[trial_id]


def as_metrics(found, modes):
    return {
        name: metric_entry(entry, modes[name])
        for name, entry in found["entries"].items()
        if name in modes
    }


STATS = [
    {"epoch": 1, "loss": 0.5, "acc": 0.6, "flag": True, "note": "x"},
    {"epoch": 2, "loss": 0.3, "acc": 0.7},
    {"epoch": 3, "loss": 0.3, "acc": 0.65},
    {"epoch": 4, "loss": float("nan"), "acc": 0.7},
]


def test_step_keys_are_the_metrics_step_keys():
    assert STEP_KEYS == METRIC_STEP_KEYS


@pytest.mark.capability("nan")
def test_summaries_follow_appended_statistics(store):
    store.create_trial(doc=make_doc("t1"))
    store.append_events(
        trial_id="t1", events=[ev(EXEC1 + i + 1, **s) for i, s in enumerate(STATS[:2])]
    )
    store.append_events(
        trial_id="t1",
        events=[ev(EXEC1 + 10, "stdout", line="hi")]
        + [ev(EXEC1 + i + 3, **s) for i, s in enumerate(STATS[2:])],
    )
    found = summary(store, "t1")
    assert set(found["entries"]) == {"epoch", "loss", "acc"}  # numbers only
    loss = found["entries"]["loss"]
    assert loss["count"] == 4 and math.isnan(loss["last"])
    assert (loss["min"], loss["min_step"], loss["min_step_key"]) == (0.3, 2, "epoch")
    assert (loss["max"], loss["max_step"]) == (0.5, 1)
    acc = found["entries"]["acc"]
    assert (acc["max"], acc["max_step"], acc["last"]) == (0.7, 2, 0.7)
    assert isinstance(found["entries"]["epoch"]["last"], int)
    # The same as kleio.metrics folds the statistics itself, for both modes.
    modes = {"loss": "min", "acc": "max"}
    expected = summarize(STATS, _declared(modes))
    got = as_metrics(found, modes)
    assert math.isnan(got["loss"].pop("last")) and math.isnan(expected["loss"].pop("last"))
    assert got == expected


@pytest.mark.capability("nan")  # infinities: the nx-27017 wire server refuses them too
def test_integers_past_any_float_are_stored_and_summarized_as_infinities(store):
    """A statistic may hold any JSON integer: 10**400 once dropped the whole statistic."""
    store.create_trial(doc=make_doc("t1"))
    values = [2**63, 10**30, 10**309, -(10**400)]
    store.append_events(
        trial_id="t1", events=[ev(EXEC1 + i + 1, step=i, acc=v) for i, v in enumerate(values)]
    )
    stored = store.read_events(trial_id="t1", kinds=("statistic",))
    assert [e.data["acc"] for e in stored] == values
    acc = summary(store, "t1")["entries"]["acc"]
    assert acc["count"] == 4
    assert (acc["min"], acc["max"]) == (-math.inf, math.inf)


def _declared(modes):
    from kleio.metrics import Declarations

    return Declarations(modes)


@pytest.mark.capability("nan")
def test_a_replayed_batch_is_not_counted_twice(store):
    store.create_trial(doc=make_doc("t1"))
    batch = [ev(EXEC1 + i + 1, **s) for i, s in enumerate(STATS)]
    store.append_events(trial_id="t1", events=batch[:2])
    assert store.append_events(trial_id="t1", events=batch) == 2
    assert summary(store, "t1")["entries"]["acc"]["count"] == 4


@pytest.mark.capability("nan")
def test_events_arriving_out_of_order_give_the_same_summary(store):
    store.create_trial(doc=make_doc("a"))
    store.create_trial(doc=make_doc("b"))
    batch = [ev(EXEC1 + i + 1, **s) for i, s in enumerate(STATS)]
    store.append_events(trial_id="a", events=batch)
    for event in reversed(batch):
        store.append_events(trial_id="b", events=[event])
    a, b = summary(store, "a"), summary(store, "b")
    for found in (a, b):
        found["entries"]["loss"]["last"] = "nan"  # NaN != NaN
    assert a["entries"] == b["entries"]
    assert b["runs_ok"] is False and store.step_runs(trial_id="b", key="epoch") is None


def test_a_resumed_trial_summarizes_every_execution(store):
    store.create_trial(doc=make_doc("t1"))
    store.append_events(trial_id="t1", events=[ev(EXEC1 + 1, epoch=1, loss=0.5)])
    store.try_append(trial_id="t1", event=(EXEC2, "status", 5.0, encode({"status": "running"})))
    store.append_events(
        trial_id="t1", events=[ev(EXEC2 + 1, epoch=2, loss=0.4), ev(EXEC2 + 2, epoch=3, loss=0.45)]
    )
    loss = summary(store, "t1")["entries"]["loss"]
    assert (loss["count"], loss["last"], loss["min"], loss["min_step"]) == (3, 0.45, 0.4, 2)
    assert [r["value"] for r in store.step_runs(trial_id="t1", key="epoch")] == [1, 2, 3]


def test_declarations_are_kept_with_the_summaries(store):
    store.create_trial(doc=make_doc("t1"))
    store.append_events(
        trial_id="t1",
        events=[
            ev(EXEC1 + 1, "metrics", metrics={"loss": "min", "lr": "max"}, primary="loss"),
            ev(EXEC1 + 2, epoch=1, loss=0.5),
        ],
    )
    found = summary(store, "t1")
    assert found["modes"] == {"loss": "min", "lr": "max"} and found["primary"] == "loss"
    assert set(found["entries"]) == {"epoch", "loss"}  # lr declared, never logged
    store.append_events(
        trial_id="t1", events=[ev(EXEC1 + 3, "metrics", metrics={"loss": "max"}, primary="acc")]
    )
    found = summary(store, "t1")
    assert found["modes"] == {"loss": "max", "lr": "max"} and found["primary"] == "acc"


def test_a_trial_of_an_older_kleio_is_summarized_on_read_and_on_its_next_append(store):
    store.create_trial(doc=make_doc("old"))
    store.append_events(
        trial_id="old",
        events=[
            ev(EXEC1 + 1, "metrics", metrics={"acc": "max"}, primary="acc"),
            ev(EXEC1 + 2, epoch=1, acc=0.5),
            ev(EXEC1 + 3, epoch=2, acc=0.8),
        ],
    )
    expected = summary(store, "old")
    forget(store, "old")
    found = summary(store, "old")  # read from the events, nothing written
    assert found["entries"] == expected["entries"]
    assert (found["modes"], found["primary"]) == ({"acc": "max"}, "acc")
    assert store.step_runs(trial_id="old", key="epoch") is None  # readers scan instead
    store.append_events(trial_id="old", events=[ev(EXEC1 + 4, epoch=3, acc=0.9)])
    found = summary(store, "old")
    assert (found["entries"]["acc"]["count"], found["entries"]["acc"]["max"]) == (3, 0.9)
    assert found["primary"] == "acc"
    assert [r["value"] for r in store.step_runs(trial_id="old", key="epoch")] == [1, 2, 3]


def test_rm_removes_the_summaries(store):
    store.create_trial(doc=make_doc("t1"))
    store.append_events(trial_id="t1", events=[ev(EXEC1 + 1, epoch=1, acc=0.5)])
    store.delete_trial(trial_id="t1")
    assert store.read_summaries(trial_ids=["t1"]) == {}
    assert store.rank_trials(metric="acc", mode="max", default_mode=None, descending=True) == []
    store.create_trial(doc=make_doc("t1"))  # created again: nothing left over
    assert summary(store, "t1")["entries"] == {}


def test_step_runs_group_consecutive_statistics(store):
    store.create_trial(doc=make_doc("t1"))
    values = [1, 1, 1, 2, 2, None, 2, 3]
    events = []
    for index, value in enumerate(values):
        data = {"loss": 0.1} if value is None else {"epoch": value, "loss": 0.1}
        events.append(ev(EXEC1 + index + 1, **data))
    store.append_events(trial_id="t1", events=events[:4])
    store.append_events(trial_id="t1", events=events[4:])
    runs = store.step_runs(trial_id="t1", key="epoch")
    assert [(r["value"], r["first_seq"] - EXEC1, r["last_seq"] - EXEC1) for r in runs] == [
        (1, 1, 3),
        (2, 4, 5),
        (2, 7, 7),
        (3, 8, 8),
    ]
    assert store.step_runs(trial_id="t1", key="step") is None  # new in every statistic
    assert store.step_runs(trial_id="t1", key="loss") is None  # not a step key
    assert store.next_seq_of(trial_id="t1", kind="statistic", after=EXEC1 + 5) == EXEC1 + 6


@pytest.fixture
def ranked(store):
    rows = [
        ("a", 0.9, 1.0, {}),
        ("b", 0.7, 2.0, {}),
        ("c", 0.9, 3.0, {}),
        ("d", 0.2, 4.0, {"acc": "min"}),
        ("e", None, 5.0, {}),
    ]
    for trial_id, acc, created, modes in rows:
        store.create_trial(
            doc=make_doc(
                trial_id,
                created_at=created,
                project=f"p-{trial_id}",
                status="completed" if trial_id != "b" else "broken",
            )
        )
        events = []
        if modes:
            events.append(ev(EXEC1 + 1, "metrics", metrics=modes))
        if acc is not None:
            events.append(ev(EXEC1 + 2, epoch=1, acc=acc))
            events.append(ev(EXEC1 + 3, epoch=2, acc=acc / 2))
        else:
            events.append(ev(EXEC1 + 2, epoch=1, loss=1.0))
        store.append_events(trial_id=trial_id, events=events)
    store.create_trial(doc=make_doc("f", created_at=6.0, parent={"id": "a", "cut": EXEC1 + 3}))
    store.append_events(trial_id="f", events=[ev(1, epoch=3, acc=0.99)])
    return rows


def ranking(store, **kwargs):
    args = {"metric": "acc", "mode": None, "default_mode": "max", "descending": True}
    args.update(kwargs)
    return [(doc["id"], value) for doc, value in store.rank_trials(**args)]


def test_rank_trials_by_each_trials_mode(store, ranked):
    # d declares acc a metric to minimize: its best is its minimum, 0.1.
    assert ranking(store) == [("c", 0.9), ("a", 0.9), ("b", 0.7), ("d", 0.1)]
    assert ranking(store, descending=False) == [("d", 0.1), ("b", 0.7), ("c", 0.9), ("a", 0.9)]
    assert ranking(store, mode="max") == [("c", 0.9), ("a", 0.9), ("b", 0.7), ("d", 0.2)]
    assert ranking(store, mode="min", descending=False)[0] == ("d", 0.1)
    assert ranking(store, default_mode=None) == [("d", 0.1)]  # the only one declaring it
    assert ranking(store, limit=2) == [("c", 0.9), ("a", 0.9)]
    assert ranking(store, offset=1, limit=2) == [("a", 0.9), ("b", 0.7)]
    assert ranking(store, metric="nothing") == []


def test_rank_trials_filters(store, ranked):
    assert ranking(store, statuses=["completed"]) == [("c", 0.9), ("a", 0.9), ("d", 0.1)]
    assert ranking(store, since=2.5) == [("c", 0.9), ("d", 0.1)]
    assert ranking(store, project="p-b") == [("b", 0.7)]
    assert ranking(store, tags=["none"]) == []


def test_find_trials_since_project_and_branches(store, ranked):
    def found(**kwargs):
        return sorted(d["id"] for d in store.find_trials(**kwargs))

    assert found(since=4.0) == ["d", "e", "f"]
    assert found(project="p-") == ["a", "b", "c", "d", "e"]
    assert found(project="-c") == ["c"]
    assert found(branches=True) == ["f"]
    assert found(branches=False, since=4.0) == ["d", "e"]


def _scan_cut(store, doc, key, text, monkeypatch):
    import kleio.branching as branching

    monkeypatch.setattr(branching, "_cut_at_step", lambda *args: None)
    try:
        return branching.resolve_timestamp(store, doc, f"{key}={text}")
    finally:
        monkeypatch.undo()


def test_branch_cuts_from_step_runs_equal_the_scan(store, monkeypatch):
    import random

    from kleio.branching import resolve_timestamp

    rng = random.Random(7)
    store.create_trial(doc=make_doc("p"))
    events, seq = [], EXEC1
    for _ in range(120):
        seq += 1
        kind = rng.choice(["statistic"] * 4 + ["stdout"])
        if kind == "stdout":
            events.append(ev(seq, "stdout", line="x"))
            continue
        data = {"loss": rng.random()}
        if rng.random() < 0.9:
            data["epoch"] = rng.choice([1, 2, 3, 4, 2.0])
        events.append(ev(seq, **data))
    store.append_events(trial_id="p", events=events[:50])
    store.append_events(trial_id="p", events=events[50:])
    parent = store.get_trial(trial_id="p")
    store.create_trial(doc=make_doc("c", parent={"id": "p", "cut": EXEC1 + 60}))
    store.append_events(
        trial_id="c",
        events=[ev(1, epoch=5, loss=0.1), ev(2, epoch=5), ev(3, loss=0.2), ev(4, epoch=1)],
    )
    child = store.get_trial(trial_id="c")
    for doc in (parent, child):
        for text in ("1", "2", "3", "4", "5", "2.0"):
            try:
                expected = _scan_cut(store, doc, "epoch", text, monkeypatch)
            except Exception as error:  # noqa: BLE001 - both must refuse alike
                with pytest.raises(type(error)):
                    resolve_timestamp(store, doc, f"epoch={text}")
                continue
            got = resolve_timestamp(store, doc, f"epoch={text}")
            assert (got[0]["id"], got[1]) == (expected[0]["id"], expected[1]), (doc["id"], text)
    from kleio.branching import _cut_at_step

    assert _cut_at_step(store, store.lineage(trial_id="c"), "epoch", "1") is not None


def test_declared_primaries(store, ranked):
    assert store.declared_primaries() == (set(), True)
    store.append_events(trial_id="a", events=[ev(EXEC1 + 9, "metrics", primary="acc")])
    store.append_events(trial_id="b", events=[ev(EXEC1 + 9, "metrics", primary="loss")])
    assert store.declared_primaries() == ({"acc", "loss"}, True)
    assert store.declared_primaries(project="p-a") == ({"acc"}, False)
    assert store.declared_primaries(statuses=["completed"], since=2.5) == (set(), True)
    assert store.declared_primaries(tags=["none"]) == (set(), False)


def test_events_stored_one_by_one_after_a_refused_batch_are_summarized(store):
    """A journal may refuse a batch for one event it cannot hold (MongoDB: a document over
    16 MiB; the nx-27017 wire server: NaN); the runner then stores its events one by one
    (kleio.spool.store_each). What is stored is summarized as one batch of it would be."""
    from kleio.spool import store_each

    store.create_trial(doc=make_doc("t1"))
    batch = [
        ev(EXEC1 + 1, "metrics", metrics={"val_acc": "max"}, primary="val_acc"),
        ev(EXEC1 + 2, epoch=1, val_acc=0.25),
        ev(EXEC1 + 3, epoch=2, val_acc=float("nan")),
        ev(EXEC1 + 4, epoch=3, val_acc=0.5),
    ]
    try:
        store.append_events(trial_id="t1", events=batch)
    except ValueError:  # refused for what an event holds: not an outage
        store_each(store, "t1", batch, lambda event, why: None)
    stored = {e.seq for e in store.read_events(trial_id="t1")}
    assert stored >= {EXEC1 + 1, EXEC1 + 2, EXEC1 + 4}
    store.create_trial(doc=make_doc("t2"))
    store.append_events(trial_id="t2", events=[e for e in batch if e[0] in stored])
    found, expected = summary(store, "t1"), summary(store, "t2")
    for entries in (found["entries"], expected["entries"]):
        if math.isnan(entries["val_acc"]["last"]):
            entries["val_acc"]["last"] = "nan"  # NaN != NaN
    assert found == expected
    assert (found["entries"]["val_acc"]["max"], found["primary"]) == (0.5, "val_acc")
    hints = [("val_acc", ">", 0.2)]
    assert sorted(ids(store.find_trials(hints=hints))) == ["t1", "t2"]
    ranked = store.rank_trials(metric="val_acc", mode="max", default_mode=None, descending=True)
    assert sorted(doc["id"] for doc, _ in ranked) == ["t1", "t2"]
