"""``where`` conditions on options and metrics narrow MongoDB's answer, never its meaning.

On mongomock and the live server (nx-27017 unless ``KLEIO_TEST_MONGODB_URI``): for every
condition, the trials listed with the hints asked of the database are exactly those listed
when every candidate is read and checked in Python, and the database's answer is smaller.
"""

from __future__ import annotations

import pytest

pytest.importorskip("mongomock")
pytest.importorskip("pymongo")

import kleio.api as ka  # noqa: E402
from kleio.storage.base import encode, first_seq  # noqa: E402
from kleio.storage.mongodb import MongoDBStore  # noqa: E402
from tests.mongodb.server import live_available  # noqa: E402

EXEC1 = first_seq(1)
KINDS = ["mongomock"]
if live_available():
    KINDS.append(pytest.param("mongodb", marks=pytest.mark.mongodb))

#: (id, options, metrics logged, declared modes)
TRIALS = [
    ("a1", {"lr": "0.1"}, {"val": 0.5}, {}),
    ("a2", {"lr": "0.25"}, {"val": 0.9}, {"val": "max"}),
    ("a3", {"lr": " 0.3 "}, {"val": 0.2}, {"val": "min"}),
    ("a4", {"lr": "1e-1"}, {}, {}),
    ("a5", {"lr": "abc"}, {}, {}),
    ("a6", {"lr": "inf"}, {}, {}),
    ("a7", {"lr": True}, {}, {}),
    ("a8", {"lr": ["0.05", "0.5"]}, {}, {}),
    ("a9", {"lr": ["x", "0.7"]}, {}, {}),
    ("b1", {}, {"lr": 0.05, "val": 0.75}, {"lr": "min"}),  # no option lr: its metric decides
    ("b2", {"seed": "1"}, {"lr": 0.5}, {}),
    ("b3", {"a.b": "1", "lr": "0.01"}, {}, {}),  # a dotted key: options kept as JSON text
    ("c1", {"lr": "0.2"}, {"val": 0.1}, {}),
    ("c2", {"lr": "0.9"}, {"val": 0.95, "val.last": 0.3}, {"val": "max"}),
]
CONDITIONS = [
    "lr<0.2",
    "lr<=0.25",
    "lr=0.1",
    "lr>0.45",
    "lr>=0.3",
    "lr<1",
    "lr=abc",
    "lr!=0.1",
    "val>0.6",
    "val<0.3",
    "val=0.5",
    "val.last<0.4",
    "val.last>=0.9",
    "val.best>0.8",
    "val.count>0",
    "seed=1",
    "lr<0.2,val>0.4",
    "nothing<1",
]


@pytest.fixture(params=KINDS)
def journal(request, monkeypatch):
    if request.param == "mongomock":
        from tests.storage.test_mongodb import mongomock_client

        client = mongomock_client()
        uri = "mongodb://localhost/kleio_where"
        make = lambda: MongoDBStore(uri, client=client)  # noqa: E731
    else:
        uri = request.getfixturevalue("mongodb_db_uri")
        make = lambda: MongoDBStore(uri)  # noqa: E731
    store = make()
    for index, (trial_id, options, stats, modes) in enumerate(TRIALS):
        doc = {
            "id": trial_id * 8,
            "created_at": 100.0 + index,
            "status": "completed",
            "parent": None,
            "tags": [],
            "config": options,
            "command": ["python", "t.py"],
            "argv": ["python", "t.py"],
        }
        if trial_id == "c1":
            doc["parent"] = {"id": "a1" * 8, "cut": EXEC1}
        store.create_trial(doc=doc)
        events = []
        if modes:
            events.append((EXEC1, "metrics", 1.0, encode({"metrics": modes})))
        if stats:
            events.append((EXEC1 + 1, "statistic", 2.0, encode({"epoch": 1, **stats})))
        if events:
            store.append_events(trial_id=doc["id"], events=events)
    # A trial of a kleio from before _opts: kept by every hint, checked in Python.
    store._db.trials.update_one({"_id": "a4" * 8}, {"$unset": {"_opts": ""}})
    import kleio.storage

    monkeypatch.setattr(kleio.storage, "open_store", lambda _: make())
    with ka.open_journal(uri) as opened:
        yield opened, store
    store.close()


def listed(journal, condition):
    return sorted(t.id[:2] for t in journal.trials(where=condition.split(",")))


def test_conditions_list_what_checking_every_trial_lists(journal, monkeypatch):
    opened, store = journal
    narrowed = {condition: listed(opened, condition) for condition in CONDITIONS}
    asked = []
    real = MongoDBStore._find_trials_narrowed

    def counting(self, *, hints, **filters):
        found = real(self, hints=hints, **filters)
        asked.append((hints, len(found)))
        return found

    monkeypatch.setattr(MongoDBStore, "_find_trials_narrowed", counting)
    listed(opened, "lr<0.2")
    assert asked and asked[0][0] == [("lr", "<", 0.2)] and asked[0][1] < len(TRIALS)
    monkeypatch.setattr(
        MongoDBStore,
        "_find_trials_narrowed",
        lambda self, *, hints, **filters: self._find_trials(**filters),
    )
    checked = {condition: listed(opened, condition) for condition in CONDITIONS}
    assert narrowed == checked
    # What they are, for the record (the branch c1 inherits a1's val up to the cut).
    assert narrowed["lr<0.2"] == ["a1", "a4", "a8", "b1", "b3"]
    assert narrowed["lr=abc"] == ["a5"]
    assert narrowed["val>0.6"] == ["a2", "c2"]  # b1 logs val but gives it no mode


def test_hints_narrow_the_trials_read(journal):
    _, store = journal

    def ids(*hints):
        return sorted(d["id"][:2] for d in store.find_trials(hints=list(hints)))

    everything = ids()
    assert len(ids(("lr", "<", 0.2))) < len(everything)
    # Kept: a number that matches, text, a trial without _opts or with options as JSON text,
    # a trial without the option whose metric may match, a branch without the option.
    assert ids(("lr", "<", 0.2)) == ["a1", "a4", "a5", "a6", "a7", "a8", "a9", "b1", "b3"]
    assert ids(("val", ">", 0.6)) == ["a2", "a4", "b1", "b3", "c1", "c2"]
    assert ids(("val", ">", 0.6), ("lr", "<", 0.2)) == ["a4", "b1", "b3"]
    assert ids(("lr.count", "<", 1)) == everything  # a suffix the database cannot tell
