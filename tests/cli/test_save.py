"""End-to-end tests of ``kleio save`` through the real entry point."""

from __future__ import annotations

import json

from kleio import errors
from tests.cli.saving import append_script, ls, save
from tests.conftest import run_kleio


def test_save_registers_a_new_trial_without_running_it(git_repo, db_uri, tmp_path):
    out = tmp_path / "ran.txt"
    append_script(git_repo, out)
    trial = save(git_repo, "--tag", "sweep", "--tag=one", "python", "append.py", "--i", "1")
    assert len(trial) == 7 and not out.exists()
    row = ls(git_repo)[trial]
    assert row["status"] == "new"
    details = json.loads(run_kleio("info", trial, "--json", cwd=git_repo).stdout)
    assert details["tags"] == ["one", "sweep"]
    assert details["code"]["vcs"] == "git" and details["env"] and details["host"]
    # Saving it again changes nothing but the tags, and is not an error.
    again = run_kleio("save", "--tag", "extra", "python", "append.py", "--i", "1", cwd=git_repo)
    assert again.returncode == 0
    assert again.stdout == f"trial already saved with id: {trial} (status new)\n"
    details = json.loads(run_kleio("info", trial, "--json", cwd=git_repo).stdout)
    assert details["tags"] == ["extra", "one", "sweep"]
    # The same command run by `kleio run` is the same trial.
    run = run_kleio("python", "append.py", "--i", "1", cwd=git_repo)
    assert run.returncode == 0 and f"trial reserved with id: {trial}" in run.stderr
    assert out.read_text() == "--i 1\n"


def test_save_mistakes_are_one_line_errors(git_repo, db_uri):
    cases = [
        (["save"], errors.EXIT_USAGE, "no command to save"),
        (["save", "--frob", "python"], errors.EXIT_USAGE, "unknown option"),
        (["save", "no-such-program-kleio"], 127, "command not found"),
        (["save", "python", "train.py", "--password", "hunter2"], errors.EXIT_USAGE, "secrets"),
        (["worker", "--max-trials", "0"], errors.EXIT_USAGE, "at least 1"),
        (["worker", "--idle-timeout", "soon"], errors.EXIT_USAGE, "not a number"),
    ]
    for args, code, text in cases:
        result = run_kleio(*args, cwd=git_repo)
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.startswith("error: ") and text in result.stderr
        assert result.stderr.count("\n") == 1
    assert "hunter2" not in json.dumps(ls(git_repo))
    assert run_kleio("save", "--help").stdout.startswith("usage: kleio save")
