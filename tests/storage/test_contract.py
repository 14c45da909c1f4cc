"""The storage contract: written against :class:`kleio.storage.base.Store` only.

Every test runs on every backend through the ``store`` fixture (see ``conftest.py``).
Backend-specific behaviour (files, indexes, processes) lives in ``test_<backend>.py``.
"""

from __future__ import annotations

import hashlib
import io

import pytest

from kleio.storage.base import Event, encode, first_seq
from kleio.storage.base import decode as json_loads

EXEC1 = first_seq(1)
EXEC2 = first_seq(2)


def make_doc(trial_id, created_at=1000.0, **fields):
    doc = {
        "schema_version": 1,
        "id": trial_id,
        "created_at": created_at,
        "command": ["python", "train.py", "--lr", "0.1"],
        "status": "new",
        "tags": [],
        "parent": None,
    }
    doc.update(fields)
    return doc


def ev(seq, kind="statistic", time=None, **data):
    return (seq, kind, float(seq if time is None else time), encode(data))


def ids(docs):
    return [doc["id"] for doc in docs]


# -- trials ---------------------------------------------------------------------------------


def test_create_trial_is_idempotent_and_keeps_the_first_document(store):
    doc = make_doc("a" * 32, tags=["x"])
    assert store.create_trial(doc=doc) is True
    assert store.create_trial(doc=make_doc("a" * 32, command=["other"], tags=["y"])) is False
    assert store.get_trial(trial_id="a" * 32) == doc


def test_get_trial_needs_the_exact_id(store):
    store.create_trial(doc=make_doc("abcdef"))
    assert store.get_trial(trial_id="abcdef")["id"] == "abcdef"
    assert store.get_trial(trial_id="abc") is None
    assert store.get_trial(trial_id="abcdef0") is None


def test_get_trial_returns_a_copy(store):
    store.create_trial(doc=make_doc("abcdef"))
    store.get_trial(trial_id="abcdef")["status"] = "mutated"
    assert store.get_trial(trial_id="abcdef")["status"] == "new"


def test_update_trial_sets_cached_fields_and_keeps_the_rest(store):
    doc = make_doc("abcdef", snapshot={"code": {"commit": "0123"}})
    store.create_trial(doc=doc)
    store.update_trial(
        trial_id="abcdef",
        fields={
            "status": "running",
            "started_at": 1010.5,
            "heartbeat_at": 1011.0,
            "runner": {"host": "node1", "pid": 42},
            "tags": ["a", "b"],
        },
    )
    got = store.get_trial(trial_id="abcdef")
    assert got == {
        **doc,
        "status": "running",
        "started_at": 1010.5,
        "heartbeat_at": 1011.0,
        "runner": {"host": "node1", "pid": 42},
        "tags": ["a", "b"],
    }
    # The cached fields are what filters and sorts see.
    assert ids(store.find_trials(statuses=["running"])) == ["abcdef"]
    assert ids(store.find_trials(statuses=["new"])) == []
    assert ids(store.find_trials(tags=["b"])) == ["abcdef"]


@pytest.mark.parametrize("field", ["id", "command", "parent", "created_at", "nonsense"])
def test_update_trial_rejects_immutable_or_unknown_fields(store, field):
    store.create_trial(doc=make_doc("abcdef"))
    with pytest.raises(ValueError, match=field):
        store.update_trial(trial_id="abcdef", fields={"status": "running", field: "x"})
    assert store.get_trial(trial_id="abcdef") == make_doc("abcdef")


# -- find_trials ----------------------------------------------------------------------------


@pytest.fixture
def trials(store):
    """Five trials with distinct created_at, some started/ended, tags and a parent."""
    docs = [
        make_doc(
            "abc100",
            1001.0,
            status="completed",
            tags=["base", "gpu"],
            started_at=1100.0,
            ended_at=1200.0,
        ),
        make_doc("abc200", 1002.0, status="running", tags=["gpu"], started_at=1300.0),
        make_doc("abd300", 1003.0, status="new", tags=[]),  # started_at missing
        make_doc(
            "bcd400",
            1004.0,
            status="broken",
            tags=["base"],
            started_at=1050.0,
            ended_at=1060.0,
            parent={"id": "abc100", "cut": EXEC1 + 3},
        ),
        make_doc(
            "bce500",
            1005.0,
            status="new",
            tags=["base", "gpu", "big"],
            started_at=None,
            parent={"id": "abc100", "cut": EXEC1 + 5},
        ),
    ]
    for doc in docs:
        assert store.create_trial(doc=doc)
    return docs


def test_find_trials_default_is_newest_first(store, trials):
    assert ids(store.find_trials()) == ["bce500", "bcd400", "abd300", "abc200", "abc100"]


def test_find_trials_sort_ascending_and_descending(store, trials):
    assert ids(store.find_trials(sort="created_at")) == [
        "abc100",
        "abc200",
        "abd300",
        "bcd400",
        "bce500",
    ]
    assert ids(store.find_trials(sort="id")) == sorted(ids(trials))
    assert ids(store.find_trials(sort="-id")) == sorted(ids(trials), reverse=True)


@pytest.mark.capability("null-equality")  # MongoDB's {f: null} and {f: {$ne: null}}
def test_find_trials_puts_missing_values_last_in_both_directions(store, trials):
    assert ids(store.find_trials(sort="started_at"))[:3] == ["bcd400", "abc100", "abc200"]
    assert set(ids(store.find_trials(sort="started_at"))[3:]) == {"abd300", "bce500"}
    assert ids(store.find_trials(sort="-started_at"))[:3] == ["abc200", "abc100", "bcd400"]
    assert set(ids(store.find_trials(sort="-started_at"))[3:]) == {"abd300", "bce500"}
    assert ids(store.find_trials(sort="ended_at"))[:2] == ["bcd400", "abc100"]
    assert ids(store.find_trials(sort="-ended_at"))[:2] == ["abc100", "bcd400"]


@pytest.mark.parametrize("sort", ["command", "-tags", "", "--created_at", "created_at "])
def test_find_trials_rejects_unknown_sort_fields(store, trials, sort):
    with pytest.raises(ValueError, match="created_at"):
        store.find_trials(sort=sort)


def test_find_trials_limit(store, trials):
    assert ids(store.find_trials(limit=2)) == ["bce500", "bcd400"]
    assert ids(store.find_trials(sort="created_at", limit=1)) == ["abc100"]
    assert len(store.find_trials(limit=100)) == 5


def test_find_trials_id_prefix(store, trials):
    assert ids(store.find_trials(id_prefix="ab", sort="id")) == ["abc100", "abc200", "abd300"]
    assert ids(store.find_trials(id_prefix="abc", sort="id")) == ["abc100", "abc200"]
    assert ids(store.find_trials(id_prefix="abc100")) == ["abc100"]
    assert ids(store.find_trials(id_prefix="abc1000")) == []
    assert ids(store.find_trials(id_prefix="c")) == []
    # Prefix characters are literal, never wildcards.
    assert ids(store.find_trials(id_prefix="ab%")) == []
    assert ids(store.find_trials(id_prefix="ab*")) == []
    assert ids(store.find_trials(id_prefix="ab.")) == []
    assert ids(store.find_trials(id_prefix="ab_")) == []


def test_find_trials_statuses(store, trials):
    assert ids(store.find_trials(statuses=["new"], sort="id")) == ["abd300", "bce500"]
    assert ids(store.find_trials(statuses=["running", "broken"], sort="id")) == ["abc200", "bcd400"]
    assert store.find_trials(statuses=["failover"]) == []
    assert store.find_trials(statuses=[]) == []


def test_find_trials_tags_must_all_be_present(store, trials):
    assert ids(store.find_trials(tags=["gpu"], sort="id")) == ["abc100", "abc200", "bce500"]
    assert ids(store.find_trials(tags=["base", "gpu"], sort="id")) == ["abc100", "bce500"]
    assert ids(store.find_trials(tags=["base", "gpu", "big"])) == ["bce500"]
    assert store.find_trials(tags=["gp"]) == []
    assert len(store.find_trials(tags=[])) == 5


def test_find_trials_parent_id(store, trials):
    assert ids(store.find_trials(parent_id="abc100", sort="id")) == ["bcd400", "bce500"]
    assert store.find_trials(parent_id="bcd400") == []


def test_find_trials_filters_combine(store, trials):
    found = store.find_trials(
        id_prefix="b",
        statuses=["new", "broken"],
        tags=["base"],
        parent_id="abc100",
        sort="created_at",
        limit=1,
    )
    assert ids(found) == ["bcd400"]
    assert found[0] == trials[3]


def test_resolve_id(store, trials):
    assert store.resolve_id(prefix="abc") == ["abc100", "abc200"]
    assert store.resolve_id(prefix="bcd4") == ["bcd400"]
    assert store.resolve_id(prefix="f") == []


def test_resolve_id_returns_at_most_ten_sorted(store):
    for n in range(15):
        store.create_trial(doc=make_doc(f"ff{n:04x}", created_at=float(-n)))
    assert store.resolve_id(prefix="ff") == [f"ff{n:04x}" for n in range(10)]


# -- events ---------------------------------------------------------------------------------


def test_try_append_is_a_compare_and_append(store):
    store.create_trial(doc=make_doc("t1"))
    fields = {"status": "reserved", "runner": {"host": "h", "pid": 1}}
    first = ev(EXEC1, "status", status="reserved", pid=1)
    assert store.try_append(trial_id="t1", event=first, fields=fields) is True
    assert store.get_trial(trial_id="t1")["runner"] == {"host": "h", "pid": 1}
    # The loser changes neither the journal nor the document.
    loser = ev(EXEC1, "status", status="reserved", pid=2)
    assert (
        store.try_append(
            trial_id="t1", event=loser, fields={"status": "running", "runner": {"pid": 2}}
        )
        is False
    )
    doc = store.get_trial(trial_id="t1")
    assert doc["status"] == "reserved"
    assert doc["runner"] == {"host": "h", "pid": 1}
    assert [e.data for e in store.read_events(trial_id="t1")] == [{"status": "reserved", "pid": 1}]
    # The key is per trial: the same seq on another trial is free.
    store.create_trial(doc=make_doc("t2"))
    assert store.try_append(trial_id="t2", event=loser) is True
    assert ids(store.find_trials(statuses=["reserved"])) == ["t1"]


def test_try_append_rejects_unknown_fields(store):
    store.create_trial(doc=make_doc("t1"))
    with pytest.raises(ValueError, match="command"):
        store.try_append(trial_id="t1", event=ev(EXEC1, "status"), fields={"command": []})


def test_append_events_skips_existing_keys_and_counts_inserted(store):
    store.create_trial(doc=make_doc("t1"))
    batch = [ev(EXEC1 + i, epoch=i) for i in range(10)]
    assert store.append_events(trial_id="t1", events=batch) == 10
    assert store.append_events(trial_id="t1", events=batch) == 0
    overlapping = [ev(EXEC1 + i, epoch=-i) for i in range(5, 15)]
    assert store.append_events(trial_id="t1", events=overlapping) == 5
    assert store.append_events(trial_id="t1", events=[]) == 0
    events = store.read_events(trial_id="t1")
    assert [e.seq for e in events] == [EXEC1 + i for i in range(15)]
    # Existing events are never overwritten by a replay.
    assert [e.data["epoch"] for e in events] == [*range(10), *(-i for i in range(10, 15))]


def test_append_events_skips_duplicates_within_one_batch(store):
    store.create_trial(doc=make_doc("t1"))
    batch = [ev(EXEC1, value=1), ev(EXEC1 + 1, value=2), ev(EXEC1, value=3)]
    assert store.append_events(trial_id="t1", events=batch) == 2
    assert [e.data["value"] for e in store.read_events(trial_id="t1")] == [1, 2]


def test_events_round_trip_exactly(store):
    store.create_trial(doc=make_doc("t1"))
    data = {
        "epoch": 3,
        "loss": 0.1 + 0.2,
        "ok": True,
        "none": None,
        "list": [1, "a"],
        "nested": {"x": -1e-300},
    }
    store.append_events(trial_id="t1", events=[(EXEC1 + 7, "statistic", 1234.5678, encode(data))])
    [event] = store.read_events(trial_id="t1")
    assert event == Event("t1", EXEC1 + 7, "statistic", 1234.5678, data)
    assert event.to_json()["data"] == data


def test_unicode_and_lone_surrogates_round_trip(store):
    store.create_trial(doc=make_doc("t1", tags=["é", "日本"]))
    data = {"text": "héllo ✓ 日本語 🎉\x00\n", "raw": "bad \udcff byte \ud800", "ключ": "é"}
    store.append_events(trial_id="t1", events=[(EXEC1, "stdout", 1.0, encode(data))])
    assert store.read_events(trial_id="t1")[0].data == data
    assert store.try_append(trial_id="t1", event=(EXEC1 + 1, "stderr", 2.0, encode(data)))
    assert store.read_events(trial_id="t1", kinds=["stderr"])[0].data == data
    assert store.get_trial(trial_id="t1")["tags"] == ["é", "日本"]
    assert ids(store.find_trials(tags=["日本"])) == ["t1"]


@pytest.fixture
def journal(store):
    """Trial t1: a status, then statistics and output interleaved over two executions."""
    store.create_trial(doc=make_doc("t1"))
    events = [ev(0, "status", status="new")]
    events += [ev(EXEC1, "status", status="running")]
    for i in range(1, 7):
        events.append(ev(EXEC1 + 2 * i - 1, "statistic", epoch=i))
        events.append(ev(EXEC1 + 2 * i, "stdout", line=f"epoch {i}"))
    events += [ev(EXEC1 + 20, "status", status="interrupted")]
    events += [ev(EXEC2, "status", status="running"), ev(EXEC2 + 1, "statistic", epoch=7)]
    assert store.append_events(trial_id="t1", events=events) == len(events)
    return [e[0] for e in events]


def seqs(events):
    return [e.seq for e in events]


def test_read_events_in_seq_order_whatever_the_insert_order(store):
    store.create_trial(doc=make_doc("t1"))
    order = [5, 1, EXEC1 + 2, 3, EXEC1, 0, EXEC2]
    for seq in order:
        store.append_events(trial_id="t1", events=[ev(seq)])
    assert seqs(store.read_events(trial_id="t1")) == sorted(order)
    assert seqs(store.read_events(trial_id="t1", reverse=True)) == sorted(order, reverse=True)


def test_read_events_filters(store, journal):
    assert seqs(store.read_events(trial_id="t1")) == journal
    stats = store.read_events(trial_id="t1", kinds=["statistic"])
    assert [e.data["epoch"] for e in stats] == [1, 2, 3, 4, 5, 6, 7]
    assert {e.kind for e in stats} == {"statistic"}
    both = store.read_events(trial_id="t1", kinds=["status", "statistic"])
    assert {e.kind for e in both} == {"status", "statistic"}
    assert len(both) == 4 + 7
    assert store.read_events(trial_id="t1", kinds=["artifact"]) == []
    assert store.read_events(trial_id="t1", kinds=[]) == []
    assert seqs(store.read_events(trial_id="t1", after=EXEC1 + 10)) == [
        EXEC1 + 11,
        EXEC1 + 12,
        EXEC1 + 20,
        EXEC2,
        EXEC2 + 1,
    ]
    assert seqs(store.read_events(trial_id="t1", upto=EXEC1 + 1)) == [0, EXEC1, EXEC1 + 1]
    assert seqs(store.read_events(trial_id="t1", after=EXEC1, upto=EXEC1 + 3)) == [
        EXEC1 + 1,
        EXEC1 + 2,
        EXEC1 + 3,
    ]
    assert seqs(store.read_events(trial_id="t1", after=-1, upto=0)) == [0]
    assert store.read_events(trial_id="other") == []


def test_read_events_limit_and_reverse(store, journal):
    assert seqs(store.read_events(trial_id="t1", limit=3)) == journal[:3]
    assert seqs(store.read_events(trial_id="t1", limit=3, reverse=True)) == journal[::-1][:3]
    last_stats = store.read_events(trial_id="t1", kinds=["statistic"], limit=2, reverse=True)
    assert [e.data["epoch"] for e in last_stats] == [7, 6]
    upto = store.read_events(
        trial_id="t1", kinds=["statistic"], upto=EXEC1 + 20, limit=2, reverse=True
    )
    assert [e.data["epoch"] for e in upto] == [6, 5]
    assert store.read_events(trial_id="t1", limit=0) == []


def test_count_events(store, journal):
    assert store.count_events(trial_id="t1", kind="statistic") == 7
    assert store.count_events(trial_id="t1", kind="status") == 4
    assert store.count_events(trial_id="t1", kind="statistic", upto=EXEC1 + 5) == 3
    assert store.count_events(trial_id="t1", kind="artifact") == 0
    assert store.count_events(trial_id="other", kind="status") == 0


def test_last_seq_and_last_status(store, journal):
    assert store.last_seq(trial_id="t1") == EXEC2 + 1
    assert store.last_status(trial_id="t1").data == {"status": "running"}
    assert store.last_status(trial_id="t1").seq == EXEC2
    store.create_trial(doc=make_doc("empty"))
    assert store.last_seq(trial_id="empty") is None
    assert store.last_status(trial_id="empty") is None
    assert store.last_seq(trial_id="missing") is None


def test_sequence_numbers_hold_64_bits(store):
    store.create_trial(doc=make_doc("t1"))
    big = first_seq(2**31 - 1) + 2**32 - 1
    store.append_events(trial_id="t1", events=[ev(big)])
    assert store.last_seq(trial_id="t1") == big
    assert seqs(store.read_events(trial_id="t1", after=big - 1)) == [big]


# -- lineage --------------------------------------------------------------------------------


@pytest.fixture
def family(store):
    """parent P (epochs 1-10), child C cut at P's epoch 4, grandchild G cut at C's epoch 6."""
    store.create_trial(doc=make_doc("p0", 1.0))
    store.append_events(
        trial_id="p0",
        events=[ev(0, "status", status="new")]
        + [ev(EXEC1 + i, epoch=i, who="p") for i in range(1, 11)],
    )
    store.create_trial(doc=make_doc("c0", 2.0, parent={"id": "p0", "cut": EXEC1 + 4}))
    store.append_events(
        trial_id="c0",
        events=[ev(0, "status", status="new")]
        + [ev(EXEC1 + i, epoch=i, who="c") for i in range(5, 9)],
    )
    store.create_trial(doc=make_doc("g0", 3.0, parent={"id": "c0", "cut": EXEC1 + 6}))
    store.append_events(
        trial_id="g0",
        events=[ev(0, "status", status="new")]
        + [ev(EXEC1 + i, epoch=i, who="g") for i in range(7, 10)],
    )


def test_lineage_from_oldest_with_cuts(store, family):
    chain = store.lineage(trial_id="g0")
    assert [(doc["id"], upto) for doc, upto in chain] == [
        ("p0", EXEC1 + 4),
        ("c0", EXEC1 + 6),
        ("g0", None),
    ]
    assert [(d["id"], u) for d, u in store.lineage(trial_id="p0")] == [("p0", None)]
    assert store.lineage(trial_id="missing") == []


#: The statistics of g0's lineage (the family fixture): (who logged it, epoch), in order.
G0_STATISTICS = (
    [("p", e) for e in range(1, 5)] + [("c", 5), ("c", 6)] + [("g", 7), ("g", 8), ("g", 9)]
)


@pytest.mark.parametrize("batch", [1, 2, 5000])
def test_iter_lineage_events(store, family, batch):
    stats = list(store.iter_lineage_events(trial_id="g0", kinds=["statistic"], batch=batch))
    assert [(e.data["who"], e.data["epoch"]) for e in stats] == G0_STATISTICS
    everything = list(store.iter_lineage_events(trial_id="c0", batch=batch))
    assert [(e.trial_id, e.kind) for e in everything][:2] == [("p0", "status"), ("p0", "statistic")]
    assert [e.trial_id for e in everything].count("p0") == 5
    assert [e.trial_id for e in everything].count("c0") == 5


@pytest.mark.parametrize("batch", [1, 2, 3, 5000])
def test_iter_lineage_joined_gives_the_raw_texts(store, family, batch):
    from kleio.storage.base import JoinedTexts

    def texts(batches):
        out = []
        for b in batches:
            items = b.texts() if type(b) is JoinedTexts else b
            assert 0 < len(items) <= batch
            out.extend(i if isinstance(i, dict) else json_loads(i) for i in items)
        return out

    for trial in ("g0", "c0", "p0", "missing"):
        joined = texts(store.iter_lineage_joined(trial_id=trial, kind="statistic", batch=batch))
        raw = texts(store.iter_lineage_raw(trial_id=trial, kind="statistic", batch=batch))
        assert joined == raw
    assert joined == []  # (the missing trial)
    got = texts(store.iter_lineage_joined(trial_id="g0", kind="statistic", batch=batch))
    assert [(s["who"], s["epoch"]) for s in got] == G0_STATISTICS
    statuses = texts(store.iter_lineage_joined(trial_id="g0", kind="status", batch=batch))
    assert statuses == [{"status": "new"}] * 3


def test_with_branches_names_the_trials_that_have_one(store, family):
    assert store.with_branches(trial_ids=["p0", "c0", "g0", "missing"]) == {"p0", "c0"}
    assert store.with_branches(trial_ids=[]) == set()
    many = [f"x{i}" for i in range(1200)] + ["c0"]  # more than one chunk of ids
    assert store.with_branches(trial_ids=many) == {"c0"}


def test_tail_lineage_events(store, family):
    tail = store.tail_lineage_events(trial_id="g0", kinds=["statistic"], count=4)
    assert [(e.data["who"], e.data["epoch"]) for e in tail] == [
        ("c", 6),
        ("g", 7),
        ("g", 8),
        ("g", 9),
    ]
    tail = store.tail_lineage_events(trial_id="g0", kinds=["statistic"], count=6)
    assert [e.data["epoch"] for e in tail] == [4, 5, 6, 7, 8, 9]
    tail = store.tail_lineage_events(trial_id="g0", kinds=["statistic"], count=100)
    assert [e.data["epoch"] for e in tail] == list(range(1, 10))
    assert store.tail_lineage_events(trial_id="g0", kinds=["statistic"], count=0) == []


def test_a_branch_shares_nothing_with_its_parent(store, family):
    # Appending to the parent after the cut never shows up in the child's lineage.
    store.append_events(trial_id="p0", events=[ev(EXEC2, epoch=99, who="p")])
    stats = list(store.iter_lineage_events(trial_id="c0", kinds=["statistic"]))
    assert 99 not in [e.data["epoch"] for e in stats]
    assert store.last_status(trial_id="c0").trial_id == "c0"


# -- blobs ----------------------------------------------------------------------------------


class StreamOnly(io.BytesIO):
    """A file that refuses to be read whole: proves that put_blob streams."""

    def read(self, size=-1):
        assert size is not None and size >= 0, "put_blob must read in bounded chunks"
        return super().read(size)


def test_put_blob_is_content_addressed_and_stored_once(store):
    content = b"weights \x00\xff" * 1000
    digest = hashlib.sha256(content).hexdigest()
    assert store.has_blob(sha256=digest) is False
    assert store.put_blob(fileobj=io.BytesIO(content)) == (digest, len(content))
    assert store.put_blob(fileobj=io.BytesIO(content)) == (digest, len(content))
    assert store.has_blob(sha256=digest) is True
    with store.open_blob(sha256=digest) as blob:
        assert blob.read() == content


def test_empty_blob(store):
    digest = hashlib.sha256(b"").hexdigest()
    assert store.put_blob(fileobj=io.BytesIO(b"")) == (digest, 0)
    with store.open_blob(sha256=digest) as blob:
        assert blob.read() == b""


def test_open_unknown_blob_raises_key_error(store):
    with pytest.raises(KeyError):
        store.open_blob(sha256=hashlib.sha256(b"never stored").hexdigest())
    with pytest.raises(KeyError):
        store.open_blob(sha256="../../etc/passwd")
    assert store.has_blob(sha256="0" * 64) is False


def test_large_blob_is_streamed(store):
    content = bytes(range(256)) * (5 * 1024 * 1024 // 256) + b"tail"
    digest, size = store.put_blob(fileobj=StreamOnly(content))
    assert (digest, size) == (hashlib.sha256(content).hexdigest(), len(content))
    with store.open_blob(sha256=digest) as blob:
        chunks = iter(lambda: blob.read(1 << 20), b"")
        assert hashlib.sha256(b"".join(chunks)).hexdigest() == digest


# -- lifecycle ------------------------------------------------------------------------------


def test_store_is_a_context_manager_and_close_is_idempotent(store):
    with store as same:
        assert same is store
    store.close()  # the fixture closes it once more


def test_damaged_event_data_never_makes_a_trial_unreadable(store):
    store.create_trial(
        doc={
            "schema_version": 1,
            "id": "dmg",
            "created_at": 1.0,
            "command": ["x"],
            "status": "new",
            "tags": [],
            "parent": None,
        }
    )
    store.append_events(
        trial_id="dmg",
        events=[
            (1, "statistic", 1.0, '{"loss": 0.5}'),
            (2, "statistic", 1.0, '{"loss": 0.'),  # a torn line
            (3, "statistic", 1.0, "[1, 2]"),
            (4, "status", 1.0, '{"status": "completed"}'),
        ],
    )
    events = store.read_events(trial_id="dmg")
    assert [e.data for e in events] == [
        {"loss": 0.5},
        {"invalid_data": '{"loss": 0.'},
        {"invalid_data": "[1, 2]"},
        {"status": "completed"},
    ]
    assert store.last_status(trial_id="dmg").data["status"] == "completed"


def test_delete_trial_removes_its_document_and_own_events_only(store):
    store.create_trial(doc=make_doc("a" * 64))
    store.create_trial(doc=make_doc("b" * 64, parent={"id": "a" * 64, "cut": 1}))
    store.append_events(
        trial_id="a" * 64, events=[(i, "statistic", 1.0, encode({"i": i})) for i in range(3)]
    )
    store.append_events(trial_id="b" * 64, events=[(0, "statistic", 1.0, encode({"i": 9}))])
    assert store.delete_trial(trial_id="a" * 64) == 3
    assert store.get_trial(trial_id="a" * 64) is None
    assert store.read_events(trial_id="a" * 64) == []
    assert [e.data for e in store.read_events(trial_id="b" * 64)] == [{"i": 9}]
    assert store.delete_trial(trial_id="a" * 64) == 0
    assert store.delete_trial(trial_id="\udcff") == 0


def test_delete_blob_returns_the_bytes_freed(store):
    digest, size = store.put_blob(fileobj=io.BytesIO(b"x" * 1000))
    assert store.delete_blob(sha256=digest) == 1000 == size
    assert not store.has_blob(sha256=digest)
    assert store.delete_blob(sha256=digest) == 0
    assert store.delete_blob(sha256="not a digest") == 0
    assert store.put_blob(fileobj=io.BytesIO(b"x" * 1000)) == (digest, 1000)  # stored again


# -- arguments checked by Store, whatever the backend ---------------------------------------


def test_arguments_are_checked_before_any_backend_sees_them(store):
    store.create_trial(doc=make_doc("chk1"))
    store.append_events(trial_id="chk1", events=[ev(1), ev(2)])
    for limit in (0, -1):
        assert store.find_trials(limit=limit) == []
        assert store.read_events(trial_id="chk1", limit=limit) == []
    assert store.append_events(trial_id="chk1", events=[]) == 0
    for text in ("\udcff", "chk\ud800"):  # undecodable argv bytes: no stored id holds one
        assert store.get_trial(trial_id=text) is None
        assert store.find_trials(id_prefix=text) == []
        assert store.find_trials(tags=[text]) == []
    with pytest.raises(ValueError, match="cannot sort trials by 'size'"):
        store.find_trials(sort="size")
    with pytest.raises(ValueError, match="only .* can change"):
        store.update_trial(trial_id="chk1", fields={"command": ["rm"]})
    with pytest.raises(ValueError, match="only .* can change"):
        store.try_append(trial_id="chk1", event=ev(3), fields={"id": "other"})
    assert store.last_seq(trial_id="chk1") == 2  # the refused append wrote nothing
    assert store.has_blob(sha256="ABC") is False
    with pytest.raises(KeyError):
        store.open_blob(sha256="A" * 64)  # digests are lowercase hex
