"""``kleio stop`` on a program that ignores SIGTERM: SIGKILL after ``stop_grace``."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.cli.test_run import info, ls
from tests.conftest import run_kleio, write


def test_stop_kills_a_program_that_ignores_sigterm_after_the_grace(
    git_repo, db_uri, monkeypatch, tmp_path
):
    monkeypatch.setenv("KLEIO_HEARTBEAT_INTERVAL", "0.1")
    monkeypatch.setenv("KLEIO_STOP_GRACE", "0.5")
    write(
        git_repo / "stubborn.py",
        """
        import signal, time
        from kleio.client.logger import kleio_logger
        signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
        kleio_logger.log_statistic(step=0)
        print("started", flush=True)
        while True:
            time.sleep(0.05)
    """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kleio", "python", "stubborn.py"],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "started\n"
    trial = ls(git_repo)[0]["id"][:7]
    stopped = run_kleio("stop", trial, "--wait", cwd=git_repo, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGKILL
    assert "ignoring SIGTERM" in out
    assert "ignored SIGTERM for 0.5 s; killing it" in err
    assert ls(git_repo)[0]["status"] == "suspended"
    assert [h["status"] for h in info(git_repo, trial)["history"]][-1] == "suspended"
    stats = run_kleio("cat", trial, "--statistics", "--json", cwd=git_repo)
    assert len(stats.stdout.splitlines()) == 1
