"""``Store.find_artifact``: the one artifact lookup (``load_artifact``, ``kleio pdb``, the
read API), over every backend and a branch's lineage."""

from __future__ import annotations

from kleio.storage.base import artifact_matches, first_seq
from tests.storage.test_contract import ev, make_doc

EXEC1 = first_seq(1)


def artifact(seq, filename, sha, **metadata):
    return ev(seq, "artifact", filename=filename, sha256=sha, size=1, metadata=metadata)


def test_the_newest_matching_artifact_of_the_lineage_is_found(store):
    store.create_trial(doc=make_doc("parent"))
    store.append_events(
        trial_id="parent",
        events=[
            artifact(EXEC1, "model.pt", "a" * 64, epoch=1),
            artifact(EXEC1 + 1, "model.pt", "b" * 64, epoch=2),
            artifact(EXEC1 + 2, "model.pt", "c" * 64, epoch=3),  # after the cut: not inherited
        ],
    )
    store.create_trial(doc=make_doc("child", parent={"id": "parent", "cut": EXEC1 + 1}))
    store.append_events(trial_id="child", events=[artifact(EXEC1, "log.txt", "d" * 64)])

    def sha(**query):
        found = store.find_artifact(trial_id="child", **query)
        return None if found is None else found.data["sha256"][0]

    assert sha(filename="model.pt") == "b"
    assert sha(filename="model.pt", metadata={"epoch": 1}) == "a"
    assert sha(filename="model.pt", metadata={"epoch": 3}) is None
    assert sha() == "d"  # any name: the child's own artifact is the newest
    assert sha(filename="missing") is None
    assert store.find_artifact(trial_id="parent", filename="model.pt").data["sha256"][0] == "c"
    assert store.find_artifact(trial_id="nobody") is None


def test_the_search_pages_through_many_artifacts(store):
    store.create_trial(doc=make_doc("t1"))
    store.append_events(
        trial_id="t1", events=[artifact(EXEC1 + i, "a.bin", f"{i:064x}", step=i) for i in range(25)]
    )
    found = store.find_artifact(trial_id="t1", filename="a.bin", metadata={"step": 2}, batch=4)
    assert found is not None and found.seq == EXEC1 + 2


def test_a_missing_metadata_key_never_matches_even_none():
    data = {"filename": "m", "metadata": {"epoch": 1}}
    assert artifact_matches(data, "m", {"epoch": 1})
    assert not artifact_matches(data, "m", {"tag": None})
    assert not artifact_matches(data, "other", {})
    assert artifact_matches({"filename": "m"}, None, {})
