"""Two "hosts" sharing one SQLite journal, simulated with ``KLEIO_HOSTNAME``.

The processes are real (the ``kleio`` entry point); only the host name differs. On another
host a runner's pid cannot be checked, so only a stale heartbeat makes it dead there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from kleio import errors
from tests.conftest import run_kleio, write


def env_for(host, **extra):
    return {**os.environ, "KLEIO_HOSTNAME": host, **extra}


def kleio(*args, host, cwd, **extra):
    return run_kleio(*args, cwd=cwd, env=env_for(host, **extra))


def popen(*args, host, cwd, **extra):
    return subprocess.Popen(
        [sys.executable, "-m", "kleio", *args],
        cwd=cwd,
        env=env_for(host, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def save(cwd, *command):
    result = run_kleio("save", "-q", *command, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def status_on(host, cwd, trial, **extra):
    result = kleio("ls", "--json", host=host, cwd=cwd, **extra)
    [row] = [r for r in json.loads(result.stdout) if r["id"].startswith(trial)]
    return row["status"]


def test_tail_follows_a_trial_running_on_another_host(git_repo, db_uri, tmp_path):
    go = tmp_path / "go"
    write(
        git_repo / "slow.py",
        f"""
        import os, time
        print("line 1", flush=True)
        while not os.path.exists({str(go)!r}):
            time.sleep(0.02)
        print("line 2", flush=True)
    """,
    )
    trial = save(git_repo, "python", "slow.py")
    runner = popen("run", trial, host="host-a", cwd=git_repo)
    assert runner.stdout.readline() == "line 1\n"
    tail = popen("tail", "-f", trial, host="host-b", cwd=git_repo)
    assert tail.stdout.readline() == "line 1\n"  # journalled by host-a, read by host-b
    assert tail.poll() is None  # still following
    go.touch()
    assert tail.stdout.readline() == "line 2\n"
    out, err = tail.communicate(timeout=20)
    assert tail.returncode == 0 and out == "" and err == ""  # ended with the trial
    runner.communicate(timeout=20)
    assert runner.returncode == 0
    assert status_on("host-b", git_repo, trial) == "completed"


def test_stale_runner_on_another_host_is_failed_over(git_repo, db_uri, tmp_path):
    marker = tmp_path / "first-run"
    write(
        git_repo / "job.py",
        f"""
        import os, time
        if os.path.exists({str(marker)!r}):
            print("resumed", flush=True)
        else:
            open({str(marker)!r}, "w").close()
            print("started", flush=True)
            time.sleep(60)
    """,
    )
    trial = save(git_repo, "python", "job.py")
    runner = popen("run", trial, host="host-a", cwd=git_repo)
    assert runner.stdout.readline() == "started\n"
    killed_at = time.monotonic()
    runner.kill()  # SIGKILL: no last words; the child dies with it (parent-death signal)
    runner.communicate(timeout=10)
    assert runner.returncode == -signal.SIGKILL

    # Host a sees at once that the pid is gone; host b only has the heartbeat, still fresh.
    assert status_on("host-a", git_repo, trial) == "lost"
    # Held (the runner may have died before it journalled 'running'): not lost for host b.
    assert status_on("host-b", git_repo, trial) in ("reserved", "running")
    busy = kleio("run", trial, host="host-b", cwd=git_repo)
    assert busy.returncode == errors.EXIT_BUSY, busy.stderr
    assert "host host-a" in busy.stderr and f"kleio tail -f {trial}" in busy.stderr
    idle = kleio("worker", host="host-b", cwd=git_repo)
    assert idle.returncode == 0 and "ran 0 trials" in idle.stderr

    # Once the heartbeat is older than KLEIO_STALE_AFTER, host b takes the trial over.
    time.sleep(max(0.0, 1.2 - (time.monotonic() - killed_at)))
    assert status_on("host-b", git_repo, trial, KLEIO_STALE_AFTER="1") == "lost"
    worker = kleio("worker", host="host-b", cwd=git_repo, KLEIO_STALE_AFTER="1")
    assert worker.returncode == 0, worker.stderr
    assert "held by a dead runner (host host-a" in worker.stderr
    assert worker.stdout == "resumed\n"
    info = json.loads(kleio("info", trial, "--json", host="host-b", cwd=git_repo).stdout)
    statuses = [h["status"] for h in info["history"]]
    assert statuses == [
        "new",
        "reserved",
        "running",
        "failover",
        "reserved",
        "running",
        "completed",
    ]
