"""The read API: trials, lineage-aware metrics, timing over executions, groups, frames."""

from __future__ import annotations

import os

import pytest

import kleio.api as ka
from kleio.errors import AmbiguousId, TrialNotFound, UsageError
from kleio.storage import open_store
from kleio.storage.base import encode, first_seq
from tests.conftest import git, run_kleio, write

PROGRAM = """
    import sys
    from kleio.client.logger import kleio_logger as k
    lr = float(sys.argv[2])
    k.declare_metrics(loss="min", primary="loss")
    start = k.statistics()[-1]["epoch"] if k.statistics() else 0
    for epoch in range(start + 1, start + 4):
        k.log_statistic(epoch=epoch, loss=lr / epoch, acc=lr * epoch)
"""


def _doc(trial_id, **fields):
    return {
        "id": trial_id,
        "created_at": 1.0,
        "status": "new",
        "parent": None,
        "tags": [],
        "config": {},
        **fields,
    }


def test_trials_statistics_and_a_branch_continuing_its_parent(git_repo, db_uri):
    write(git_repo / "fit.py", PROGRAM)
    git(git_repo, "add", "fit.py")
    git(git_repo, "commit", "-q", "-m", "fit")
    assert run_kleio("-q", "python", "fit.py", "--lr", "0.5", cwd=git_repo).returncode == 0
    parent = ka.trials()[0]
    branched = run_kleio(
        "branch", parent.id[:8], "--timestamp", "epoch=2", "--lr", "0.1", cwd=git_repo
    )
    assert branched.returncode == 0, branched.stderr
    branch = ka.trials(where=["lr=0.1"])[0]
    assert branch.parent == parent.id and branch.options == {"lr": "0.1"}
    rows = ka.statistics(branch.id[:8], db=db_uri)
    # The parent's statistics up to the cut (epochs 1, 2), then the branch's own (3, 4, 5).
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    assert branch.metrics["loss"]["best"] == pytest.approx(0.1 / 5)
    assert branch.metrics["loss"]["count"] == 5 and branch.primary == "loss"
    assert branch.metrics["acc"]["mode"] == "max"  # by the name rule
    assert branch.started_at is not None and branch.duration >= 0
    assert ka.best(metric="loss").id == branch.id
    assert [t.id for t in ka.trials(sort="loss")] == [branch.id, parent.id]
    assert [t.id for t in ka.trials(sort="-loss")] == [parent.id, branch.id]
    assert ka.trials(where=["loss.last<0.1"])[0].id == branch.id
    assert ka.trials(ids=[parent.id[:10]])[0].id == parent.id
    assert ka.trial(branch.id[:8]).to_json()["parent"] == parent.id
    assert ka.trials(limit=1, sort="created")[0].id == parent.id
    with ka.open_journal(db_uri, metrics=["acc:min"]) as journal:
        assert journal.trial(parent.id).primary == "acc"  # the reader's declaration wins
        assert journal.trial(parent.id).metrics["acc"]["best"] == pytest.approx(0.5)
        assert journal.count() == 2
    with pytest.raises(TrialNotFound):
        ka.trial("ffffffff")


def test_the_api_never_creates_a_journal(tmp_path):
    path = tmp_path / "none.db"
    from kleio.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable, match="no journal"):
        ka.trials(db=f"sqlite://{path}")
    assert not path.exists()


def test_times_over_executions(tmp_path):
    with open_store(f"sqlite://{tmp_path / 'j.db'}") as store:
        doc = _doc("a" * 64, status="completed")
        store.create_trial(doc=doc)
        events = [
            (first_seq(1), "status", 100.0, encode({"status": "reserved"})),
            (first_seq(1) + 1, "status", 101.0, encode({"status": "running"})),
            (first_seq(1) + 2, "statistic", 130.0, encode({"x": 1})),  # then lost
            (first_seq(2), "status", 200.0, encode({"status": "failover"})),
            (first_seq(2) + 1, "status", 201.0, encode({"status": "reserved"})),
            (first_seq(2) + 2, "status", 202.0, encode({"status": "running"})),
            (first_seq(2) + 3, "status", 212.0, encode({"status": "completed"})),
        ]
        store.append_events(trial_id=doc["id"], events=events)
        assert ka.execution_times(store, doc, "completed") == (101.0, 29.0 + 10.0)
        lost = _doc("b" * 64, status="running", heartbeat_at=150.0)
        store.create_trial(doc=lost)
        store.append_events(
            trial_id=lost["id"],
            events=[(first_seq(1), "status", 101.0, encode({"status": "running"}))],
        )
        assert ka.execution_times(store, lost, "lost") == (101.0, 49.0)
        assert ka.execution_times(store, lost, "running", now=111.0) == (101.0, 10.0)
        never = _doc("c" * 64)
        store.create_trial(doc=never)
        assert ka.execution_times(store, never, "new") == (None, None)


def test_conditions():
    assert ka.Condition("lr<0.1").matches("0.05")
    assert not ka.Condition("lr<0.1").matches("0.5")
    assert not ka.Condition("lr<0.1").matches(None)
    assert ka.Condition("status = completed").matches("completed")
    assert ka.Condition("lr==1").matches("1.0")
    assert ka.Condition("tag=a").matches(["b", "a"])
    assert ka.Condition("tag!=c").matches(["b", "a"])
    assert not ka.Condition("tag!=a").matches(["b", "a"])
    assert ka.Condition("name>=b").matches("c")
    assert ka.Condition("flag=true").matches(True)
    assert not ka.Condition("acc>0.5").matches(float("nan"))
    for bad in ("lr", "<0.1", "lr<", "=x", ""):
        with pytest.raises(UsageError, match="cannot read the condition"):
            ka.Condition(bad)


def test_since():
    assert ka.parse_since("2d", now=1_000_000.0) == 1_000_000.0 - 2 * 86400
    assert ka.parse_since("90m", now=10_000.0) == 10_000.0 - 5400
    assert ka.parse_since(12.5) == 12.5
    assert ka.parse_since("2024-05-01T00:00:00+00:00") == 1714521600.0
    with pytest.raises(UsageError, match="--since"):
        ka.parse_since("yesterday")


class FakeTrial:
    def __init__(self, options, best, project="p", positionals=()):
        self.options, self.project, self.positionals = options, project, list(positionals)
        self.id = self.short_id = repr(options)
        self.metrics = {"acc": {"mode": "max", "best": best, "last": best / 2}}


def test_groups_differ_only_by_the_excepted_options():
    trials = [
        FakeTrial({"lr": "0.1", "seed": "1"}, 0.8),
        FakeTrial({"lr": "0.1", "seed": "2"}, 0.6),
        FakeTrial({"lr": "0.2", "seed": "1"}, 0.9),
        FakeTrial({"lr": "0.1", "seed": "3"}, 0.7, project="other"),
    ]
    found = ka.groups(trials)
    assert [g.n for g in found] == [2, 1, 1]
    first = found[0]
    assert first.options == {"lr": "0.1"}
    assert first.mean("acc") == pytest.approx(0.7)
    assert first.std("acc") == pytest.approx(0.1414, 1e-3)
    assert first.mean("acc", "last") == pytest.approx(0.35)
    assert found[1].std("acc") == 0.0 and found[1].mean("nope") is None
    assert first.to_json()["metrics"]["acc"]["best_mean"] == pytest.approx(0.7)
    assert len(ka.groups(trials, except_=("seed", "lr"))) == 2


def test_dataframes_need_pandas(git_repo, db_uri):
    assert run_kleio("-q", "python", "train.py", "--x", "1", cwd=git_repo).returncode == 0
    trials = ka.trials()
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"kleio\[pandas\]"):
            ka.to_dataframe(trials)
        return
    frame = ka.to_dataframe(trials)
    assert list(frame["id"]) == [trials[0].id] and frame["x"][0] == 1


def test_ambiguous_prefix(tmp_path, monkeypatch):
    uri = f"sqlite://{tmp_path / 'j.db'}"
    with open_store(uri) as store:
        for trial_id in ("ab" + "0" * 62, "ab" + "1" * 62):
            store.create_trial(doc=_doc(trial_id))
    with pytest.raises(AmbiguousId):
        ka.trial("ab", db=uri)
    assert os.path.exists(tmp_path / "j.db")
