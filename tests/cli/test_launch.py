"""The launch path from the command line: flags where users put them, exec, fresh branches."""

from __future__ import annotations

import json

from kleio import errors
from kleio.cli import RUN_OPTIONS
from kleio.cli.run import FLAGS, VALUES
from tests.conftest import git, run_kleio, write


def short_id(stderr: str) -> str:
    for line in stderr.splitlines():
        if line.startswith("trial reserved with id: "):
            return line.split()[-1]
    raise AssertionError(f"no 'trial reserved' line in {stderr!r}")


def cat_stats(cwd, trial):
    result = run_kleio("cat", trial, "--statistics", "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


STOP_ONCE = """
import os, signal, sys
from kleio.client.logger import kleio_logger
kleio_logger.log_statistic(step=1, loss=1.0)
if not os.path.exists("ran-once"):
    open("ran-once", "w").close()
    os.kill(os.getpid(), signal.SIGTERM)
kleio_logger.log_statistic(step=2, loss=0.5)
print("done")
"""


def test_every_run_option_is_accepted_before_the_program():
    assert set(FLAGS) | set(VALUES) | {"--tag"} == RUN_OPTIONS


def test_run_options_before_the_program_without_the_word_run(git_repo, db_uri):
    write(git_repo / "stop.py", STOP_ONCE)
    git(git_repo, "add", "stop.py")
    git(git_repo, "commit", "-qm", "stop once")
    first = run_kleio("-q", "--tag", "a", "python", "stop.py", cwd=git_repo)
    assert first.returncode == 143, first.stderr
    assert "trial reserved" not in first.stderr  # -q was taken as kleio's
    [row] = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)
    assert row["tags"] == ["a"]
    with open(git_repo / "stop.py", "a", encoding="utf-8") as handle:
        handle.write("print('fixed')\n")
    refused = run_kleio("python", "stop.py", cwd=git_repo)
    assert refused.returncode == errors.EXIT_CHANGED
    assert "type: kleio run --allow-code-change python stop.py;" in refused.stderr
    # What the message says to type works, and so does the flag before the program.
    again = run_kleio("--allow-code-change", "python", "stop.py", cwd=git_repo)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "done\nfixed\n"
    assert again.stderr.startswith("branched ")


def test_exec_is_run(git_repo, db_uri):
    write(git_repo / "stop.py", STOP_ONCE)
    first = run_kleio("python", "stop.py", cwd=git_repo)
    trial = short_id(first.stderr)
    resumed = run_kleio("exec", trial, cwd=git_repo)
    assert resumed.returncode == 0, resumed.stderr
    assert short_id(resumed.stderr) == trial
    assert "alias: exec" in run_kleio("--help").stdout


def test_branch_fresh_inherits_no_history(git_repo, db_uri):
    write(git_repo / "stop.py", STOP_ONCE)
    first = run_kleio("python", "stop.py", cwd=git_repo)
    parent = short_id(first.stderr)
    finished = run_kleio("run", parent, cwd=git_repo)
    assert finished.returncode == 0
    assert [s["step"] for s in cat_stats(git_repo, parent)] == [1, 1, 2]
    fresh = run_kleio("branch", "--fresh", parent, cwd=git_repo)
    assert fresh.returncode == 0, fresh.stderr
    child = short_id(fresh.stderr)
    assert child != parent
    assert f"branched {parent} -> {child} (fresh: no history inherited)" in fresh.stderr
    assert [s["step"] for s in cat_stats(git_repo, child)] == [1, 2]  # its own run only
    assert run_kleio("cat", child, cwd=git_repo).stdout == "done\n"
    details = json.loads(run_kleio("info", child, "--json", cwd=git_repo).stdout)
    assert details["parent"]["id"].startswith(parent)
    # The same fresh branch again exists already: said so, not "branched".
    again = run_kleio("branch", "--fresh", parent, cwd=git_repo)
    assert again.returncode == errors.EXIT_NOT_RESERVABLE
    assert f"branch {child} of {parent} exists already" in again.stderr
    assert "branched" not in again.stderr
    mixed = run_kleio("branch", "--fresh", "--timestamp", "step=1", parent, cwd=git_repo)
    assert mixed.returncode == errors.EXIT_USAGE
    assert mixed.stderr.startswith("error: --fresh and --timestamp cannot be combined")


def test_a_trial_journalled_under_its_old_id_is_resumed_not_duplicated(git_repo, db_uri):
    from kleio.identity import legacy_id
    from kleio.storage import open_store
    from kleio.trial import build_trial, store_trial

    command = ["python", "train.py", "--lr=0.1", "--epochs", "2"]
    doc, blobs = build_trial(command, str(git_repo), None)
    old = legacy_id(doc)
    assert old is not None and old != doc["id"]  # the identity form changed this command's id
    doc["id"] = old  # as kleio 0.1 journalled it
    with open_store(db_uri) as store:
        assert store_trial(store, doc, blobs)
    result = run_kleio(*command, cwd=git_repo)
    assert result.returncode == 0, result.stderr
    assert short_id(result.stderr) == old[:7]
    saved = run_kleio("save", *command, cwd=git_repo)
    assert saved.stdout.startswith(f"trial already saved with id: {old[:7]}")
    assert len(json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)) == 1


def test_a_trial_without_a_seed_is_warned_about_once_and_runs(git_repo, db_uri):
    import os

    env = {k: v for k, v in os.environ.items() if "SEED" not in k.upper()}
    write(git_repo / "stop.py", STOP_ONCE)
    first = run_kleio("python", "stop.py", cwd=git_repo, env=env)
    warning = "kleio: warning: no seed-like option (such as --seed) and no seed in the environment"
    assert first.returncode == 143 and warning in first.stderr  # told, never refused
    trial = short_id(first.stderr)
    resumed = run_kleio("run", trial, cwd=git_repo, env=env)
    assert resumed.returncode == 0 and warning not in resumed.stderr  # once per trial
    seeded = run_kleio("python", "stop.py", "--seed", "3", cwd=git_repo, env=env)
    assert "seed-like" not in seeded.stderr


def test_the_command_line_a_refusal_suggests_keeps_the_journal_and_options(git_repo, tmp_path):
    import os
    import shlex

    db = "sqlite://" + str(tmp_path / "elsewhere" / "k.db")
    env = {k: v for k, v in os.environ.items() if k != "KLEIO_DB"}
    write(git_repo / "stop.py", STOP_ONCE)
    git(git_repo, "add", "stop.py")
    git(git_repo, "commit", "-qm", "stop once")
    first = run_kleio("--db", db, "--tag", "a b", "python", "stop.py", cwd=git_repo, env=env)
    assert first.returncode == 143, first.stderr
    with open(git_repo / "stop.py", "a", encoding="utf-8") as handle:
        handle.write("print('fixed')\n")
    refused = run_kleio("--db", db, "--tag", "a b", "python", "stop.py", cwd=git_repo, env=env)
    assert refused.returncode == errors.EXIT_CHANGED
    suggested = refused.stderr.split("type: ", 1)[1].split(";", 1)[0]
    assert suggested == f"kleio --db {db} run --allow-code-change --tag 'a b' python stop.py"
    again = run_kleio(*shlex.split(suggested)[1:], cwd=git_repo, env=env)  # typed as shown
    assert again.returncode == 0, again.stderr
    assert again.stdout == "done\nfixed\n"


def test_a_program_that_logs_nothing_is_not_told_about_seeds(git_repo, db_uri):
    import os

    env = {k: v for k, v in os.environ.items() if "SEED" not in k.upper()}
    write(git_repo / "hello.py", "print('hello')\n")
    result = run_kleio("python", "hello.py", cwd=git_repo, env=env)
    assert result.returncode == 0 and result.stdout == "hello\n"
    assert "seed-like" not in result.stderr


def test_the_metrics_of_kleio_yaml_are_journalled_with_the_trial(git_repo, db_uri):
    """Declared in kleio.yaml when the trial first ran, they stay its own once the file is
    gone (a reader of the journal elsewhere has no kleio.yaml)."""
    write(git_repo / "kleio.yaml", "metrics:\n  score: min\n  primary: score\n")
    write(
        git_repo / "logs.py",
        """
        from kleio.client.logger import kleio_logger
        for step, score in enumerate([3.0, 1.0, 2.0]):
            kleio_logger.log_statistic(step=step, score=score)
    """,
    )
    assert run_kleio("python", "logs.py", "--seed", "1", cwd=git_repo).returncode == 0
    (git_repo / "kleio.yaml").unlink()
    listed = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)
    assert listed[0]["primary_metric"] == "score"
    assert listed[0]["metrics"]["score"] == {
        **listed[0]["metrics"]["score"],
        "mode": "min",
        "best": 1.0,
        "last": 2.0,
    }
