"""MongoDB-specific behaviour; the shared behaviour is in ``test_contract.py``.

Tests run on mongomock; those marked ``mongodb`` run on a live server: the one named by
``KLEIO_TEST_MONGODB_URI`` (a replica set or Atlas), else the nx-27017 wire server.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import types

import pytest

mongomock = pytest.importorskip("mongomock")
bson = pytest.importorskip("bson")

from bson.int64 import Int64  # noqa: E402
from mongomock import gridfs as mongomock_gridfs  # noqa: E402
from pymongo.errors import BulkWriteError, OperationFailure  # noqa: E402

from kleio.errors import EXIT_STORE, SchemaVersionError, StoreUnavailable  # noqa: E402
from kleio.storage.base import SCHEMA_VERSION, encode  # noqa: E402
from kleio.storage.mongodb import (  # noqa: E402
    MongoDBStore,
    database_from_uri,
    ensure_indexes,
    with_database,
)

_GRIDFS_READY = False


def mongomock_client():
    """Return a mongomock client that pymongo's GridFS accepts.

    Test-only adaptations, never needed with a real server: gridfs checks ``isinstance`` of
    pymongo's Database/Collection (mongomock patches that), pymongo >= 4.2 reads
    ``client.options.timeout``, which mongomock's client lacks (its ``__getattr__`` would
    answer with a database), and pymongo >= 4.11's ``UpdateOne`` and ``ReplaceOne`` hand a
    ``sort`` (None unless given) to a bulk write, which mongomock's bulk builder does not take.
    """
    global _GRIDFS_READY
    if not _GRIDFS_READY:
        mongomock_gridfs.enable_gridfs_integration()
        if "options" not in vars(mongomock.MongoClient):
            mongomock.MongoClient.options = types.SimpleNamespace(timeout=None)
        for name in ("add_update", "add_replace"):
            _drop_unsorted(mongomock.collection.BulkOperationBuilder, name)
        _GRIDFS_READY = True
    return mongomock.MongoClient()


def _drop_unsorted(cls, name):
    real = getattr(cls, name)

    def without_sort(self, *args, sort=None, **kwargs):
        assert sort is None, "mongomock cannot sort a bulk update"
        return real(self, *args, **kwargs)

    setattr(cls, name, without_sort)


@pytest.fixture
def client():
    return mongomock_client()


@pytest.fixture
def store(client):
    with MongoDBStore("mongodb://localhost:27017/kleio_unit", client=client) as store:
        yield store


def events(seqs, kind="stdout", size=10):
    return [(seq, kind, 1000.0 + seq, encode({"text": "x" * size, "n": seq})) for seq in seqs]


# -- indexes ------------------------------------------------------------------------------


def index_keys(collection):
    return {
        name: (list(dict(spec["key"]).items()), bool(spec.get("unique")))
        for name, spec in collection.index_information().items()
    }


def test_ensure_indexes_creates_every_index_and_is_idempotent(client):
    db = client.kleio_idx
    ensure_indexes(db)
    first = {name: index_keys(db[name]) for name in db.list_collection_names()}
    ensure_indexes(db)
    assert {name: index_keys(db[name]) for name in db.list_collection_names()} == first

    events_idx = index_keys(db.events)
    assert events_idx["trial_kind_seq"] == ([("trial_id", 1), ("kind", 1), ("seq", 1)], False)
    trials_idx = {tuple(key) for key, _ in index_keys(db.trials).values()}
    for key in (
        (("status", 1), ("created_at", 1)),
        (("parent.id", 1),),
        (("tags", 1),),
        (("created_at", 1),),
        (("started_at", 1),),
        (("ended_at", 1),),
        (("heartbeat_at", 1),),
    ):
        assert key in trials_idx
    # The unique keys kleio relies on: one blob per digest, one chunk per (file, n).
    assert index_keys(db["blobs.files"])["sha256"] == ([("filename", 1)], True)
    assert ([("files_id", 1), ("n", 1)], True) in index_keys(db["blobs.chunks"]).values()


def test_event_key_is_unique_through_the_id_index(store, client):
    assert store.try_append(trial_id="t1", event=events([7])[0]) is True
    assert store.try_append(trial_id="t1", event=events([7])[0]) is False
    assert store.try_append(trial_id="t2", event=events([7])[0]) is True
    raw = client.kleio_unit.events.find_one({"trial_id": "t1"})
    assert raw["_id"] == "t1:0000000000000007"


def test_opening_builds_indexes_once(client, monkeypatch):
    calls = []
    import kleio.storage.mongodb as module

    real = module.ensure_indexes
    monkeypatch.setattr(module, "ensure_indexes", lambda db: (calls.append(1), real(db)))
    MongoDBStore("mongodb://localhost/kleio_once", client=client).close()
    MongoDBStore("mongodb://localhost/kleio_once", client=client).close()
    assert len(calls) == 1
    assert client.kleio_once.meta.find_one({"_id": "schema"})["version"] == SCHEMA_VERSION


def test_seq_is_stored_as_int64(store, client):
    store.append_events(trial_id="t", events=events([1, 2**40]))
    for raw in client.kleio_unit.events.find({"trial_id": "t"}):
        assert type(raw["seq"]) is Int64
    assert [e.seq for e in store.read_events(trial_id="t", kinds=["stdout"])] == [1, 2**40]
    assert store.last_seq(trial_id="t") == 2**40


# -- append_events ------------------------------------------------------------------------


def test_replayed_batches_count_only_new_events(store):
    assert store.append_events(trial_id="t", events=events(range(10))) == 10
    assert store.append_events(trial_id="t", events=events(range(10))) == 0
    assert store.append_events(trial_id="t", events=events(range(5, 15))) == 5
    assert store.append_events(trial_id="t", events=events([20, 20, 21])) == 2
    # Batches larger than one insert_many chunk; 0..14, 20 and 21 are already there.
    assert store.append_events(trial_id="t", events=events(range(2500))) == 2500 - 17
    assert store.count_events(trial_id="t", kind="stdout") == 2500
    assert [e.seq for e in store.read_events(trial_id="t", after=2497)] == [2498, 2499]


@pytest.mark.parametrize(
    "code, concern, raised",
    [
        (121, [], ValueError),  # document failed validation: refused for what it holds
        (10334, [], ValueError),  # too large
        (91, [], StoreUnavailable),  # shutting down: not now, replaying later is safe
        (121, [{"code": 64, "errmsg": "waiting for replication timed out"}], StoreUnavailable),
    ],
)
def test_append_events_reports_other_write_errors(store, monkeypatch, code, concern, raised):
    def refuse(self, documents, ordered=True, **kwargs):
        raise BulkWriteError(
            {
                "writeErrors": [
                    {"index": 0, "code": 11000, "errmsg": "E11000 duplicate key"},
                    {"index": 1, "code": code, "errmsg": f"refused with code {code}"},
                ],
                "writeConcernErrors": concern,
                "nInserted": 0,
            }
        )

    monkeypatch.setattr(mongomock.collection.Collection, "insert_many", refuse)
    with pytest.raises(raised, match="refused"):
        store.append_events(trial_id="t", events=events([1, 2]))


def test_an_event_over_the_document_limit_is_kept_as_its_text(store):
    """max_statistic_size bounds a statistic's JSON; BSON spells a list of small numbers
    about 6 times longer: such an event is stored as its JSON text, and read back whole."""
    import bson

    from kleio.storage.mongodb import MongoDBStore

    text = encode({"values": [0] * 1_400_000})
    assert len(bson.encode({"values": [0] * 1_400_000})) > 16 << 20
    doc = MongoDBStore._event_doc("t" * 40, (1, "statistic", 1.0, text))
    assert len(bson.encode(doc)) < 16 << 20
    assert MongoDBStore._to_event(doc).data == {"values": [0] * 1_400_000}
    small = MongoDBStore._event_doc("t" * 40, (2, "statistic", 1.0, encode({"loss": 0.5})))
    assert small["data"] == {"loss": 0.5} and "esc" not in small


# -- errors -------------------------------------------------------------------------------


def test_unreachable_server_is_one_clear_error():
    start = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        MongoDBStore("mongodb://user:secret@127.0.0.1:1/kleio", timeout_ms=300)
    assert time.monotonic() - start < 5
    text = str(info.value)
    assert "127.0.0.1" in text
    assert "secret" not in text
    assert "reachable" in text
    assert "\n" not in text
    assert info.value.exit_code == EXIT_STORE
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_refused_credentials_are_reported_as_such(store, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationFailure("Authentication failed.", code=18)

    monkeypatch.setattr(mongomock.collection.Collection, "find_one", refuse)
    with pytest.raises(StoreUnavailable, match="credentials") as info:
        store.get_trial(trial_id="x")
    assert "localhost:27017" in str(info.value)


def test_newer_schema_is_refused(client):
    client.kleio_future.meta.insert_one({"_id": "schema", "version": 99, "indexes": 99})
    with pytest.raises(SchemaVersionError, match="99"):
        MongoDBStore("mongodb://localhost/kleio_future", client=client)


def test_update_trial_only_accepts_mutable_fields(store, client):
    store.create_trial(doc={"id": "t", "status": "new", "created_at": 1.0})
    with pytest.raises(ValueError, match="command"):
        store.update_trial(trial_id="t", fields={"command": ["rm"]})
    with pytest.raises(ValueError, match="id"):
        store.try_append(trial_id="t", event=events([1])[0], fields={"id": "u"})
    assert client.kleio_unit.events.count_documents({}) == 0


# -- URIs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri, name",
    [
        ("mongodb://localhost", "kleio"),
        ("mongodb://localhost/", "kleio"),
        ("mongodb://localhost/?replicaSet=rs0", "kleio"),
        ("mongodb://localhost:27017/journal", "journal"),
        ("mongodb://u:p%40ss@h1:1,h2:2/team_a?replicaSet=rs0&w=majority", "team_a"),
        ("mongodb+srv://u:p@cluster0.example.net/prod?retryWrites=true", "prod"),
    ],
)
def test_database_name_comes_from_the_uri_path(uri, name):
    assert database_from_uri(uri) == name


def test_store_uses_the_default_database(client):
    MongoDBStore("mongodb://localhost:27017", client=client).close()
    assert "kleio" in client.list_database_names()


def test_with_database_replaces_only_the_database():
    assert with_database("mongodb://h:1/a?replicaSet=rs0", "b") == "mongodb://h:1/b?replicaSet=rs0"
    assert with_database("mongodb://h1,h2", "b") == "mongodb://h1,h2/b"
    assert with_database("mongodb://h/?w=majority", "b") == "mongodb://h/b?w=majority"
    # The old database was the user's authSource: it is kept explicit.
    assert with_database("mongodb://u:p@h/a", "b") == "mongodb://u:p@h/b?authSource=a"
    assert with_database("mongodb://u:p@h", "b") == "mongodb://u:p@h/b?authSource=admin"
    assert (
        with_database("mongodb://u:p@h/a?authSource=x&tls=true", "b")
        == "mongodb://u:p@h/b?authSource=x&tls=true"
    )
    assert (
        with_database("mongodb+srv://u:p@c.example.net/a?retryWrites=true", "b")
        == "mongodb+srv://u:p@c.example.net/b?retryWrites=true"
    )
    assert database_from_uri(with_database("mongodb://h/a", "kleio_test_1")) == "kleio_test_1"


def test_store_uri_masks_the_password(client):
    with MongoDBStore("mongodb://user:secret@localhost/kleio_m", client=client) as store:
        assert "secret" not in store.uri


def test_importing_the_storage_registry_does_not_import_pymongo():
    code = "import sys, kleio.storage; assert 'pymongo' not in sys.modules, 'pymongo'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- document sizes -----------------------------------------------------------------------


@pytest.mark.slow
def test_no_document_grows_with_the_journal(store, client):
    line = "y" * 1000
    store.create_trial(doc={"id": "big", "status": "running", "created_at": 1.0})
    seq = 0
    for _ in range(40):  # 20,000 lines of 1 KB and 20,000 statistics, as a runner batches
        batch = []
        for _ in range(500):
            seq += 1
            batch.append((seq, "stdout", float(seq), encode({"text": line})))
            seq += 1
            batch.append((seq, "statistic", float(seq), encode({"step": seq, "loss": 0.5})))
        assert store.append_events(trial_id="big", events=batch) == len(batch)
        store.update_trial(trial_id="big", fields={"heartbeat_at": float(seq)})

    db = client.kleio_unit
    total = largest = 0
    for name in db.list_collection_names():
        for doc in db[name].find():
            size = len(bson.encode(doc))
            total += size
            largest = max(largest, size)
    assert total > 20 * 2**20  # far more than one 16 MB document could hold
    assert largest < 4096
    assert store.count_events(trial_id="big", kind="stdout") == 20_000
    assert sum(1 for _ in store.iter_lineage_events(trial_id="big", kinds=["stdout"])) == 20_000


# -- values BSON cannot hold as they are ------------------------------------------------------


def test_values_bson_cannot_hold_round_trip(store, client):
    data = {
        "text": "bad \udcff byte",
        "a.b": 1,
        "$set": 2,
        "nested": {"big": 2**70, "list": ["ok", "\ud800"], "__kleio_json__": "x"},
        "plain": "é",
    }
    store.append_events(trial_id="t", events=[(1, "stdout", 1.0, encode(data))])
    assert store.read_events(trial_id="t")[0].data == data

    doc = {"id": "t", "status": "new", "created_at": 1.0, "command": ["x", "\udc80"]}
    store.create_trial(doc=doc)
    store.update_trial(trial_id="t", fields={"runner": {"host": "h\udc80", "pid": 1}})
    assert store.get_trial(trial_id="t") == {**doc, "runner": {"host": "h\udc80", "pid": 1}}
    # Plain documents carry no escape flag and are stored as they are.
    store.append_events(trial_id="t", events=[(2, "stdout", 2.0, encode({"text": "é"}))])
    assert "esc" not in client.kleio_unit.events.find_one({"seq": 2})


def test_id_prefix_is_literal(store):
    for trial_id in ("abc1", "a.c2", "a*c3"):
        store.create_trial(doc={"id": trial_id, "status": "new", "created_at": 1.0})
    assert store.resolve_id(prefix="a.") == ["a.c2"]
    assert store.resolve_id(prefix="a*") == ["a*c3"]


# -- blobs --------------------------------------------------------------------------------


def test_blob_upload_race_keeps_one_copy(store, client, monkeypatch):
    payload = os.urandom(600_000)  # three GridFS chunks
    sha, size = store.put_blob(fileobj=io.BytesIO(payload))
    # Simulate a racing process: it checked before the first upload finished.
    monkeypatch.setattr(MongoDBStore, "has_blob", lambda self, sha256: False)
    assert store.put_blob(fileobj=io.BytesIO(payload)) == (sha, size)
    db = client.kleio_unit
    assert db["blobs.files"].count_documents({}) == 1
    assert db["blobs.chunks"].count_documents({}) == 3
    assert store.open_blob(sha256=sha).read() == payload


def test_identical_blobs_are_uploaded_once(store, client):
    for _ in range(3):
        store.put_blob(fileobj=io.BytesIO(b"weights" * 1000))
    assert client.kleio_unit["blobs.files"].count_documents({}) == 1


# -- live server --------------------------------------------------------------------------


@pytest.fixture
def live_store(mongodb_db_uri):
    with MongoDBStore(mongodb_db_uri) as store:
        yield store


@pytest.mark.mongodb
@pytest.mark.capability("explain")  # MongoDB's plan stages (IXSCAN, SORT)
def test_live_reads_are_served_by_indexes(live_store):
    live_store.append_events(trial_id="t", events=events(range(100)) + events([200], "status"))
    db = live_store._db
    plans = [
        db.events.find(
            {"_id": {"$gte": "t:0000000000000000", "$lte": "t:7fffffffffffffff"}, "trial_id": "t"}
        )
        .sort("_id", -1)
        .limit(1)
        .explain(),
        db.events.find({"trial_id": "t", "kind": {"$in": ["status", "stdout"]}})
        .sort("seq", 1)
        .explain(),
    ]
    for plan in plans:
        text = str(plan["queryPlanner"]["winningPlan"])
        assert "IXSCAN" in text and "COLLSCAN" not in text
        assert "'stage': 'SORT'" not in text


@pytest.mark.mongodb
def test_live_duplicate_replay(live_store):
    assert live_store.append_events(trial_id="t", events=events(range(1500))) == 1500
    assert live_store.append_events(trial_id="t", events=events(range(1000, 2000))) == 500


@pytest.mark.mongodb
def test_live_a_15_mb_statistic_is_one_document_under_the_limit(live_store):
    # max_statistic_size stops at 16,000,000 bytes of JSON: with its key and the event's
    # fields, the largest statistic still fits MongoDB's 16 MiB document limit.
    value = "v" * 15_000_000
    text = encode({"step": 1, "blob": value})
    assert len(text) < 16_000_000
    assert live_store.append_events(trial_id="t", events=[(1, "statistic", 1.0, text)]) == 1
    [event] = live_store.read_events(trial_id="t", kinds=["statistic"])
    assert event.data == {"step": 1, "blob": value}
    raw = live_store._db.events.find_one({"trial_id": "t"})
    assert len(bson.encode(raw)) < 16 * 2**20


@pytest.mark.parametrize("uri", ["mongodb://u:secret@", "mongodb:///db", "mongodb+srv://"])
def test_a_uri_naming_no_host_is_one_clear_error(uri):
    from kleio.errors import ConfigError
    from kleio.storage.mongodb_layout import split_uri

    with pytest.raises(ConfigError, match="names no host") as caught:
        split_uri(uri)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("retryWritez=true", "unknown option 'retrywritez'"),
        ("authMechanism=FOO", "authmechanism must be in"),
        ("tls=maybe", "tls must be 'true' or 'false'"),
    ],
)
def test_an_option_pymongo_would_ignore_is_one_clear_error(query, said):
    from kleio.errors import ConfigError

    with pytest.raises(ConfigError, match="invalid MongoDB URI") as caught:
        MongoDBStore(f"mongodb://user:secret@127.0.0.1:1/kleio_m?{query}", timeout_ms=50)
    assert said in str(caught.value) and "secret" not in str(caught.value)
