"""Config files named outside the repository: stored, diffed, checked out (issue 8)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from kleio import errors
from tests.conftest import git, run_kleio, write

JOB = """
    import sys
    print(open(sys.argv[2]).read())
"""


def _trial(repo, config):
    result = run_kleio("run", "-q", "python", "job.py", "--config", str(config), cwd=repo)
    assert result.returncode == 0, result.stderr
    rows = json.loads(run_kleio("ls", "--json", cwd=repo).stdout)
    return next(row["id"] for row in rows if row["id"] not in _trial.seen), rows


_trial.seen = set()


def _setup(git_repo, tmp_path):
    write(git_repo / "job.py", JOB)
    git(git_repo, "add", "job.py")
    git(git_repo, "commit", "-q", "-m", "job")
    outside = tmp_path / "experiments"
    outside.mkdir()
    config = outside / "a.yaml"
    config.write_text("lr: 0.1\nlayers: 3\napi_key: sk-live-0123456789abcdef\n", encoding="utf-8")
    return config


def test_diff_shows_and_checkout_restores_a_config_file_outside_the_repository(
    git_repo, db_uri, tmp_path
):
    _trial.seen = set()
    config = _setup(git_repo, tmp_path)
    a, _ = _trial(git_repo, config)
    _trial.seen.add(a)
    config.write_text("lr: 0.2\nlayers: 3\napi_key: sk-live-0123456789abcdef\n", encoding="utf-8")
    b, _ = _trial(git_repo, config)  # another content: another trial
    assert a != b
    shown = run_kleio("diff", a, b, cwd=git_repo)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert f"  config file changed: {config}" in lines
    assert "-lr: 0.1" in lines and "+lr: 0.2" in lines
    assert "same code" not in shown.stdout
    assert "sk-live-0123456789abcdef" not in shown.stdout  # stored masked, like any code
    out = tmp_path / "co"
    done = run_kleio("checkout", a, "-o", str(out), cwd=git_repo)
    assert done.returncode == 0, done.stderr
    restored = out / "kleio-config" / str(config).lstrip("/")
    assert restored.read_text(encoding="utf-8").startswith("lr: 0.1\nlayers: 3\n")
    assert "kleio-config" in done.stdout
    assert config.read_text(encoding="utf-8").startswith("lr: 0.2")  # the original untouched


def test_checkout_without_o_leaves_the_repository_clean(git_repo, db_uri, tmp_path):
    _trial.seen = set()
    config = _setup(git_repo, tmp_path)
    a, _ = _trial(git_repo, config)
    sub = git_repo / "src"
    sub.mkdir()
    done = run_kleio("checkout", a[:7], cwd=sub)
    assert done.returncode == 0, done.stderr
    beside = git_repo.parent / f"{git_repo.name}-kleio-{a[:7]}"
    assert (beside / "job.py").exists()
    assert git(git_repo, "status", "--porcelain", "--untracked-files=all") == ""
    again = run_kleio("checkout", a[:7], cwd=git_repo)
    assert again.returncode == errors.EXIT_USAGE
    assert "already exists" in again.stderr


@pytest.mark.parametrize("absolute", ["../../escape.yaml", "/x/.git/hooks/pre-commit"])
def test_checkout_refuses_a_config_file_entry_that_leaves_the_directory(
    git_repo, db_uri, tmp_path, absolute
):
    _trial.seen = set()
    config = _setup(git_repo, tmp_path)
    a, _ = _trial(git_repo, config)
    path = db_uri[len("sqlite://") :]
    with sqlite3.connect(path) as db:
        (doc,) = db.execute("SELECT doc FROM trials WHERE id = ?", (a,)).fetchone()
        doc = json.loads(doc)
        doc["code"]["config_files"][0]["absolute"] = absolute
        db.execute("UPDATE trials SET doc = ? WHERE id = ?", (json.dumps(doc), a))
    out = tmp_path / "co"
    refused = run_kleio("checkout", a, "-o", str(out), cwd=git_repo)
    assert refused.returncode == errors.EXIT_USAGE, refused.stderr
    assert not out.exists()
    assert "refusing the trial's recorded code" in refused.stderr
