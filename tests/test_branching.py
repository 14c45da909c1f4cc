"""Unit tests of kleio.branching: overrides, cut points, and O(1) branches."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from kleio.branching import apply_overrides, make_branch, resolve_timestamp
from kleio.errors import UsageError
from kleio.launch import detect_changes
from kleio.storage import open_store
from kleio.storage.base import encode, first_seq
from kleio.trial import build_trial, store_trial


@pytest.mark.parametrize(
    "argv, overrides, expected",
    [
        (["python", "t.py", "--lr", "0.1"], ["--lr", "0.05"], ["python", "t.py", "--lr", "0.05"]),
        (["python", "t.py", "--lr=0.1"], ["--lr", "0.05"], ["python", "t.py", "--lr", "0.05"]),
        (["python", "t.py", "--lr", "0.1"], ["--lr=0.05"], ["python", "t.py", "--lr=0.05"]),
        (
            ["python", "t.py", "--lr", "0.1"],
            ["--epochs", "3"],
            ["python", "t.py", "--lr", "0.1", "--epochs", "3"],
        ),
        (
            ["python", "t.py", "data", "--fast", "--lr", "1"],
            ["--slow"],
            ["python", "t.py", "data", "--fast", "--lr", "1", "--slow"],
        ),
        (
            ["python", "t.py", "--fast", "--lr", "1"],
            ["--fast", "--lr", "-2"],
            ["python", "t.py", "--fast", "--lr", "-2"],
        ),
        (
            ["python", "-u", "t.py", "--tag", "a", "--tag", "b", "x"],
            ["--tag", "c"],
            ["python", "-u", "t.py", "--tag", "c", "x"],
        ),
        (
            ["python", "t.py", "--lr", "1", "--", "--raw"],
            ["--seed", "2"],
            ["python", "t.py", "--lr", "1", "--seed", "2", "--", "--raw"],
        ),
        (["./run.sh", "-n", "4"], ["-n", "8"], ["./run.sh", "-n", "8"]),
    ],
)
def test_apply_overrides(argv, overrides, expected):
    assert apply_overrides(argv, overrides) == expected


@pytest.mark.parametrize("overrides", [["data2"], ["--lr", "1", "extra", "x"], ["--", "x"]])
def test_positional_arguments_cannot_be_changed(overrides):
    with pytest.raises(UsageError, match="positional argument cannot be changed"):
        apply_overrides(["python", "t.py", "data", "--lr", "1"], overrides)


def test_detect_changes_lists_only_what_differs(git_repo):
    doc, _ = build_trial(["python", "train.py"], str(git_repo), None)
    assert detect_changes(doc, doc) == {}
    (git_repo / "train.py").write_text("print('changed')\n", encoding="utf-8")
    now, _ = build_trial(["python", "train.py"], str(git_repo), None)
    env = json.loads(json.dumps(doc["env"]))
    name = sorted(env["packages"])[0]  # a version changed: that refuses a resume
    env["packages"][name] = "0.0.1"
    changed = detect_changes(doc, {"code": now["code"], "env": env})
    assert set(changed) == {"code", "env"}
    assert any("train.py" in line for line in changed["code"])
    assert any(line.startswith(f"package {name}") for line in changed["env"])


def _trial(store, git_repo, *argv, stats=0):
    doc, blobs = build_trial(["python", "train.py", *argv], str(git_repo), None)
    store_trial(store, doc, blobs)
    seq = first_seq(1)
    t0 = doc["created_at"]
    store.append_events(
        trial_id=doc["id"], events=[(seq, "status", t0 + 1, encode({"status": "reserved"}))]
    )
    events = [
        (seq + 1 + i, "statistic", t0 + 2 + i, encode({"epoch": i + 1, "loss": 1 / (i + 1)}))
        for i in range(stats)
    ]
    for start in range(0, len(events), 20000):
        store.append_events(trial_id=doc["id"], events=events[start : start + 20000])
    return doc


def _rows(path):
    with sqlite3.connect(path) as conn:
        return {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("trials", "events")
        }


def test_branching_copies_nothing_and_takes_constant_time(git_repo, tmp_path):
    path = tmp_path / "k.db"
    store = open_store("sqlite://" + str(path))
    with store:
        small = _trial(store, git_repo, "--small", stats=10)
        big = _trial(store, git_repo, "--big", stats=100_000)
        timings = {}
        for name, parent in (("small", small), ("big", big)):
            current = build_trial(list(parent["argv"]), str(git_repo), None)
            before = _rows(path)
            start = time.perf_counter()
            child = make_branch(
                store,
                parent,
                cut=store.last_seq(trial_id=parent["id"]),
                reason="test",
                argv=parent["argv"],
                current=current,
            )
            timings[name] = time.perf_counter() - start
            after = _rows(path)
            # One trial document and its `new` status event, whatever the parent's size.
            assert after == {"trials": before["trials"] + 1, "events": before["events"] + 1}
            assert child["parent"] == {
                "id": parent["id"],
                "cut": store.last_seq(trial_id=parent["id"]),
            }
        assert timings["big"] < 0.2, timings
        assert timings["big"] < 10 * timings["small"] + 0.02, timings
        # The branch reads its parent's 100,000 statistics through the lineage.
        [child] = store.find_trials(parent_id=big["id"])
        stats = store.iter_lineage_events(trial_id=child["id"], kinds=("statistic",))
        assert sum(1 for _ in stats) == 100_000


def test_branch_ids_are_deterministic(git_repo, tmp_path):
    with open_store("sqlite://" + str(tmp_path / "k.db")) as store:
        parent = _trial(store, git_repo, "--lr", "1", stats=3)
        one = make_branch(store, parent, cut=5, argv_overrides=["--lr", "2"], reason="r")
        two = make_branch(store, parent, cut=5, argv_overrides=["--lr=2"], reason="r")
        other_cut = make_branch(store, parent, cut=4, argv_overrides=["--lr", "2"], reason="r")
        assert one["argv"] == ["python", "train.py", "--lr", "2"]
        # --lr=2 and --lr 2 are one experiment (kleio.argv.identity_form): the same branch.
        assert two["id"] == one["id"] and two["argv"] == one["argv"]
        again = make_branch(store, parent, cut=5, argv_overrides=["--lr", "2"], reason="r")
        assert again["id"] == one["id"] and again["created_at"] == one["created_at"]
        assert len({one["id"], other_cut["id"], parent["id"]}) == 3


def test_resolve_timestamp(git_repo, tmp_path):
    with open_store("sqlite://" + str(tmp_path / "k.db")) as store:
        parent = _trial(store, git_repo, stats=10)
        seq = first_seq(1)
        # epoch 3 is statistic seq+3; the cut runs until just before epoch 4's statistic.
        doc, cut = resolve_timestamp(store, parent, "epoch=3")
        assert doc["id"] == parent["id"] and cut == seq + 3
        assert resolve_timestamp(store, parent, "epoch=3.0")[1] == seq + 3
        assert resolve_timestamp(store, parent, "epoch=10")[1] == store.last_seq(
            trial_id=parent["id"]
        )
        with pytest.raises(UsageError, match=r"nearest values: 10, 9, 8"):
            resolve_timestamp(store, parent, "epoch=12")
        with pytest.raises(UsageError, match=r"has the key 'step' \(keys logged: epoch, loss"):
            resolve_timestamp(store, parent, "step=1")
        with pytest.raises(UsageError, match="neither KEY=VALUE nor an ISO time"):
            resolve_timestamp(store, parent, "yesterday")
        # An ISO time: statistic i was logged at 2 + i seconds after the trial's creation.
        from datetime import datetime

        moment = datetime.fromtimestamp(parent["created_at"] + 4.5).isoformat()
        doc, cut = resolve_timestamp(store, parent, moment)
        assert cut == seq + 3
        # A cut in the inherited part of a branch's lineage is a cut of the ancestor.
        child = make_branch(store, parent, cut=seq + 6, reason="r")
        doc, cut = resolve_timestamp(store, child, "epoch=2")
        assert doc["id"] == parent["id"] and cut == seq + 2
        with pytest.raises(UsageError, match="nearest values: 6, 5"):
            resolve_timestamp(store, child, "epoch=9")


@pytest.mark.parametrize("kept_runs", [True, False])
def test_a_checkpoint_right_after_the_matched_statistic_is_inherited(
    tmp_path, monkeypatch, kept_runs
):
    seq = first_seq(1)
    with open_store("sqlite://" + str(tmp_path / "k.db")) as store:
        store.create_trial(doc={"id": "t" * 64, "created_at": 1.0, "status": "completed"})
        saved = {"filename": "ckpt", "sha256": "0" * 64, "size": 1}
        events = [
            (seq, "statistic", 1.0, encode({"epoch": 3, "loss": 0.5})),
            (seq + 1, "statistic", 1.0, encode({"step": 3, "val_loss": 0.4})),  # checkpoint()
            (seq + 2, "stdout", 1.0, encode({"line": "saving\n"})),
            (seq + 3, "artifact", 1.0, encode({**saved, "metadata": {"step": 3}})),
            (seq + 4, "stdout", 1.0, encode({"line": "saved\n"})),
            (seq + 5, "statistic", 1.0, encode({"epoch": 4, "loss": 0.3})),
            (seq + 6, "statistic", 1.0, encode({"step": 4, "val_loss": 0.3})),  # no file
            (seq + 7, "statistic", 1.0, encode({"epoch": 5, "loss": 0.2})),
            (seq + 8, "statistic", 1.0, encode({"step": 5, "loss": 0.2})),
            (seq + 9, "artifact", 1.0, encode({**saved, "metadata": {"step": 6}})),  # not its
            (seq + 10, "statistic", 1.0, encode({"epoch": 6, "loss": 0.1})),
            (seq + 11, "statistic", 1.0, encode({"step": 6, "val_loss": 0.1})),  # the model's
            (seq + 12, "artifact", 1.0, encode({**saved, "metadata": {"step": 6}})),
            (seq + 13, "statistic", 1.0, encode({"step": 6, "lr": 0.1})),  # the optimizer's
            (seq + 14, "artifact", 1.0, encode({**saved, "metadata": {"step": 6}})),
            (seq + 15, "statistic", 1.0, encode({"epoch": 7, "loss": 0.1})),
        ]
        store.append_events(trial_id="t" * 64, events=events)
        if not kept_runs:  # the scan of the statistics, as for a trial without runs
            monkeypatch.setattr(store, "step_runs", lambda **_: None)
        trial = store.get_trial(trial_id="t" * 64)
        assert resolve_timestamp(store, trial, "epoch=3")[1] == seq + 4  # the file inherited
        assert resolve_timestamp(store, trial, "epoch=4")[1] == seq + 5  # a statistic alone
        assert resolve_timestamp(store, trial, "epoch=5")[1] == seq + 7  # another's file
        assert resolve_timestamp(store, trial, "step=3")[1] == seq + 4
        assert resolve_timestamp(store, trial, "epoch=6")[1] == seq + 14  # both checkpoints
