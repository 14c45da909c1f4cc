"""End-to-end tests of kleio diff, checkout and pdb."""

from __future__ import annotations

import json
import subprocess
import sys

from kleio import errors
from kleio.storage import open_store
from tests.cli.test_branch import branched
from tests.cli.test_run import short_id, write
from tests.conftest import git, run_kleio

STATS = """
    import sys
    from kleio.client.logger import kleio_logger
    lr = float(sys.argv[2])
    for epoch in (1, 2, 3):
        kleio_logger.log_statistic(epoch=epoch, loss=lr / epoch, acc=0.5 + lr * epoch)
    kleio_logger.log_artifact("w.bin", b"weights-%d" % int(lr * 10), epoch=3)
"""


def _two_trials(git_repo):
    write(git_repo / "fit.py", STATS)
    git(git_repo, "add", "fit.py")
    git(git_repo, "commit", "-q", "-m", "fit")
    a = short_id(run_kleio("python", "fit.py", "--lr", "0.1", cwd=git_repo).stderr)
    with open(git_repo / "fit.py", "a", encoding="utf-8") as handle:
        handle.write("print('changed')\n")
    write(git_repo / "util.py", "HELPER = 1\n")
    result = run_kleio("branch", a, "--lr", "0.2", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    return a, branched(result.stderr)[1]


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
    assert git(out, "remote", "get-url", "origin").strip() == \
        "https://example.invalid/team/project.git"
    # In the checkout, the trial's command is the same trial, with the same code.
    again = run_kleio("run", b, cwd=out)
    assert again.returncode == errors.EXIT_NOT_RESERVABLE, again.stderr  # completed
    checkout_a = tmp_path / "a"
    assert run_kleio("checkout", a, "-o", str(checkout_a), cwd=git_repo).returncode == 0
    assert "changed" not in (checkout_a / "fit.py").read_text()
    assert not (checkout_a / "util.py").exists()
    refused = run_kleio("checkout", a, "-o", str(out), cwd=git_repo)
    assert refused.returncode == errors.EXIT_USAGE and "already exists" in refused.stderr


def test_pdb_reads_commands_from_stdin(git_repo, db_uri):
    a, b = _two_trials(git_repo)
    commands = ("p trial.statistics[-1]['epoch'], len(trial.statistics)\n"
                "p trial.artifact('w.bin')\n"
                "p trial.info['parent']['id'][:7]\n"
                "c\n")
    result = run_kleio("pdb", b, input=commands, cwd=git_repo)
    assert result.returncode == 0, result.stderr
    assert "(3, 6)" in result.stdout
    assert "b'weights-2'" in result.stdout
    assert f"'{a}'" in result.stdout
    no_tty = subprocess.run([sys.executable, "-m", "kleio", "pdb", b], cwd=git_repo,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert no_tty.returncode == errors.EXIT_NO_TTY
    assert no_tty.stderr.startswith("error: kleio pdb needs a terminal")


def test_pdb_rerun_stops_post_mortem_and_journals_nothing(git_repo, db_uri):
    write(git_repo / "crash.py", """
        import sys
        def divide(x):
            return 1 / x
        print("starting", sys.argv[1:])
        divide(int(sys.argv[2]))
    """)
    first = run_kleio("python", "crash.py", "--x", "0", cwd=git_repo)
    assert first.returncode == 1
    trial = short_id(first.stderr)
    with open_store(db_uri) as store:
        [doc] = store.find_trials(id_prefix=trial)
        before = store.last_seq(trial_id=doc["id"])
    result = run_kleio("pdb", "--rerun", trial, input="p x\nq\n", cwd=git_repo)
    assert "starting ['--x', '0']" in result.stdout
    assert "ZeroDivisionError" in result.stderr
    assert "-> return 1 / x" in result.stdout and "(Pdb) 0" in result.stdout
    with open_store(db_uri) as store:
        assert store.last_seq(trial_id=doc["id"]) == before
