"""End-to-end tests of change detection, branching and lineage through the real entry point,
then kleio branch's own options, walked by the one rule of kleio.argv (no kleio run needed)."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from kleio import errors
from kleio.cli.branch import parse
from kleio.errors import UsageError
from kleio.storage import open_store
from tests.cli.test_run import info, ls, short_id, write
from tests.conftest import git, run_kleio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "logistic_regression.py"


def stats(cwd, trial):
    result = run_kleio("cat", trial, "--statistics", "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def branched(stderr):
    for line in stderr.splitlines():
        if line.startswith("branched "):
            _, parent, _, child, *_ = line.split()
            return parent, child
    raise AssertionError(f"no 'branched' line in {stderr!r}")


ONCE = """
    import os, signal, sys
    marker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "marker")
    print("run", "again" if os.path.exists(marker) else "first")
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGTERM)
"""


def test_code_change_is_refused_with_a_readable_list(git_repo, db_uri):
    write(
        git_repo / "train.py",
        """
        import os, signal
        print("args")
        os.kill(os.getpid(), signal.SIGTERM)
    """,
    )
    git(git_repo, "commit", "-q", "-am", "a run that is interrupted")
    first = run_kleio("python", "train.py", "--lr", "0.1", cwd=git_repo)
    assert first.returncode == 128 + signal.SIGTERM
    trial = short_id(first.stderr)
    with open(git_repo / "train.py", "a", encoding="utf-8") as handle:
        handle.write("print('one more line')\n")
    write(git_repo / "helper.py", "X = 1\n")
    for args, again in (
        (["python", "train.py", "--lr", "0.1"], "python train.py --lr 0.1"),
        (["run", trial], trial),
    ):
        refused = run_kleio(*args, cwd=git_repo)
        assert refused.returncode == errors.EXIT_CHANGED, refused.stderr
        assert refused.stdout == ""  # nothing ran
        lines = refused.stderr.splitlines()
        assert lines[0] == f"kleio: what changed since trial {trial} was created:"
        assert "  code: uncommitted change: train.py (+1 -0)" in lines
        assert "  code: untracked file added: helper.py" in lines
        assert lines[-1].startswith(f"error: the code of trial {trial} changed")
        # The exact command line to type next, with the flag that branches it.
        assert f"type: kleio run --allow-code-change {again};" in lines[-1]

        assert "Traceback" not in refused.stderr
    assert [h["status"] for h in info(git_repo, trial)["history"]][-1] == "interrupted"


def test_a_completed_trial_is_refused_as_completed_before_any_change_check(git_repo, db_uri):
    first = run_kleio("python", "train.py", "--lr", "0.1", cwd=git_repo)
    assert first.returncode == 0
    trial = short_id(first.stderr)
    with open(git_repo / "train.py", "a", encoding="utf-8") as handle:
        handle.write("print('one more line')\n")
    for args in (["python", "train.py", "--lr", "0.1"], ["run", trial]):
        refused = run_kleio(*args, cwd=git_repo)
        assert refused.returncode == errors.EXIT_NOT_RESERVABLE, refused.stderr
        assert refused.stderr.splitlines() == [
            f"error: trial {trial} is completed and is not run again. Read it with "
            f"'kleio cat {trial}', or start a new trial with 'kleio branch {trial} "
            "--OPTION VALUE'."
        ]
    # Asked to branch the changed code, it does.
    branched_run = run_kleio(
        "run", "--allow-code-change", "python", "train.py", "--lr", "0.1", cwd=git_repo
    )
    assert branched_run.returncode == 0, branched_run.stderr
    assert branched(branched_run.stderr)[0] == trial


def test_allow_code_change_branches_and_parent_stays_resumable(git_repo, db_uri):
    write(git_repo / "once.py", ONCE)
    git(git_repo, "add", "once.py")
    git(git_repo, "commit", "-q", "-m", "once")
    first = run_kleio("python", "once.py", cwd=git_repo)
    parent = short_id(first.stderr)
    assert first.stdout == "run first\n"
    assert ls(git_repo)[0]["status"] == "interrupted"
    with open(git_repo / "once.py", "a", encoding="utf-8") as handle:
        handle.write("print('new code')\n")
    # An environment change is not covered by --allow-code-change.
    env = {**os.environ, "PYTHONHASHSEED": "3"}
    refused = run_kleio("run", "--allow-code-change", parent, cwd=git_repo, env=env)
    assert refused.returncode == errors.EXIT_CHANGED
    assert "  env: variable PYTHONHASHSEED (unset) → 3" in refused.stderr.splitlines()
    assert "--allow-any-change" in refused.stderr
    result = run_kleio("run", "--allow-code-change", "python", "once.py", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "run again\nnew code\n"
    assert branched(result.stderr)[0] == parent
    child = branched(result.stderr)[1]
    assert short_id(result.stderr) == child
    assert "(code changed: uncommitted change: once.py (+1 -0))" in result.stderr
    assert run_kleio("cat", child, cwd=git_repo).stdout == "run first\nrun again\nnew code\n"
    details = info(git_repo, child)
    assert details["parent"]["id"].startswith(parent)
    assert details["ancestors"] == [
        {"id": details["parent"]["id"], "cut": details["parent"]["cut"]}
    ]
    assert details["code"]["dirty"] is True
    assert info(git_repo, parent)["code"]["dirty"] is False
    human = run_kleio("info", child, cwd=git_repo).stdout
    assert f"lineage  {parent} (up to run 1 event" in human
    rows = {r["short_id"]: r for r in ls(git_repo)}
    assert rows[child]["parent"].startswith(parent)
    listing = run_kleio("ls", cwd=git_repo).stdout
    assert f"{child}^ " in listing and f"{parent}* " in listing
    # The same change again finds the same branch (completed: not run again).
    again = run_kleio("run", "--allow-code-change", parent, cwd=git_repo)
    assert again.returncode == errors.EXIT_NOT_RESERVABLE
    assert "branched" not in again.stderr  # not made now: it exists
    assert f"branch {child} of {parent} exists already" in again.stderr
    # Without the option, the refusal points at the branch made for this change.
    refused = run_kleio("run", parent, cwd=git_repo)
    assert refused.returncode == errors.EXIT_CHANGED
    assert f"type: kleio run {child};" in refused.stderr
    # A branch with other option values is another experiment: never suggested.
    other = run_kleio("branch", "--no-run", child, "--extra", "1", cwd=git_repo)
    assert other.returncode == 0, other.stderr
    assert f"type: kleio run {child};" in run_kleio("run", parent, cwd=git_repo).stderr

    # Back to the original code, the parent resumes as itself.
    git(git_repo, "checkout", "once.py")
    resumed = run_kleio("run", parent, cwd=git_repo)
    assert resumed.returncode == 0, resumed.stderr
    assert short_id(resumed.stderr) == parent and "branched" not in resumed.stderr
    assert resumed.stdout == "run again\n"


def test_branch_replaces_and_adds_options(git_repo, db_uri):
    first = run_kleio("python", "train.py", "data", "--lr", "0.1", "--fast", cwd=git_repo)
    parent = short_id(first.stderr)
    result = run_kleio("branch", parent, "--lr=0.05", "--epochs", "3", "--fast", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "args ['data', '--lr=0.05', '--fast', '--epochs', '3']\n"
    assert branched(result.stderr)[0] == parent
    child = short_id(result.stderr)
    assert info(git_repo, child)["config"] == {
        "lr": "0.05",
        "fast": True,
        "epochs": "3",
        "_pos": ["data"],
    }
    # Deterministic: the same parent, cut and options are the same trial.
    again = run_kleio(
        "branch", parent, "--no-run", "--lr=0.05", "--epochs", "3", "--fast", cwd=git_repo
    )
    assert again.returncode == 0 and again.stdout.strip().startswith(child)
    other = run_kleio("branch", "--no-run", parent, "--lr", "0.01", cwd=git_repo)
    assert other.stdout.strip()[:7] not in (child, parent)
    assert {r["status"] for r in ls(git_repo)} == {"completed", "new"}
    refused = run_kleio("branch", parent, "other-data", cwd=git_repo)
    assert refused.returncode == errors.EXIT_USAGE
    assert refused.stderr.startswith("error: a positional argument cannot be changed")
    assert refused.stderr.count("\n") == 1
    # After '--', an option of kleio's name belongs to the program.
    raw = run_kleio("branch", parent, "--no-run", "--", "--timestamp", "7", cwd=git_repo)
    assert raw.returncode == 0, raw.stderr
    assert info(git_repo, raw.stdout.strip())["config"]["timestamp"] == "7"


@pytest.fixture
def example(git_repo):
    pytest.importorskip("numpy")
    shutil.copy(EXAMPLE, git_repo / "logistic_regression.py")
    git(git_repo, "add", "logistic_regression.py")
    git(git_repo, "commit", "-q", "-m", "example")
    return git_repo


def test_branch_at_epoch_continues_from_the_checkpoint(example, db_uri):
    first = run_kleio(
        "python", "logistic_regression.py", "--epochs", "10", "--checkpoint-every", "5", cwd=example
    )
    assert first.returncode == 0, first.stderr
    parent = short_id(first.stderr)
    assert [s["epoch"] for s in stats(example, parent)] == list(range(1, 11))
    result = run_kleio("branch", parent, "--timestamp", "epoch=5", "--epochs", "8", cwd=example)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "resuming from the checkpoint of epoch 5"
    assert "epoch   1 " not in result.stdout
    child = short_id(result.stderr)
    lineage = stats(example, child)
    assert [s["epoch"] for s in lineage] == list(range(1, 9))
    assert lineage[:5] == stats(example, parent)[:5]
    with open_store(db_uri) as store:
        [doc] = store.find_trials(id_prefix=child)
        own = store.read_events(trial_id=doc["id"], kinds=("statistic",))
        assert [e.data["epoch"] for e in own] == [6, 7, 8]
        artifacts = [
            e.data["metadata"]["epoch"]
            for e in store.iter_lineage_events(trial_id=doc["id"], kinds=("artifact",))
        ]
        assert artifacts == [5, 8]  # the parent's checkpoint of epoch 10 is past the cut
    tail = run_kleio("tail", "-n", "2", child, cwd=example)
    assert tail.stdout.splitlines()[-1].startswith("epoch   8")
    # A branch of the branch, cut in the inherited part, is a branch of the first trial.
    nested = run_kleio("branch", child, "--no-run", "--timestamp", "epoch=3", cwd=example)
    assert nested.returncode == 0, nested.stderr
    details = info(example, nested.stdout.strip())
    assert details["parent"]["id"].startswith(parent)
    assert [s["epoch"] for s in stats(example, nested.stdout.strip())] == [1, 2, 3]
    missing = run_kleio("branch", parent, "--timestamp", "epoch=12", cwd=example)
    assert missing.returncode == errors.EXIT_USAGE
    assert "nearest values: 10, 9, 8" in missing.stderr
    assert missing.stderr.count("\n") == 1


DEFAULTS = {
    "timestamp": None,
    "no_run": False,
    "tags": [],
    "quiet": False,
    "fresh": False,
    "db": None,
}


@pytest.mark.parametrize(
    ("argv", "changed", "trial", "overrides"),
    [
        (["3f2a", "--lr", "0.05"], {}, "3f2a", ["--lr", "0.05"]),
        (
            ["--no-run", "3f2a", "--lr=0.05", "--flag"],
            {"no_run": True},
            "3f2a",
            ["--lr=0.05", "--flag"],
        ),
        (["--timestamp", "epoch=10", "3f2a"], {"timestamp": "epoch=10"}, "3f2a", []),
        (
            ["--timestamp=2026-01-02T03:04", "-q", "3f2a", "--tag", "a", "--tag=b"],
            {"timestamp": "2026-01-02T03:04", "quiet": True, "tags": ["a", "b"]},
            "3f2a",
            [],
        ),
        (
            ["3f2a", "--fresh", "--epochs", "-1", "--quiet"],
            {"fresh": True, "quiet": True},
            "3f2a",
            ["--epochs", "-1"],
        ),
        # After --, every token is the program's, kleio's option names too.
        (
            ["3f2a", "--lr", "1", "--", "--tag", "x", "-q"],
            {},
            "3f2a",
            ["--lr", "1", "--tag", "x", "-q"],
        ),
        # -h after the id is the program's.
        (["3f2a", "-h"], {}, "3f2a", ["-h"]),
        # --db before the id is the journal's, after it the program's.
        (["--db", "j.db", "3f2a", "--db", "x"], {"db": "j.db"}, "3f2a", ["--db", "x"]),
        (["--db=j.db", "3f2a"], {"db": "j.db"}, "3f2a", []),
    ],
)
def test_parse(argv, changed, trial, overrides):
    assert parse(argv) == ({**DEFAULTS, **changed}, trial, overrides)


def test_help_before_the_id():
    assert parse(["-h", "3f2a"])[0]["help"] is True
    assert parse(["--no-run", "--help"])[0]["help"] is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "0.1", "3f2a"], "unknown option '--lr' before the trial id"),
        (["-1"], "unknown option '-1' before the trial id"),
        (["3f2a", "--tag"], "--tag needs a value"),
        # A value of kleio's own options never looks like an option (kleio.argv's rule).
        (["3f2a", "--timestamp", "--lr", "1"], "--timestamp needs a value"),
    ],
)
def test_refused(argv, message):
    with pytest.raises(UsageError, match=message):
        parse(argv)


def test_a_timestamp_of_neither_form_is_refused_in_kleios_own_words(tmp_path):
    """The hint names the form without an ``X=Y`` of its own, which the masking of secrets
    would show as ``KEY=***``; what the user typed is still masked."""
    env = {**os.environ, "KLEIO_DB": f"sqlite://{tmp_path / 'none.db'}"}
    bad = run_kleio("branch", "--timestamp", "=3", "3f2a", cwd=tmp_path, env=env)
    assert bad.returncode == errors.EXIT_USAGE and "Traceback" not in bad.stderr
    assert bad.stderr == (
        "error: --timestamp '=3' is neither a statistic such as epoch=10 nor an ISO time. "
        "Write e.g. --timestamp epoch=10 or --timestamp 2024-05-01T12:30:00.\n"
    )
    secret = "ghp_" + "a1b2c3d4e5" * 4
    masked = run_kleio("branch", "--timestamp", secret, "3f2a", cwd=tmp_path, env=env)
    assert masked.returncode == errors.EXIT_USAGE and secret not in masked.stderr
    assert "is neither a statistic such as epoch=10 nor an ISO time" in masked.stderr
    assert not (tmp_path / "none.db").exists()  # refused before the journal is opened
