"""No MongoDB document approaches the 16 MiB limit, whatever a trial logs.

Every statistic is an event document of its own and the trial document holds only bounded
fields (status, heartbeat, runner, check counts), so a trial of 1,000,000 statistics is
1,000,000 small documents and a trial document of the same size as after ten. A statistic is
refused at the call above ``max_statistic_size`` (1 MiB by default); raised to its upper
bound, a 15 MB statistic is one event document under 16 MiB.

Sizes are BSON sizes: what pymongo sends, and what the server stores (events are inserted
once and never updated).
"""

from __future__ import annotations

import json
import time
import types

import pytest

bson = pytest.importorskip("bson")
pytest.importorskip("mongomock")

from kleio.storage.base import encode  # noqa: E402
from kleio.storage.mongodb import MongoDBStore  # noqa: E402
from tests.conftest import run_kleio, write  # noqa: E402

MONGODB_LIMIT = 16 * 1024 * 1024  # maxBsonObjectSize


class MeasuredEvents:
    """The ``events`` collection, measuring the BSON size of every document inserted.

    Only the first and last ``keep`` events of a trial are stored (in mongomock): storing a
    million costs minutes there, and sizes are taken from what kleio sends.
    """

    def __init__(self, real, total: int, keep: int = 1000) -> None:
        self.real, self.total, self.keep = real, total, keep
        self.count = 0
        self.sizes: dict[str, int] = {}  # largest per kind

    def _measure(self, docs):
        kept = []
        for doc in docs:
            self.count += 1
            seq = doc["seq"]
            # Every statistic has the same shape and fixed-width keys: one in a hundred is
            # measured, and every one at both ends (the longest numbers are at the end).
            if seq < self.keep or seq > self.total - self.keep:
                kept.append(doc)
            elif seq % 100 and doc["kind"] == "statistic":
                continue
            size = len(bson.encode(doc))
            self.sizes[doc["kind"]] = max(self.sizes.get(doc["kind"], 0), size)
        return kept

    def insert_many(self, docs, ordered=True):
        docs = list(docs)
        kept = self._measure(docs)
        if kept:
            self.real.insert_many(kept, ordered=ordered)
        return types.SimpleNamespace(inserted_ids=[doc["_id"] for doc in docs])

    def insert_one(self, doc):
        for kept in self._measure([doc]):
            self.real.insert_one(kept)
        return types.SimpleNamespace(inserted_id=doc["_id"])

    def __getattr__(self, name):
        return getattr(self.real, name)


class Database:
    def __init__(self, real, events) -> None:
        self.real, self.events = real, events

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __getitem__(self, name):
        return self.events if name == "events" else self.real[name]


class Client:
    """A mongomock client whose database's ``events`` collection is measured."""

    def __init__(self, real, events_for) -> None:
        self.real, self.events_for, self.measured = real, events_for, None

    def __getitem__(self, name):
        database = self.real[name]
        if self.measured is None:
            self.measured = self.events_for(database.events)
        return Database(database, self.measured)

    def __getattr__(self, name):
        return getattr(self.real, name)


def trial_doc(trial_id):
    """A trial document as kleio makes it: its snapshots of code, environment and host."""
    import os

    from kleio.config import load_config
    from kleio.trial import build_trial

    doc, _ = build_trial(["python", "train.py", "--lr", "0.1"], os.getcwd(), load_config())
    return {**doc, "id": trial_id}


@pytest.mark.parametrize(
    "total",
    [
        20_000,
        # kleio's own conversion of a statistic to a document costs ~12 us: a million take
        # 12 s or more whatever the server, so the run of a million is slow, and runs only when
        # asked for (-m slow); the default run proves the same sizes with 20,000.
        pytest.param(1_000_000, marks=pytest.mark.slow),
    ],
)
def test_a_million_statistics_are_small_documents_and_the_trial_does_not_grow(
    git_repo, tmp_path, total, request
):
    """Through the runner's writer thread, in batches as it writes them, with heartbeats."""
    if total > 20_000 and "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("a million statistics take 12 s or more: run them with -m slow")
    from kleio.spool import Spool
    from kleio.writer import BATCH, Heartbeat, Status, Stop, Writer
    from tests.storage.test_mongodb import mongomock_client

    per_message = 5_000
    client = Client(mongomock_client(), lambda real: MeasuredEvents(real, total))
    store = MongoDBStore("mongodb://localhost:27017/kleio_size", client=client)
    doc = trial_doc("a" * 40)
    assert store.create_trial(doc=doc)
    store.append_events(
        trial_id=doc["id"], events=[(0, "status", doc["created_at"], encode({"status": "new"}))]
    )
    writer = Writer(store, doc["id"], 1, Spool(str(tmp_path / "spool"), doc["id"], 1), 0.2)
    writer.start()
    start = time.time()
    writer.send(
        Status(
            "running",
            start,
            {"execution": 1},
            {"started_at": start, "heartbeat_at": start, "runner": {"host": "h", "pid": 1}},
        )
    )
    # One statistic as a training loop logs it, with its step number (the largest values).
    template = encode(
        {"epoch": 999, "step": total, "loss": 0.123456789, "acc": 0.987654321, "lr": 0.001}
    )
    datas = [template] * per_message
    for message in range(total // per_message):
        writer.events("statistic", start + message, datas)
        if message % 20 == 0:
            writer.send(Heartbeat(start + message))
    writer.send(
        Status(
            "completed", start + 1000, {"exit_code": 0}, {"ended_at": start + 1000, "exit_code": 0}
        )
    )
    writer.send(Stop())
    writer.join(timeout=120)
    assert not writer.is_alive()
    assert writer.finish() and writer.problems == {}

    measured = client.measured
    assert measured.count == total + 3  # new, running, the statistics, completed
    assert per_message >= BATCH  # messages as large as the batches the writer writes
    # Each statistic is a document of a few hundred bytes, whatever its position.
    assert measured.sizes["statistic"] < 512, measured.sizes
    assert max(measured.sizes.values()) < 4096, measured.sizes
    # The trial document holds its snapshots and bounded fields only: small, and read back.
    trial_size = len(bson.encode(client.real.kleio_size.trials.find_one({"_id": doc["id"]})))
    assert trial_size < 256 * 1024, trial_size  # far from 16 MiB after a million
    created_size = len(
        bson.encode(MongoDBStore._to_mongo({k: v for k, v in doc.items() if k != "id"}))
    ) + len(bson.encode({"_id": doc["id"]}))
    assert trial_size < created_size + 1024, (trial_size, created_size)  # did not grow
    [last] = store.read_events(trial_id=doc["id"], kinds=["statistic"], limit=1, reverse=True)
    assert last.seq == total + 1 and last.data["step"] == total
    assert store.get_trial(trial_id=doc["id"])["status"] == "completed"
    store.close()


BIG = """
    import sys
    from kleio.client.logger import kleio_logger as log
    try:
        log.log_statistic(step=0, blob="x" * 15_000_000)
        print("logged")
    except ValueError as error:
        print("refused:", error)
"""


@pytest.mark.mongodb
def test_a_15_mb_statistic_is_refused_by_default_and_one_document_when_allowed(
    git_repo, mongodb_db_uri, monkeypatch
):
    import pymongo

    monkeypatch.setenv("KLEIO_DB", mongodb_db_uri)
    write(git_repo / "big.py", BIG)
    refused = run_kleio("python", "big.py", "--limit", "default", cwd=git_repo)
    assert refused.returncode == 0, refused.stderr
    assert refused.stdout.startswith("refused: log_statistic(): this statistic is 15,000,")
    assert "over the limit of 1,048,576 (setting max_statistic_size)" in refused.stdout

    monkeypatch.setenv("KLEIO_MAX_STATISTIC_SIZE", "16000000")  # the upper bound
    allowed = run_kleio("python", "big.py", "--limit", "raised", cwd=git_repo, timeout=120)
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout == "logged\n"
    assert "kleio:" not in allowed.stderr  # no refused event, no problem counted

    client = pymongo.MongoClient(
        mongodb_db_uri, serverSelectionTimeoutMS=5000, document_class=bson.raw_bson.RawBSONDocument
    )
    try:
        db = client.get_default_database()
        trials = {doc["argv"][-1]: doc for doc in db.trials.find()}
        for name in ("default", "raised"):  # the trial documents stay small
            assert len(trials[name].raw) < 256 * 1024, len(trials[name].raw)
        raised = trials["raised"]["_id"]
        [event] = list(db.events.find({"trial_id": raised, "kind": "statistic"}))
        assert 15_000_000 < len(event.raw) < MONGODB_LIMIT, len(event.raw)
        assert event["data"]["blob"] == "x" * 15_000_000
        assert (
            list(db.events.find({"trial_id": trials["default"]["_id"], "kind": "statistic"})) == []
        )
        sizes = [len(doc.raw) for doc in db.events.find({"kind": {"$ne": "statistic"}})]
        assert max(sizes) < 64 * 1024, sizes
    finally:
        client.close()
    status = json.loads(run_kleio("info", raised, "--json", cwd=git_repo).stdout)["status"]
    assert status == "completed"


@pytest.mark.mongodb
@pytest.mark.capability("document-limit")  # a server that stores it proves nothing here
def test_a_statistic_under_the_size_limit_is_stored_whatever_its_bson_size(mongodb_db_uri):
    text = encode({"values": [0] * 1_400_000})
    assert len(text) < 3_000_000 < 16_000_000  # well under max_statistic_size's upper bound
    assert len(bson.encode({"values": [0] * 1_400_000})) > MONGODB_LIMIT
    with MongoDBStore(mongodb_db_uri) as store:
        store.create_trial(doc={"id": "b" * 40, "status": "running", "created_at": 1.0})
        store.append_events(trial_id="b" * 40, events=[(1, "statistic", 1.0, text)])
        [event] = store.read_events(trial_id="b" * 40)
        assert event.data == {"values": [0] * 1_400_000}


NAN = {"step": 1, "loss": float("nan"), "high": float("inf"), "low": float("-inf")}


def assert_nan_event(event):
    assert event.data["step"] == 1 and event.data["loss"] != event.data["loss"]
    assert (event.data["high"], event.data["low"]) == (float("inf"), float("-inf"))


def test_nan_statistics_are_sent_to_mongodb_as_doubles():
    """What kleio sends: BSON doubles, not strings (MongoDB stores NaN and infinities)."""
    from tests.storage.test_mongodb import mongomock_client

    client = mongomock_client()
    with MongoDBStore("mongodb://localhost:27017/kleio_nan", client=client) as store:
        store.append_events(trial_id="n" * 40, events=[(1, "statistic", 1.0, encode(NAN))])
        [raw] = list(client.kleio_nan.events.find())
        encoded = bson.decode(bson.encode(raw["data"]))  # through BSON, as over the wire
        assert all(isinstance(encoded[key], float) for key in ("loss", "high", "low"))
        assert "esc" not in raw
        assert_nan_event(store.read_events(trial_id="n" * 40)[0])


@pytest.mark.mongodb
@pytest.mark.capability("nan")  # the nx-27017 wire server refuses NaN ("Invalid JSON document")
def test_nan_statistics_round_trip_on_the_live_server(mongodb_db_uri):
    with MongoDBStore(mongodb_db_uri) as store:
        store.append_events(trial_id="n" * 40, events=[(1, "statistic", 1.0, encode(NAN))])
        assert_nan_event(store.read_events(trial_id="n" * 40)[0])
