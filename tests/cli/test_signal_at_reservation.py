"""A signal that reaches kleio just after it reserved a trial, before its runner started
the program, must not leave the trial 'reserved' by a dead runner: it waits (blocked) for
the runner, which forwards it to the program; the trial ends 'interrupted'."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import run_kleio

#: kleio's entry point, with the signal sent to itself the moment the trial is reserved.
SIGNALLED = textwrap.dedent("""
    import os, sys
    from kleio import launch
    from kleio.cli import main

    reserve = launch.reserve_trial

    def reserve_then_signal(*args, **kwargs):
        reserved = reserve(*args, **kwargs)
        os.kill(os.getpid(), int(sys.argv[1]))
        return reserved

    launch.reserve_trial = reserve_then_signal
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.parametrize("signo", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_right_after_the_reservation_interrupts_the_trial(git_repo, db_uri, signo):
    (git_repo / "wait.py").write_text("import time\ntime.sleep(30)\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", SIGNALLED, str(int(signo)), "run", sys.executable, "wait.py"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=git_repo,
    )
    # The program got the signal while it started: Python then ends with 1 (a Ctrl-C in
    # its start-up), or it dies by the signal; either way kleio exits as the program did.
    assert done.returncode in (1, 128 + signo), (done.returncode, done.stderr)
    listed = run_kleio("ls", "--json", cwd=git_repo)
    assert listed.returncode == 0, listed.stderr
    (trial,) = json.loads(listed.stdout)
    assert trial["status"] == "interrupted", (trial["status"], done.stderr)
