"""End-to-end tests of kleio diff (and checkout of the trials it compares)."""

from __future__ import annotations

import json

from kleio import errors
from tests.cli.recorded_code import _tampered, _two_trials
from tests.cli.test_run import short_id
from tests.conftest import git, run_kleio


def test_diff_and_checkout(git_repo, db_uri, tmp_path):
    a, b = _two_trials(git_repo)
    result = run_kleio("diff", a, b, "--json", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    diff = json.loads(result.stdout)
    assert diff["options"] == [{"option": "lr", "a": "0.1", "b": "0.2"}]
    assert "uncommitted change: fit.py (+1 -0)" in diff["code"]["changes"]
    assert "+print('changed')" in diff["code"]["diff"]
    assert "+++ b/util.py" in diff["code"]["diff"]
    stats = {s["key"]: s for s in diff["statistics"]}
    # b is a branch of a cut at its end: its lineage holds a's statistics, then its own.
    assert stats["loss"]["best"] == [0.1 / 3, 0.1 / 3] and stats["loss"]["better"] == "lower"
    assert stats["acc"]["last"] == [0.5 + 0.1 * 3, 0.5 + 0.2 * 3]
    human = run_kleio("diff", a, b, cwd=git_repo).stdout
    assert "  lr: 0.1 → 0.2" in human and "+print('changed')" in human
    # checkout: the branch's code (commit + diff + untracked) in a new directory.
    out = tmp_path / "co"
    done = run_kleio("checkout", b, "-o", str(out), cwd=git_repo)
    assert done.returncode == 0, done.stderr
    assert (out / "fit.py").read_text() == (git_repo / "fit.py").read_text()
    assert (out / "util.py").read_text() == "HELPER = 1\n"
    head = git(out, "rev-parse", "HEAD").strip()
    assert head == git(git_repo, "rev-parse", "HEAD").strip()
    assert (
        git(out, "remote", "get-url", "origin").strip()
        == "https://example.invalid/team/project.git"
    )
    # In the checkout, the trial's command is the same trial, with the same code.
    again = run_kleio("run", b, cwd=out)
    assert again.returncode == errors.EXIT_NOT_RESERVABLE, again.stderr  # completed
    checkout_a = tmp_path / "a"
    assert run_kleio("checkout", a, "-o", str(checkout_a), cwd=git_repo).returncode == 0
    assert "changed" not in (checkout_a / "fit.py").read_text()
    assert not (checkout_a / "util.py").exists()
    refused = run_kleio("checkout", a, "-o", str(out), cwd=git_repo)
    assert refused.returncode == errors.EXIT_USAGE and "already exists" in refused.stderr


def test_diff_refuses_a_tampered_journal(git_repo, db_uri):
    good = short_id(run_kleio("python", "train.py", "--x", "1", cwd=git_repo).stderr)
    bad = _tampered(git_repo, db_uri, untracked="../evil.py")
    compared = run_kleio("diff", good, bad, cwd=git_repo)
    assert compared.returncode == errors.EXIT_USAGE
    assert compared.stderr.startswith(
        "error: refusing the trial's recorded code: untracked "
        "file '../evil.py' leaves the directory"
    )
