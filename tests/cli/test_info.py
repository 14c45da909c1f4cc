"""``kleio info`` and ``ls`` on a trial whose runner was killed: how long it ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from kleio.cli.common import duration
from tests.conftest import git, run_kleio, write

# Busy for a measured while, log it, then SIGKILL the runner (the program's parent) and die:
# no final status is ever journalled, and no heartbeat comes after the first one.
PROGRAM = """\
import os, signal, time
from kleio.client.logger import kleio_logger
t0 = time.time()
while time.time() - t0 < 0.3:
    pass
kleio_logger.log_statistic(elapsed=time.time() - t0)
os.kill(os.getppid(), signal.SIGKILL)
os._exit(0)
"""


def test_a_lost_trial_ran_until_its_last_event_not_until_its_last_heartbeat(git_repo, db_uri):
    write(git_repo / "killed.py", PROGRAM)
    git(git_repo, "add", "killed.py")
    git(git_repo, "commit", "-qm", "killed")
    env = {**os.environ, "KLEIO_HEARTBEAT_INTERVAL": "3600"}
    subprocess.run(
        [sys.executable, "-m", "kleio", "python", "killed.py"],
        cwd=git_repo,
        env=env,
        capture_output=True,
        timeout=60,
    )
    # The statistic was acknowledged (spooled or journalled); sync replays what the runner left.
    run_kleio("sync", cwd=git_repo)
    (row,) = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)
    assert row["status"] == "lost"
    trial = row["id"]
    stat = json.loads(run_kleio("cat", "--statistics", "--json", trial, cwd=git_repo).stdout)
    elapsed = stat["elapsed"]
    assert elapsed >= 0.3
    # It ran at least while the program measured, before its last statistic.
    assert row["duration"] >= elapsed
    info = json.loads(run_kleio("info", trial, "--json", cwd=git_repo).stdout)
    assert info["duration"] == row["duration"]
    text = run_kleio("info", trial, cwd=git_repo).stdout
    assert f"duration {duration(row['duration'])}" in text and "duration -" not in text


# Quiet (no event after its start), then killed with its runner: only heartbeats say it ran.
QUIET = """\
import os, signal, sys, time
if os.path.exists("killed-once"):
    sys.exit(0)
open("killed-once", "w").close()
t0 = time.time()
while time.time() - t0 < 0.6:
    pass
os.kill(os.getppid(), signal.SIGKILL)
os._exit(0)
"""


def test_a_lost_execution_keeps_its_heartbeats_time_once_the_trial_is_taken_over(git_repo, db_uri):
    write(git_repo / "quiet.py", QUIET)
    git(git_repo, "add", "quiet.py")
    git(git_repo, "commit", "-qm", "quiet")
    env = {**os.environ, "KLEIO_HEARTBEAT_INTERVAL": "0.1"}
    subprocess.run(
        [sys.executable, "-m", "kleio", "python", "quiet.py"],
        cwd=git_repo,
        env=env,
        capture_output=True,
        timeout=60,
    )
    (row,) = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)
    assert row["status"] == "lost"
    before = row["duration"]
    assert before > 0  # heartbeats came during the busy 0.6 s
    # Taken over: the new execution's failover records the dead runner's last heartbeat.
    resumed = run_kleio("run", row["id"], cwd=git_repo)
    assert resumed.returncode == 0, resumed.stderr
    (after,) = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)
    assert after["status"] == "completed"
    assert after["duration"] >= before
    # info says what ls says: the first start, the total duration.
    info = json.loads(run_kleio("info", row["id"], "--json", cwd=git_repo).stdout)
    assert (info["started_at"], info["duration"]) == (after["started_at"], after["duration"])
    assert info["last_started_at"] > info["started_at"]


def test_what_the_runner_could_not_journal_shows_in_the_history(git_repo, db_uri):
    assert run_kleio("python", "train.py", "--seed", "1", cwd=git_repo).returncode == 0
    (row,) = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)
    assert row["problems"] is None  # a run that journalled everything
    from kleio.storage import open_store
    from kleio.storage.base import encode

    with open_store(db_uri) as store:  # a final status as the runner writes one with problems
        last = store.last_seq(trial_id=row["id"])
        problems = {"unstorable_events": 12, "events_dropped": 3}
        data = encode({"status": "completed", "exit_code": 0, "problems": problems})
        store.append_events(trial_id=row["id"], events=[(last + 1, "status", 2e9, data)])
    info = json.loads(run_kleio("info", row["id"], "--json", cwd=git_repo).stdout)
    assert info["history"][-1]["problems"] == problems
    assert "problems" not in info["history"][0]
    text = run_kleio("info", row["id"], cwd=git_repo).stdout
    assert "journal problems: events_dropped 3, unstorable_events 12" in text
