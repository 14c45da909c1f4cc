"""End-to-end tests of choosing among trials: ls, best, diff of many, export, rm (both backends)."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time

import pytest

from kleio import errors
from kleio.storage import open_store
from tests.conftest import git, run_kleio, write

TRAIN = """
    import argparse
    from kleio.client.logger import kleio_logger as k

    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    k.declare_metrics(val_loss="min", val_acc="max", primary="val_acc")
    for epoch in range(1, 4):
        k.log_statistic(epoch=epoch, lr=a.lr, val_loss=1 / (1 + a.lr * epoch) + a.seed / 100,
                        val_acc=0.5 + a.lr * epoch - a.seed / 100)
    k.log_artifact("vocab.txt", b"the same for every trial")
    k.log_artifact("weights.bin", b"weights %r %r" % (a.lr, a.seed))
"""


class _Kept(io.BytesIO):
    """Output kept when the command closes its stream (as a process's would be)."""

    def close(self):
        pass


def run_here(*args, cwd=None, env=None, timeout=60, input=None):
    """Run the real entry point, :func:`kleio.cli.main`, in this process (no interpreter to
    start, no pymongo to import): stdout, stderr and the exit code as ``run_kleio`` gives."""
    import subprocess
    import sys

    from kleio.cli import main

    assert env is None and input is None
    out, err = _Kept(), _Kept()
    streams = sys.stdin, sys.stdout, sys.stderr
    here = os.getcwd()
    sys.stdin = io.TextIOWrapper(io.BytesIO())
    sys.stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
    try:
        os.chdir(cwd or here)
        try:
            code = main(list(args))
        except SystemExit as exit:  # argparse's errors
            code = exit.code if isinstance(exit.code, int) else 2
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os.chdir(here)
        sys.stdin, sys.stdout, sys.stderr = streams
    return subprocess.CompletedProcess(
        ["kleio", *args], code, out.getvalue().decode(), err.getvalue().decode()
    )


#: How the tests run reading commands: the real entry point in a process of its own
#: (SQLite), or in this process (MongoDB, where starting one costs the most).
RUN = run_kleio


@pytest.fixture(params=["sqlite", "mongodb"])
def journal(request, git_repo, tmp_path, monkeypatch):
    """A journal (SQLite, or a fresh database on the live MongoDB server) in KLEIO_DB.

    On MongoDB, programs run against an SQLite journal copied over through the store
    (:func:`copy_journal`) and reading commands run in-process: the run path on MongoDB is
    tested in tests/mongodb, what these tests prove is how the reading commands answer.
    """
    if request.param == "sqlite":
        uri = "sqlite://" + str(tmp_path / "journal" / "kleio.db")
    else:
        uri = request.getfixturevalue("mongodb_db_uri")
        monkeypatch.setattr(sys.modules[__name__], "RUN", run_here)
        monkeypatch.setattr(
            sys.modules[__name__], "SIDE", "sqlite://" + str(tmp_path / "side" / "kleio.db")
        )
    monkeypatch.setenv("KLEIO_DB", uri)
    write(git_repo / "train.py", TRAIN)
    git(git_repo, "add", "train.py")
    git(git_repo, "commit", "-q", "-m", "train")
    return uri


#: Where programs run when the journal is on MongoDB (see ``journal``).
SIDE = None


def run_program(*args, cwd):
    """Run a program under kleio (a real process); copied into the MongoDB journal."""
    if SIDE is None:
        return run_kleio(*args, cwd=cwd)
    done = run_kleio(*args, cwd=cwd, env={**os.environ, "KLEIO_DB": SIDE})
    copy_journal(SIDE, os.environ["KLEIO_DB"])
    return done


def copy_journal(source, target):
    """Copy every trial, event and blob of an SQLite journal into another store (new ones
    only: trials are created once, events and blobs skip what exists)."""
    from kleio.storage import sqlite_path
    from kleio.storage.base import encode

    blobs = sqlite_path(source) + ".blobs"
    with open_store(source) as src, open_store(target) as dst:
        for doc in src.find_trials(sort="created_at"):
            if not dst.create_trial(doc=doc):
                continue
            dst.update_trial(
                trial_id=doc["id"],
                fields={
                    k: v
                    for k, v in doc.items()
                    if k
                    in (
                        "status",
                        "status_at",
                        "heartbeat_at",
                        "runner",
                        "started_at",
                        "ended_at",
                        "exit_code",
                        "checks",
                    )
                },
            )
            events = src.read_events(trial_id=doc["id"])
            dst.append_events(
                trial_id=doc["id"], events=[(e.seq, e.kind, e.time, encode(e.data)) for e in events]
            )
        for folder, _, files in os.walk(blobs):
            for name in files:
                if not name.startswith(".") and not dst.has_blob(sha256=name):
                    with open(os.path.join(folder, name), "rb") as handle:
                        dst.put_blob(fileobj=handle)


def sweep(repo, settings=((0.1, 1), (0.1, 2), (0.3, 1), (0.3, 2))):
    ids = {}
    for lr, seed in settings:
        done = run_program(
            "-q", "python", "train.py", "--lr", str(lr), "--seed", str(seed), cwd=repo
        )
        assert done.returncode == 0, done.stderr
        ids[(lr, seed)] = _ids(repo)[0]
    return ids


def _ids(repo):
    listing = RUN("ls", "--json", cwd=repo)
    assert listing.returncode == 0, listing.stderr
    return [t["id"] for t in json.loads(listing.stdout)]


def ok(*args, cwd):
    result = RUN(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_rank_filter_group_compare_export(journal, git_repo):
    ids = sweep(git_repo)
    best_id = ids[(0.3, 1)]
    listed = json.loads(ok("ls", "--json", cwd=git_repo))
    first = listed[0]
    for key in ("id", "status", "command", "options", "tags", "metrics", "started_at", "duration"):
        assert key in first
    assert first["options"] == {"lr": "0.3", "seed": "2"}
    assert first["metrics"]["val_acc"]["mode"] == "max"
    assert first["metrics"]["val_loss"]["mode"] == "min"
    assert "lr" not in first["metrics"] and "epoch" not in first["metrics"]
    assert first["metrics"]["val_acc"]["best"] == pytest.approx(0.5 + 0.9 - 0.02)
    assert first["primary_metric"] == "val_acc"
    # Ranked by the primary metric's best; the default column is that metric.
    table = ok("ls", "--sort", "-val_acc", cwd=git_repo)
    assert table.splitlines()[0].split()[:5] == ["ID", "STATUS", "STARTED", "DURATION", "VAL_ACC"]
    assert table.splitlines()[1].startswith(best_id[:7])
    ranked = json.loads(ok("ls", "--sort", "val_loss", "--json", cwd=git_repo))
    assert ranked[0]["id"] == best_id
    # Filters combine with AND; a column per option and metric.
    shown = ok(
        "ls",
        "--where",
        "lr<0.2",
        "--where",
        "status=completed",
        "--columns",
        "lr,seed,val_loss.last",
        cwd=git_repo,
    )
    assert "LR" in shown and "VAL_LOSS.LAST" in shown and len(shown.splitlines()) == 3
    assert json.loads(ok("ls", "--tag", "nope", "--json", cwd=git_repo)) == []
    assert (
        len(
            json.loads(
                ok("ls", "--since", "1h", "--project", "team/project", "--json", cwd=git_repo)
            )
        )
        == 4
    )
    limited = ok("ls", "--limit", "1", cwd=git_repo)
    assert "more trials match" in limited and "--all" in limited
    # best, for scripts
    assert ok("best", cwd=git_repo).strip() == best_id[:7]
    assert ok("best", "--metric", "val_loss", cwd=git_repo).strip() == best_id[:7]
    assert ok("best", "--metric", "epoch:min", cwd=git_repo).strip() in {
        i[:7] for i in ids.values()
    }
    assert (
        json.loads(ok("best", "--json", "--where", "lr=0.1", cwd=git_repo))["id"] == ids[(0.1, 1)]
    )
    # groups: seeds averaged
    grouped = json.loads(ok("ls", "--group-by-except", "seed", "--json", cwd=git_repo))
    assert sorted(g["n"] for g in grouped) == [2, 2]
    high = next(g for g in grouped if g["options"] == {"lr": "0.3"})
    assert high["metrics"]["val_acc"]["best_mean"] == pytest.approx(0.5 + 0.9 - 0.015)
    assert high["metrics"]["val_acc"]["best_std"] == pytest.approx(0.00707, abs=1e-4)
    assert "±" in ok("ls", "--group-by-except", "seed", cwd=git_repo)
    # diff of many: side by side, best by mode
    many = json.loads(ok("diff", "--json", *[i[:8] for i in ids.values()], cwd=git_repo))
    acc = next(m for m in many["metrics"] if m["name"] == "val_acc")
    assert acc["best_trial"] == best_id and acc["mode"] == "max"
    assert {o["option"] for o in many["options"]} == {"lr", "seed"}
    assert "val_acc best (max)" in ok("compare", *[i[:8] for i in ids.values()], cwd=git_repo)
    two = json.loads(ok("diff", "--json", ids[(0.1, 1)][:8], best_id[:8], cwd=git_repo))
    better = {s["key"]: s["better"] for s in two["statistics"]}
    assert better["val_loss"] == "lower" and better["val_acc"] == "higher"
    assert better["lr"] is None and better["epoch"] is None  # not metrics
    # export
    rows = list(csv.DictReader(io.StringIO(ok("export", cwd=git_repo))))
    assert len(rows) == 4 and {"id", "lr", "seed", "val_acc.best", "val_loss.last"} <= set(rows[0])
    lines = ok(
        "export",
        "--format",
        "jsonl",
        "--statistics",
        "--where",
        "lr=0.1",
        "--where",
        "seed=1",
        cwd=git_repo,
    ).splitlines()
    assert [json.loads(line)["statistic"]["epoch"] for line in lines] == [1, 2, 3]
    assert (
        json.loads(ok("export", "--format", "jsonl", "--limit", "1", cwd=git_repo))["metrics"][
            "val_acc"
        ]["mode"]
        == "max"
    )
    out = git_repo / "trials.csv"
    ok("export", "--statistics", "-o", str(out), cwd=git_repo)
    assert out.stat().st_mode & 0o077 == 0
    assert len(out.read_text().splitlines()) == 1 + 4 * 3


def test_metric_declared_on_the_command_line_or_in_kleio_yaml(journal, git_repo):
    ids = sweep(git_repo, ((0.1, 1), (0.3, 1)))
    # --metric overrides the trial's own declaration and chooses the primary metric.
    assert ok("best", "--metric", "val_acc:min", cwd=git_repo).strip() == ids[(0.1, 1)][:7]
    listed = json.loads(ok("ls", "--metric", "lr:max", "--json", cwd=git_repo))
    assert listed[0]["primary_metric"] == "lr" and listed[0]["metrics"]["lr"]["mode"] == "max"
    write(git_repo / "kleio.yaml", "metrics:\n  epoch: max\n")
    listed = json.loads(ok("ls", "--json", cwd=git_repo))
    assert listed[0]["metrics"]["epoch"]["best"] == 3
    assert listed[0]["primary_metric"] == "val_acc"  # the trial's own still wins


BAD_INPUT = [
    (["ls", "--where", "lr<"], errors.EXIT_USAGE, "cannot read the condition"),
    (["ls", "--sort", "nope"], errors.EXIT_USAGE, "cannot sort by 'nope'"),
    (["ls", "--columns", "nope"], errors.EXIT_USAGE, "cannot show the column 'nope'"),
    (["ls", "--since", "soon"], errors.EXIT_USAGE, "cannot read --since"),
    (["ls", "--metric", "x:best"], errors.EXIT_USAGE, "unknown metric mode"),
    (["best", "--metric", "nope"], errors.EXIT_NOT_FOUND, "no trial has the metric 'nope'"),
    (["best", "--where", "lr>9"], errors.EXIT_NOT_FOUND, "no trial matches the filters"),
    (["diff", "ffff"], errors.EXIT_USAGE, "give two trial ids or more"),
    (["rm", "ffffffff", "--yes"], errors.EXIT_NOT_FOUND, "no trial matches"),
]


def test_bad_input_is_one_line_with_its_code(journal, git_repo):
    sweep(git_repo, ((0.1, 1),))
    for args, code, text in BAD_INPUT:
        result = RUN(*args, cwd=git_repo)
        assert result.returncode == code, (args, result.stderr)
        assert text in result.stderr and result.stderr.count("\n") == 1, args
        assert "Traceback" not in result.stderr


def test_rm_removes_trials_events_and_unshared_blobs(journal, git_repo):
    ids = sweep(git_repo, ((0.1, 1), (0.3, 1)))
    a, b = ids[(0.1, 1)], ids[(0.3, 1)]
    # A branch reads its parent's history: the parent alone is refused.
    branched = run_program("branch", a[:8], "--lr", "0.2", cwd=git_repo)
    assert branched.returncode == 0, branched.stderr
    branch = next(i for i in _ids(git_repo) if i not in (a, b))
    refused = RUN("rm", "--yes", a[:8], cwd=git_repo)
    assert refused.returncode == errors.EXIT_USAGE
    assert branch[:7] in refused.stderr and "--with-branches" in refused.stderr
    # Without a terminal and without --yes nothing is deleted.
    asked = RUN("rm", b[:8], cwd=git_repo)
    assert asked.returncode == errors.EXIT_NO_TTY and "--yes" in asked.stderr
    assert len(_ids(git_repo)) == 3
    # A trial held by a live runner (elsewhere, fresh heartbeat) is refused as busy.
    with open_store(journal) as store:
        store.update_trial(
            trial_id=b,
            fields={
                "status": "running",
                "heartbeat_at": time.time(),
                "runner": {"host": "elsewhere", "pid": 1},
            },
        )
    busy = RUN("rm", "--yes", b[:8], cwd=git_repo)
    assert busy.returncode == errors.EXIT_BUSY and "kleio stop" in busy.stderr
    with open_store(journal) as store:
        store.update_trial(trial_id=b, fields={"status": "completed", "runner": None})
        shared = _blob_digests(store, a) & _blob_digests(store, b)
        own = _blob_digests(store, a) - shared
        assert shared and own  # vocab.txt; a's weights
    done = json.loads(ok("rm", "--yes", "--with-branches", "--json", a[:8], cwd=git_repo))
    assert done["removed"] == [branch, a] and done["events"] > 0
    assert _ids(git_repo) == [b]
    with open_store(journal) as store:
        assert store.read_events(trial_id=a) == [] and store.get_trial(trial_id=branch) is None
        for digest in shared:  # still used by b
            assert store.has_blob(sha256=digest)
        for digest in own:
            assert not store.has_blob(sha256=digest)
    assert done["bytes_freed"] > 0 and done["blobs"] >= 1
    # What a dead runner left on this host must be journalled (kleio sync) first.
    leftover = os.path.join(
        os.environ["XDG_STATE_HOME"], "kleio", "spool", "ledger", f"{b}-1-999999999"
    )
    os.makedirs(leftover)
    pending = RUN("rm", "-y", b[:8], cwd=git_repo)
    assert pending.returncode == errors.EXIT_BUSY and "kleio sync" in pending.stderr
    os.rmdir(leftover)
    human = ok("rm", "-y", b[:8], cwd=git_repo)
    assert human.startswith(f"removed 1 trial ({b[:7]}") and "freed" in human
    assert _ids(git_repo) == []


def _blob_digests(store, trial_id):
    from kleio.cli.rm import blobs_of

    return {
        d for d in blobs_of(store, store.get_trial(trial_id=trial_id)) if store.has_blob(sha256=d)
    }


CHECKPOINT = """
    import os
    from kleio.client.logger import kleio_logger as k
    os.makedirs("ck", exist_ok=True)
    for step in (1, 2):
        open("ck/w.txt", "w").write("weights %d" % step)
        k.checkpoint("ck", step=step, metrics={"val_loss": 1 / step})
"""


def test_tags_notes_and_artifacts_after_creation(journal, git_repo, tmp_path):
    write(git_repo / "ck.py", CHECKPOINT)
    git(git_repo, "add", "ck.py")
    git(git_repo, "commit", "-q", "-m", "ck")
    assert run_program("-q", "python", "ck.py", cwd=git_repo).returncode == 0
    trial = _ids(git_repo)[0]
    short = trial[:8]
    assert (
        ok("tag", short, "+best", "draft", cwd=git_repo).strip()
        == f"trial {trial[:7]} tags: best, draft"
    )
    assert json.loads(ok("tag", short, "-draft", "--json", cwd=git_repo))["tags"] == ["best"]
    bad = RUN("tag", short, "+", cwd=git_repo)
    assert bad.returncode == errors.EXIT_USAGE and "not a tag" in bad.stderr
    ok("note", short, "lr too high? token=abc123", cwd=git_repo)
    assert ok("note", short, cwd=git_repo).strip() == "lr too high? token=***"
    listed = json.loads(ok("ls", "--tag", "best", "--json", cwd=git_repo))
    assert listed[0]["tags"] == ["best"] and listed[0]["note"] == "lr too high? token=***"
    row = next(csv.DictReader(io.StringIO(ok("export", cwd=git_repo))))
    assert row["tags"] == "best" and row["note"].startswith("lr too high")
    ok("note", short, "--clear", cwd=git_repo)
    assert "has no note" in ok("note", short, cwd=git_repo)
    # Artifacts out: the list, then the newest matching one, as bytes or extracted whole.
    table = ok("artifacts", short, cwd=git_repo)
    assert table.count("archive=tar") == 2 and "step=2" in table
    listed = json.loads(ok("artifacts", short, "--json", cwd=git_repo))
    assert [a["metadata"]["step"] for a in listed] == [1, 2]
    out = tmp_path / "ck.tar"
    ok("artifacts", short, "ck", "--where", "step=1", "-o", str(out), cwd=git_repo)
    assert out.stat().st_size == listed[0]["size"] and out.stat().st_mode & 0o077 == 0
    ok("artifacts", short, "ck", "--extract", str(tmp_path / "restored"), cwd=git_repo)
    assert (tmp_path / "restored" / "w.txt").read_text() == "weights 2"
    missing = RUN("artifacts", short, "ck", "--where", "step>5", "-o", "x", cwd=git_repo)
    assert (
        missing.returncode == errors.EXIT_NOT_FOUND and "no artifact named 'ck'" in missing.stderr
    )


def test_cat_streams_the_same_bytes_as_it_printed_decoded():
    """``cat --statistics [--json]`` streams (strict JSON text passed through, the table in
    two passes); the bytes are those of decoding every statistic and printing it."""
    import random

    from kleio.cli.cat import json_lines, statistics_table, stream_table
    from kleio.cli.common import json_line
    from kleio.storage.base import decode, encode

    samples = [
        {"epoch": 1, "loss": 0.5},
        {"a": 1e-05, "b": -0.0, "c": True, "d": None, "e": 12345678901234567890},
        {"k,": 1},
        {"k:": 2},
        {"x": "s"},
        {"n": float("nan")},
        {"u": "é"},
        {"é": 1},
        {},
        {"l": [1, 2]},
        {"a": {"b": 1}},
        {"x": float("inf")},
        {"s": "\udc80"},
    ]
    for data in samples:
        text = encode(data)
        strict = "NaN" not in text and "Infinity" not in text
        assert b"".join(json_lines([[text if strict else data]])) == json_line(decode(text))
    texts = [encode(d) for d in samples if "NaN" not in encode(d) and "Inf" not in encode(d)]
    assert b"".join(json_lines([texts[:2], texts, texts[:1]])) == b"".join(
        json_line(decode(t)) for t in texts[:2] + texts + texts[:1]
    )
    rng = random.Random(3)
    rows = samples + [
        {"epoch": i, "loss": rng.random(), "note": "x" * rng.randint(0, 300)} for i in range(50)
    ]
    assert "".join(stream_table(lambda: iter(rows))) == statistics_table(rows)
