"""End-to-end tests of kleio pdb."""

from __future__ import annotations

import subprocess
import sys

from kleio import errors
from kleio.storage import open_store
from tests.cli.recorded_code import _two_trials
from tests.cli.test_run import short_id, write
from tests.conftest import run_kleio


def test_pdb_reads_commands_from_stdin(git_repo, db_uri):
    a, b = _two_trials(git_repo)
    commands = (
        "p trial.statistics[-1]['epoch'], len(trial.statistics)\n"
        "p trial.artifact('w.bin')\n"
        "p trial.info['parent']['id'][:7]\n"
        "c\n"
    )
    result = run_kleio("pdb", b, input=commands, cwd=git_repo)
    assert result.returncode == 0, result.stderr
    assert "(3, 6)" in result.stdout
    assert "b'weights-2'" in result.stdout
    assert f"'{a}'" in result.stdout
    no_tty = subprocess.run(
        [sys.executable, "-m", "kleio", "pdb", b],
        cwd=git_repo,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    assert no_tty.returncode == errors.EXIT_NO_TTY
    assert no_tty.stderr.startswith("error: kleio pdb needs a terminal")


def test_pdb_rerun_stops_post_mortem_and_journals_nothing(git_repo, db_uri):
    write(
        git_repo / "crash.py",
        """
        import sys
        def divide(x):
            return 1 / x
        print("starting", sys.argv[1:])
        divide(int(sys.argv[2]))
    """,
    )
    first = run_kleio("python", "crash.py", "--x", "0", cwd=git_repo)
    assert first.returncode == 1
    trial = short_id(first.stderr)
    with open_store(db_uri) as store:
        [doc] = store.find_trials(id_prefix=trial)
        before = store.last_seq(trial_id=doc["id"])
    # It stops at the first line; 'c' runs it to the exception, post-mortem.
    result = run_kleio("pdb", "--rerun", trial, input="c\np x\nq\n", cwd=git_repo)
    assert "starting ['--x', '0']" in result.stdout
    assert "ZeroDivisionError" in result.stdout + result.stderr
    assert "-> return 1 / x" in result.stdout and "(Pdb) 0" in result.stdout
    assert "warning" not in result.stderr  # the code is the trial's
    # A breakpoint given on stdin stops the program there, before the crash.
    stopped = run_kleio(
        "pdb", "--rerun", trial, input="b crash.py:4\nc\np ('at', x)\nq\n", cwd=git_repo
    )
    assert "(Pdb) ('at', 0)" in stopped.stdout, stopped.stdout
    assert "Traceback" not in stopped.stdout + stopped.stderr  # stopped before the division
    with open_store(db_uri) as store:
        assert store.last_seq(trial_id=doc["id"]) == before
    # Today's code is not the trial's: said before the session starts.
    with open(git_repo / "crash.py", "a", encoding="utf-8") as handle:
        handle.write("print('edited')\n")
    edited = run_kleio("pdb", "--rerun", trial, input="q\n", cwd=git_repo)
    assert f"kleio pdb: warning: this is not the code trial {trial} ran" in edited.stderr
    assert "untracked file changed: crash.py" in edited.stderr
