"""Trials an older kleio created without ``_opts`` get them when a newer kleio opens the store.

Without them, ``where`` push-down keeps such a trial as a maybe whatever the condition
(:mod:`kleio.storage.mongodb_where`); the backfill runs once, on the open, in chunks.
On mongomock and the live server (nx-27017 unless ``KLEIO_TEST_MONGODB_URI``).
"""

from __future__ import annotations

import pytest

pytest.importorskip("mongomock")
pytest.importorskip("pymongo")

import kleio.storage.mongodb as module  # noqa: E402
from kleio.storage.mongodb import MongoDBStore  # noqa: E402
from kleio.storage.mongodb_where import option_index  # noqa: E402
from tests.mongodb.server import live_available  # noqa: E402

KINDS = ["mongomock"]
if live_available():
    KINDS.append(pytest.param("mongodb", marks=pytest.mark.mongodb))

#: (id, options) of the trials an older kleio wrote: "o3" holds a value BSON cannot hold as it
#: is (an integer beyond int64), so its options are stored escaped (``_esc``).
OLD = [
    ("o1", {"lr": "0.1"}),
    ("o2", {"lr": "0.5"}),
    ("o3", {"lr": "0.05", "big": 2**70}),
    ("o4", {"lr": "abc"}),
    ("o5", {"lr": "0.9"}),
]


@pytest.fixture(params=KINDS)
def make(request):
    if request.param == "mongomock":
        from tests.storage.test_mongodb import mongomock_client

        client = mongomock_client()
        return lambda: MongoDBStore("mongodb://localhost/kleio_backfill", client=client)
    uri = request.getfixturevalue("mongodb_db_uri")
    return lambda: MongoDBStore(uri)


def write_as_an_older_kleio(store):
    """The trial documents and meta of a kleio from before ``_opts``."""
    store._db.meta.update_one({"_id": "schema"}, {"$unset": {"opts": ""}})
    for index, (trial_id, options) in enumerate(OLD):
        doc = {
            "created_at": 100.0 + index,
            "status": "completed",
            "parent": None,
            "tags": [],
            "config": options,
            "command": ["python", "t.py"],
            "argv": ["python", "t.py"],
        }
        body = MongoDBStore._to_mongo(doc)
        sum_state = {"last_stat_seq": None, "runs_ok": True}
        store._db.trials.insert_one({"_id": trial_id * 8, **body, "_sum": sum_state})


def narrowed(store, *hints):
    return sorted(doc["id"][:2] for doc in store.find_trials(hints=list(hints)))


def test_opening_backfills_the_options_of_older_trials(make, monkeypatch):
    store = make()
    write_as_an_older_kleio(store)
    assert store._db.trials.count_documents({"_opts": {"$exists": True}}) == 0
    # What an older database answers: every trial is a maybe.
    assert narrowed(store, ("lr", "<", 0.2)) == ["o1", "o2", "o3", "o4", "o5"]
    store.close()

    monkeypatch.setattr(module, "_BACKFILL_CHUNK", 2)  # three chunks of the five trials
    store = make()
    try:
        for trial_id, options in OLD:
            raw = store._db.trials.find_one({"_id": trial_id * 8})
            assert raw["_opts"] == option_index(options)
        assert store._db.trials.find_one({"_id": "o3" * 8})["_esc"] is True
        assert store._db.meta.find_one({"_id": "schema"})["opts"] == module.OPTIONS_VERSION
        # Narrowed now: o2 and o5 (numbers that do not match) are no longer read; o3 (options
        # escaped) and o4 (text) stay maybes, as for a trial this kleio created.
        assert narrowed(store, ("lr", "<", 0.2)) == ["o1", "o3", "o4"]
        assert narrowed(store, ("lr", ">", 0.7)) == ["o3", "o4", "o5"]
        # The trials themselves read as they were written.
        assert store.get_trial(trial_id="o3" * 8)["config"] == {"lr": "0.05", "big": 2**70}
    finally:
        store.close()


def test_the_backfill_runs_once_and_again_changes_nothing(make, monkeypatch):
    store = make()
    write_as_an_older_kleio(store)
    store.close()
    store = make()
    before = {doc["_id"]: doc["_opts"] for doc in store._db.trials.find({}, {"_opts": 1})}
    store.close()
    assert len(before) == len(OLD)

    # Flagged: the next open asks nothing of the trials.
    scans = []
    real = MongoDBStore._index_old_options
    monkeypatch.setattr(MongoDBStore, "_index_old_options", lambda self: scans.append(1))
    make().close()
    assert scans == []

    # Two processes that both saw the flag down (opened at once): the second writes nothing new.
    store = make()
    try:
        real(store)
        real(store)
        after = {doc["_id"]: doc["_opts"] for doc in store._db.trials.find({}, {"_opts": 1})}
        assert after == before
    finally:
        store.close()


def test_a_new_database_is_flagged_at_its_first_open(make):
    store = make()
    try:
        assert store._db.meta.find_one({"_id": "schema"})["opts"] == module.OPTIONS_VERSION
    finally:
        store.close()
