"""The batched reads (kleio.storage.batched) give what the one-trial reads give, on every
backend: documents, lineages, events of some kinds, and summaries up to a cut."""

from __future__ import annotations

import pytest

from kleio.storage.base import first_seq
from tests.storage.test_contract import ev, make_doc

EXEC1 = first_seq(1)


@pytest.fixture
def family(store):
    """p (12 statistics) <- b (cut at the 5th) <- g (cut at b's 2nd); o, a trial apart."""
    store.create_trial(doc=make_doc("p"))
    store.append_events(
        trial_id="p",
        events=[
            ev(EXEC1, "status", status="running"),
            ev(EXEC1 + 1, "metrics", metrics={"loss": "min"}),
            *[ev(EXEC1 + 2 + i, epoch=i // 3, loss=(12 - i) / 4, acc=i / 8) for i in range(12)],
            ev(EXEC1 + 20, "metrics", primary="acc"),
            ev(EXEC1 + 21, "status", status="completed"),
        ],
    )
    store.create_trial(doc=make_doc("b", parent={"id": "p", "cut": EXEC1 + 6}))
    store.append_events(trial_id="b", events=[ev(1, epoch=9, loss=5.0), ev(2, epoch=10, loss=0.1)])
    store.create_trial(doc=make_doc("g", parent={"id": "b", "cut": 2}))
    store.create_trial(doc=make_doc("o"))
    return store


def test_get_trials_and_lineages(family):
    store = family
    assert sorted(store.get_trials(trial_ids=["p", "g", "nope", "\udcff", "p"])) == ["g", "p"]
    docs = [store.get_trial(trial_id=t) for t in ("g", "b", "o")]
    chains = store.lineages(docs=docs)
    for doc in docs:
        assert chains[doc["id"]] == store.lineage(trial_id=doc["id"])
    assert [(d["id"], upto) for d, upto in chains["g"]] == [("p", EXEC1 + 6), ("b", 2), ("g", None)]


def test_read_events_of(family):
    store = family
    found = store.read_events_of(trial_ids=["p", "b", "o"], kinds=("status", "metrics"))
    assert sorted(found) == ["p"]
    assert found["p"] == store.read_events(trial_id="p", kinds=("status", "metrics"))


def test_summaries_up_to_cuts_equal_the_one_trial_reads(family, monkeypatch):
    store = family
    cuts = [("p", EXEC1 + 6), ("p", EXEC1 + 3), ("b", 1), ("p", None), ("o", 5), ("nope", 1)]
    got = store.summarize_events_of(cuts=cuts)
    assert set(got) == set(cuts)  # as summarize_events, an unknown trial summarizes empty
    for trial_id, upto in cuts[:5]:
        assert got[(trial_id, upto)] == store.summarize_events(trial_id=trial_id, upto=upto)
    assert got[("p", EXEC1 + 6)]["entries"]["loss"]["count"] == 5
    assert got[("p", EXEC1 + 6)]["modes"] == {"loss": "min"}
    assert got[("p", None)]["primary"] == "acc"


def test_marks_are_used_for_many_cuts_at_once(store, monkeypatch):
    import kleio.storage.mongodb_summaries as mongodb_summaries
    import kleio.storage.sqlite as sqlite

    monkeypatch.setattr(sqlite, "MARK_EVERY", 4)
    monkeypatch.setattr(mongodb_summaries, "MARK_EVERY", 4)
    for trial_id in ("x", "y"):
        store.create_trial(doc=make_doc(trial_id))
        store.append_events(
            trial_id=trial_id, events=[ev(EXEC1 + i, step=i, loss=(i % 5) / 4) for i in range(19)]
        )
    cuts = [("x", EXEC1 + 9), ("y", EXEC1 + 17), ("x", EXEC1 + 2)]
    marks = store._summary_marks(cuts=cuts)
    if marks:  # a backend keeping marks: the latest at or before each cut
        assert {cut: seq - EXEC1 for cut, (seq, _) in marks.items()} == {
            ("x", EXEC1 + 9): 7,
            ("y", EXEC1 + 17): 15,
        }
    got = store.summarize_events_of(cuts=cuts)
    for trial_id, upto in cuts:
        assert got[(trial_id, upto)] == store.summarize_events(trial_id=trial_id, upto=upto)
        assert got[(trial_id, upto)]["entries"]["step"]["count"] == upto - EXEC1 + 1
