"""The read API: trials, lineage-aware metrics, timing over executions, groups, frames."""

from __future__ import annotations

import datetime
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


@pytest.fixture(params=["sqlite", "mongodb"])
def three(request, tmp_path, monkeypatch):
    """A journal (SQLite, or a fresh database on the live server) of three trial documents,
    created at 2020-01-01, 2021-01-01 and 2022-01-01 (UTC), tagged and with an option."""
    if request.param == "sqlite":
        uri = f"sqlite://{tmp_path / 'j.db'}"
    else:
        uri = request.getfixturevalue("mongodb_db_uri")
    monkeypatch.setenv("KLEIO_DB", uri)
    with open_store(uri) as store:
        for digit, year in (("a", 2020), ("b", 2021), ("c", 2022)):
            created = float(datetime.datetime(year, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
            store.create_trial(
                doc=_doc(digit * 64, created_at=created, tags=[f"t{year}"], config={"lr": "0.1"})
            )
    return uri


def test_conditions_refuse_a_value_starting_with_an_operator():
    for bad in ("lr<<0.1", "lr=>0.1", "lr<=<1", "lr!=!x", "lr===1"):
        with pytest.raises(UsageError, match="starts with an operator character"):
            ka.Condition(bad)


def test_conditions_on_times_take_an_iso_date():
    assert ka.Condition("created>2020-01-01T00:00:00+00:00").number == 1577836800.0
    assert ka.Condition("ended<=1577836800").number == 1577836800.0
    with pytest.raises(UsageError, match="'yesterday' is not a time"):
        ka.Condition("started>yesterday")


def test_id_conditions_shorter_than_an_id_are_prefixes():
    full = "cc30c14" + "0" * 57
    assert ka.Condition("id=CC30C14").matches(full)
    assert not ka.Condition("id!=cc30c14").matches(full)
    assert ka.Condition("id!=dd").matches(full)
    assert ka.Condition(f"id={full}").matches(full) and not ka.Condition(f"id={full}").prefix


def test_where_since_and_ids_on_both_backends(three):
    years = {"a": 2020, "b": 2021, "c": 2022}

    def listed(**filters):
        return sorted(years[t.id[0]] for t in ka.trials(db=three, **filters))

    assert listed(where=["created>2020-06-01T00:00:00+00:00"]) == [2021, 2022]
    assert listed(where="created<2021-06-01T00:00:00+00:00") == [2020, 2021]  # one string
    assert listed(where=["id=bbbbbbb"]) == [2021]  # the short id ls shows
    assert listed(where=["id!=bbbb"]) == [2020, 2022]
    assert listed(since="1609459200") == [2021, 2022]  # epoch seconds, as text
    assert listed(since=1609459200) == [2021, 2022]
    assert listed(ids="cc") == [2022] and listed(ids=["aa", "cc"]) == [2020, 2022]
    assert listed(tags="t2021") == [2021]
    assert listed(status="new") == [2020, 2021, 2022]
    with pytest.raises(UsageError, match="starts with an operator"):
        ka.trials(db=three, where="lr<<0.1")


def test_the_api_refuses_what_the_cli_refuses(three):
    with pytest.raises(UsageError, match="cannot sort by 'bogus': no listed trial has"):
        ka.trials(db=three, sort="bogus")
    assert len(ka.trials(db=three, sort="-lr")) == 3  # an option some trial has
    with pytest.raises(UsageError, match="limit must be 0 or more, not -1"):
        ka.trials(db=three, limit=-1)
    with pytest.raises(UsageError, match="limit is not a whole number"):
        ka.trials(db=three, limit="3")
    assert ka.trials(db=three, limit=0) == []
    with pytest.raises(TypeError, match="tags takes a string or a list of strings, not int"):
        ka.trials(db=three, tags=3)
    with pytest.raises(TypeError, match=r"trial\(\) takes an id or id prefix"):
        ka.trial(None, db=three)
    with ka.open_journal(three) as journal, pytest.raises(TypeError, match="not NoneType"):
        journal.trial(None)


def test_a_name_holding_an_operator_or_a_comma_is_written_in_double_quotes():
    from kleio.api.conditions import split_names

    quoted = ka.Condition('"x<y" >= 0.5')
    assert (quoted.name, quoted.op, quoted.text) == ("x<y", ">=", "0.5")
    assert ka.Condition('"a,=b"=3').name == "a,=b"
    assert ka.parse_sort('-"x<y"') == ("x<y", True)
    assert split_names('lr, "a,b" ,"q""uote",,') == ["lr", "a,b", 'q"uote']
    assert split_names(",,,") == []


def test_a_number_and_text_do_not_order_and_a_comma_does_not_hide_a_condition():
    from kleio.api.conditions import Condition
    from kleio.errors import UsageError

    for spec in ("lr<abc", "lr<0.1x", "lr>=1e"):  # an option recorded as text "0.1" or 0.1
        assert not Condition(spec).matches("0.1") and not Condition(spec).matches(0.1), spec
    assert Condition("lr<0.2").matches("0.1") and not Condition("opt<0.1").matches("sgd")
    assert Condition("opt<t").matches("sgd")  # text against text: in text order
    with pytest.raises(UsageError, match="its own --where"):
        Condition("lr<1,seed=3")
    assert Condition("tags=a,b").text == "a,b"  # a comma alone is part of the value
