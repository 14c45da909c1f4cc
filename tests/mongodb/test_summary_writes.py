"""How the MongoDB store writes summaries: a constant number of requests per batch, writes
that a replay leaves unchanged, and its marks removed with the trial (that a cut starts from
the mark before it is the contract of every backend: tests/storage/test_summary_reads.py).

Run on mongomock and on the live server (nx-27017 unless ``KLEIO_TEST_MONGODB_URI``);
requests are counted on the live one, with pymongo's command monitoring.
"""

from __future__ import annotations

import contextlib
import types

import pytest

pytest.importorskip("mongomock")
pymongo = pytest.importorskip("pymongo")

from pymongo import monitoring  # noqa: E402

import kleio.storage.mongodb_summaries as summaries_module  # noqa: E402
from kleio.storage.base import encode, first_seq  # noqa: E402
from kleio.storage.mongodb import MongoDBStore  # noqa: E402
from tests.mongodb.server import live_available  # noqa: E402

EXEC1 = first_seq(1)
KINDS = ["mongomock"]
if live_available():
    KINDS.append(pytest.param("mongodb", marks=pytest.mark.mongodb))


class Commands(monitoring.CommandListener):
    """The commands a client sends, by name (handshakes and heartbeats left out)."""

    IGNORED = frozenset({"hello", "ismaster", "isMaster", "endSessions", "ping", "buildInfo"})

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in self.IGNORED:
            target = event.command.get(event.command_name)
            self.sent.append((event.command_name, str(target)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture(params=KINDS)
def store_and_commands(request):
    commands = Commands()
    if request.param == "mongomock":
        from tests.storage.test_mongodb import mongomock_client

        store = MongoDBStore("mongodb://localhost/kleio_writes", client=mongomock_client())
        yield store, None
        store.close()
        return
    uri = request.getfixturevalue("mongodb_db_uri")
    client = pymongo.MongoClient(uri, event_listeners=[commands], serverSelectionTimeoutMS=5000)
    store = MongoDBStore(uri, client=client)
    yield store, commands
    store.close()
    client.close()


def stat(seq, **data):
    return (seq, "statistic", 1.0, encode(data))


def test_a_batch_costs_the_same_requests_whatever_its_names(store_and_commands):
    store, commands = store_and_commands
    if commands is None:
        pytest.skip("mongomock sends no command to count")
    sent = {}
    for names in (2, 40):
        trial_id = f"t{names}"
        store.create_trial(doc={"id": trial_id, "created_at": 1.0})
        store.append_events(trial_id=trial_id, events=[stat(EXEC1, epoch=0, first=1.0)])
        commands.sent.clear()
        store.append_events(
            trial_id=trial_id,
            events=[
                stat(EXEC1 + 1 + i, epoch=1 + i // 5, **{f"m{k}": i * k / 7 for k in range(names)})
                for i in range(20)
            ],
        )
        sent[names] = [name for name, _ in commands.sent]
        assert (
            store.read_summaries(trial_ids=[trial_id])[trial_id]["entries"][f"m{names - 1}"][
                "count"
            ]
            == 20
        )
    assert sent[2] == sent[40]
    # The insert, three reads (state, summaries, open runs), one bulk write each for
    # summaries and runs, the state.
    assert len(sent[40]) == 7, sent[40]


def test_a_replayed_batch_and_a_resent_bulk_write_count_once(store_and_commands, monkeypatch):
    store, _ = store_and_commands
    store.create_trial(doc={"id": "t", "created_at": 1.0})
    batch = [stat(EXEC1 + i, epoch=i // 3, loss=1.0 / (1 + i)) for i in range(9)]
    store.append_events(trial_id="t", events=batch)
    before = store.read_summaries(trial_ids=["t"])["t"]
    assert before["entries"]["loss"]["count"] == 9
    assert store.append_events(trial_id="t", events=batch) == 0  # a replay: nothing new
    assert store.read_summaries(trial_ids=["t"])["t"] == before
    # The driver may send a write again (a retry after a lost reply): every write sets.
    writes = []
    real = summaries_module.SummariesMixin._write_fold

    def twice(self, trial_id, created_at, fold):
        writes.append(trial_id)
        real(self, trial_id, created_at, fold)
        real(self, trial_id, created_at, fold)

    monkeypatch.setattr(summaries_module.SummariesMixin, "_write_fold", twice)
    store.append_events(trial_id="t", events=[stat(EXEC1 + 9, epoch=3, loss=0.01)])
    assert writes == ["t"]
    after = store.read_summaries(trial_ids=["t"])["t"]["entries"]["loss"]
    assert after["count"] == 10 and after["min"] == 0.01
    runs = store.step_runs(trial_id="t", key="epoch")
    assert [(r["value"], r["first_seq"] - EXEC1, r["last_seq"] - EXEC1) for r in runs] == [
        (0, 0, 2),
        (1, 3, 5),
        (2, 6, 8),
        (3, 9, 9),
    ]


def test_rm_and_a_rebuild_remove_the_marks(store_and_commands, monkeypatch):
    store, _ = store_and_commands
    monkeypatch.setattr(summaries_module, "MARK_EVERY", 5)
    store.create_trial(doc={"id": "t", "created_at": 1.0})
    store.append_events(trial_id="t", events=[stat(EXEC1 + i, loss=float(i)) for i in range(12)])
    assert store._db.summary_marks.count_documents({"trial_id": "t"}) == 2
    store._resummarize("t")
    assert store._db.summary_marks.count_documents({"trial_id": "t"}) == 2
    store.delete_trial(trial_id="t")
    assert store._db.summary_marks.count_documents({"trial_id": "t"}) == 0


def test_an_int64_read_back_stays_a_number():
    from bson.int64 import Int64

    from kleio.storage.mongodb_layout import plain

    assert plain(Int64(2**40)) == 2**40 and type(plain(Int64(2**40))) is int
    assert plain(2**70) == float(2**70) and plain([1, 2]) == "[1,2]"


@pytest.mark.capability("exact-doubles")
def test_summaries_keep_every_digit_over_many_batches(store_and_commands):
    store, _ = store_and_commands
    store.create_trial(doc={"id": "t", "created_at": 1.0})
    values = [1 / (3 + i) for i in range(30)]
    for low in range(0, 30, 4):
        store.append_events(
            trial_id="t",
            events=[stat(EXEC1 + i, epoch=i, loss=values[i]) for i in range(low, min(30, low + 4))],
        )
    loss = store.read_summaries(trial_ids=["t"])["t"]["entries"]["loss"]
    assert (loss["min"], loss["max"], loss["last"]) == (values[-1], values[0], values[-1])
    assert loss["min_seq"] == EXEC1 + 29 and loss["max_seq"] == EXEC1


def test_a_batch_refused_for_one_event_keeps_the_summaries_of_the_others(store_and_commands):
    """An unordered insert that the server refuses for one document (MongoDB documents that
    it inserts the others, and names the refused one by index in ``writeErrors``) folds the
    others at once: the runner's one-by-one retry then finds them all duplicates, and a
    trial whose summaries waited for a rebuild vanished from metric filters (review h2 #2)."""
    from pymongo.errors import BulkWriteError

    store, _ = store_and_commands
    store.create_trial(doc={"id": "t", "created_at": 1.0})
    events = store._db.events

    class RefusingEvents:
        """The events collection of a server refusing a document over 16 MiB."""

        def __getattr__(self, name):
            return getattr(events, name)

        def insert_many(self, docs, ordered=True):
            docs = list(docs)
            taken = [d for d in docs if "huge" not in d["data"]]
            errors = [
                {"index": i, "code": 10334, "errmsg": "BSONObj size: 16793600 is invalid"}
                for i, d in enumerate(docs)
                if "huge" in d["data"]
            ]
            if taken:
                events.insert_many(taken, ordered=ordered)
            if errors:
                raise BulkWriteError(
                    {"writeErrors": errors, "writeConcernErrors": [], "nInserted": len(taken)}
                )
            return types.SimpleNamespace(inserted_ids=[d["_id"] for d in taken])

    class Database:
        def __init__(self, real):
            self.real, self.events = real, RefusingEvents()

        def __getattr__(self, name):
            return getattr(self.real, name)

        def __getitem__(self, name):
            return self.events if name == "events" else self.real[name]

    store._db = Database(store._db)
    batch = [
        (EXEC1, "metrics", 1.0, encode({"metrics": {"val_acc": "max"}, "primary": "val_acc"})),
        stat(EXEC1 + 1, epoch=1, val_acc=0.25),
        stat(EXEC1 + 2, epoch=2, val_acc=0.1, huge="x"),
        stat(EXEC1 + 3, epoch=3, val_acc=0.5),
    ]
    with pytest.raises(ValueError, match="refused journal events"):
        store.append_events(trial_id="t", events=batch)
    for event in batch:  # as kleio.spool.store_each retries them
        with contextlib.suppress(ValueError):
            store.append_events(trial_id="t", events=[event])
    found = store.read_summaries(trial_ids=["t"])["t"]
    val_acc = found["entries"]["val_acc"]
    assert (val_acc["count"], val_acc["max"], val_acc["last"]) == (2, 0.5, 0.5)
    assert (found["runs_ok"], found["primary"]) == (True, "val_acc")
    assert store._db.trials.find_one({"_id": "t"})["_sum"]["last_stat_seq"] == EXEC1 + 3
    assert (
        store._db.summaries.count_documents({"trial_id": "t", "name": "val_acc", "count": 2}) == 1
    )


def test_a_replay_after_an_outage_rebuilds_the_summaries_it_dropped(store_and_commands):
    """A write concern error drops the trial's summary state (some events may be in); the
    replay of the batch may then find every event in: the summaries are rebuilt, not left
    missing (a trial without them is absent from metric filters and rankings)."""
    store, _ = store_and_commands
    store.create_trial(doc={"id": "t", "created_at": 1.0})
    batch = [stat(EXEC1 + i, epoch=i, loss=1.0 / (1 + i)) for i in range(4)]
    store.append_events(trial_id="t", events=batch)
    store._db.trials.update_one({"_id": "t"}, {"$unset": {"_sum": ""}})  # as the outage does
    assert store.append_events(trial_id="t", events=batch) == 0
    assert store._db.trials.find_one({"_id": "t"})["_sum"]["runs_ok"] is True
    ranked = store.rank_trials(metric="loss", mode="min", default_mode=None, descending=False)
    assert [(doc["id"], best) for doc, best in ranked] == [("t", 0.25)]


def test_int64_statistics_read_back_as_ints_and_are_summarized(store_and_commands):
    """pymongo reads an int past 32 bits as bson's Int64, which the folds skipped: a trial
    rebuilt or summarized from its events lost such a statistic (live server only)."""
    from bson.int64 import Int64

    from kleio.storage.mongodb_layout import native

    assert native({"a": [Int64(5), {"b": Int64(6)}], "c": 1.0}) == {"a": [5, {"b": 6}], "c": 1.0}
    assert type(native([Int64(5)])[0]) is int
    plain_data = {"a": 1, "b": [2.0]}
    assert native(plain_data) is plain_data
    store, _ = store_and_commands
    store.create_trial(doc={"id": "t", "created_at": 1.0})
    store.append_events(trial_id="t", events=[stat(EXEC1, step=1, edge=2**62, nested=[2**40])])
    (event,) = store.read_events(trial_id="t")
    assert type(event.data["edge"]) is int and type(event.data["nested"][0]) is int
    store._resummarize("t")
    edge = store.read_summaries(trial_ids=["t"])["t"]["entries"]["edge"]
    assert (edge["count"], edge["max"]) == (1, 2**62)
