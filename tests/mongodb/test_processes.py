"""Separate kleio processes sharing one MongoDB journal over a real socket.

These are the multi-process paths that ``tests/cli`` checks on SQLite, run here on the live
server (``KLEIO_TEST_MONGODB_URI``, else the nx-27017 wire server of the session): the CLI
end to end with ``--db mongodb://...``, GridFS artifacts, racing starts, workers with one
killed, failover of a killed runner, and ``tail -f`` from another process. Outages, which
need a server the test can stop, are in ``test_outage.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from kleio import errors
from tests.conftest import run_kleio, write
from tests.faults.helpers import wait_for

pytestmark = pytest.mark.mongodb


@pytest.fixture
def journal(mongodb_db_uri, monkeypatch):
    """A fresh MongoDB database as every subprocess's KLEIO_DB."""
    monkeypatch.setenv("KLEIO_DB", mongodb_db_uri)
    return mongodb_db_uri


def kleio_json(*args, cwd):
    result = run_kleio(*args, "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def history(trial, cwd):
    return [h["status"] for h in kleio_json("info", trial, cwd=cwd)["history"]]


def journal_of(uri):
    """The journal, read in this process (checks need no kleio process each)."""
    from kleio.storage.mongodb import MongoDBStore

    return MongoDBStore(uri)


def statuses(store, trial):
    return [e.data["status"] for e in store.read_events(trial_id=trial, kinds=["status"])]


def popen(*args, cwd, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "kleio", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def save(cwd, *command):
    result = run_kleio("save", "-q", *command, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def save_here(uri, cwd, *command):
    """What ``kleio save`` does, in this process (a kleio process costs ~0.5 s under load);
    ``kleio save`` itself is run by the other tests."""
    from kleio.config import load_config
    from kleio.launch import prepare_command
    from kleio.storage import open_store

    config = load_config({"db": uri}, cwd=str(cwd))
    with open_store(config.db) as store:
        prepared = prepare_command(store, config, list(command), str(cwd), [])
        assert prepared.created
        return prepared.doc["id"]


def test_cli_end_to_end_with_db_option_and_gridfs_artifacts(git_repo, mongodb_db_uri):
    weights = os.urandom(600_000)  # three GridFS chunks of 255 KiB
    (git_repo / "weights.bin").write_bytes(weights)
    write(
        git_repo / "job.py",
        """
        import hashlib, sys
        from kleio.client.logger import kleio_logger as log
        for step in range(3):
            log.log_statistic(step=step, loss=1.0 / (step + 1))
        with open("weights.bin", "rb") as handle:
            log.log_artifact("weights.bin", handle, epoch=3)
        found = log.load_artifact("weights.bin", epoch=3)
        print("loaded", hashlib.sha256(found[0].read()).hexdigest(), found[1])
        print("to stderr", file=sys.stderr)
    """,
    )
    db = ("--db", mongodb_db_uri)
    result = run_kleio(*db, "python", "job.py", "--lr", "0.1", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    sha = hashlib.sha256(weights).hexdigest()
    assert result.stdout == f"loaded {sha} {{'epoch': 3}}\n"
    [row] = kleio_json(*db, "ls", cwd=git_repo)
    assert row["status"] == "completed"
    assert row["command"] == ["python", "job.py", "--lr", "0.1"]
    trial = row["id"]
    stats = run_kleio(*db, "cat", trial[:8], "--statistics", "--json", cwd=git_repo)
    assert [json.loads(line)["step"] for line in stats.stdout.splitlines()] == [0, 1, 2]
    assert run_kleio(*db, "cat", trial, "--stderr", cwd=git_repo).stdout == "to stderr\n"
    details = kleio_json(*db, "info", trial, cwd=git_repo)
    assert [h["status"] for h in details["history"]] == ["new", "reserved", "running", "completed"]

    from kleio.storage.mongodb import MongoDBStore

    with MongoDBStore(mongodb_db_uri) as store:
        [artifact] = [e.data for e in store.read_events(trial_id=trial, kinds=["artifact"])]
        assert (artifact["sha256"], artifact["size"]) == (sha, len(weights))
        assert store.open_blob(sha256=sha).read() == weights


#: Racing starts of one trial. Eight decide the race as sixteen do (one insert of the
#: reservation's unique key wins, the server answers the others with duplicate-key errors)
#: and cost half: each start is a whole kleio process on a 2-core CI machine.
RACERS = 8


def test_concurrent_starts_run_exactly_once(git_repo, journal, tmp_path):
    go = tmp_path / "go"
    write(
        git_repo / "slow.py",
        f"""
        import os, time
        print("running", flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists({str(go)!r}) and time.monotonic() < deadline:
            time.sleep(0.02)
    """,
    )
    procs = [popen("python", "slow.py", cwd=git_repo) for _ in range(RACERS)]
    # The losers end on their own (busy); the winner waits for them before it may end.
    wait_for(
        lambda: sum(proc.poll() is not None for proc in procs) >= RACERS - 1,
        f"{RACERS - 1} of the {RACERS} starts to end",
        timeout=90,
    )
    [winner] = [proc for proc in procs if proc.poll() is None]
    losers = [(proc.returncode, *proc.communicate()) for proc in procs if proc is not winner]
    go.touch()
    out, err = winner.communicate(timeout=60)
    assert winner.returncode == 0, err
    assert out == "running\n"
    for code, out, err in losers:
        assert code == errors.EXIT_BUSY, err
        assert "already running on host" in err and "kleio tail -f" in err
        assert out == ""
    with journal_of(journal) as store:
        [doc] = store.find_trials()
        assert statuses(store, doc["id"]) == ["new", "reserved", "running", "completed"]


def test_three_workers_one_killed_run_every_trial_once(git_repo, journal, tmp_path):
    """One worker SIGKILLed mid-trial: its trial is failed over and every trial runs once.

    The killed worker's runner had journalled a statistic and a line: both are kept.
    """
    log, go = tmp_path / "log", tmp_path / "go"
    write(
        git_repo / "job.py",
        f"""
        import os, sys, time
        from kleio.client.logger import kleio_logger
        i = sys.argv[2]
        kleio_logger.log_statistic(step=int(i))
        print("started", i, flush=True)
        with open({str(log)!r}, "a") as out:
            out.write(f"start {{i}} {{os.getppid()}}\\n")
        deadline = time.monotonic() + 60
        while not os.path.exists({str(go)!r}) and time.monotonic() < deadline:
            time.sleep(0.02)
        with open({str(log)!r}, "a") as out:
            out.write(f"end {{i}}\\n")
    """,
    )
    ids = [save_here(journal, git_repo, "python", "job.py", "--i", str(i)) for i in range(4)]
    workers = [popen("worker", cwd=git_repo) for _ in range(3)]

    def lines():
        return log.read_text().splitlines() if log.exists() else []

    # Each worker holds one trial (the programs wait for `go`): kill the one running --i 0.
    wait_for(lambda: len(lines()) == 3, "three trials to start", timeout=60)
    [victim_pid] = [int(line.split()[2]) for line in lines() if line.startswith("start 0 ")]
    [victim] = [proc for proc in workers if proc.pid == victim_pid]
    store = journal_of(journal)
    [trial] = [doc["id"] for doc in store.find_trials() if doc["id"].startswith(ids[0])]

    def journalled():
        return (
            [e.data["line"] for e in store.read_events(trial_id=trial, kinds=["stdout"])],
            [e.data["step"] for e in store.read_events(trial_id=trial, kinds=["statistic"])],
        )

    wait_for(lambda: journalled() == (["started 0"], [0]), "trial 0's first records")
    victim.kill()  # SIGKILL: no last words; its program dies with it
    victim.communicate(timeout=30)
    go.touch()
    survivors = [proc for proc in workers if proc is not victim]
    outputs = [proc.communicate(timeout=90) for proc in survivors]
    assert [proc.returncode for proc in survivors] == [0, 0], outputs
    ends = sorted(line for line in lines() if line.startswith("end "))
    assert ends == [f"end {i}" for i in range(4)]  # every trial completed exactly once
    assert sum(line.startswith("start 0 ") for line in lines()) == 2
    assert any("held by a dead runner" in err for _, err in outputs), outputs
    with store:
        for doc in store.find_trials():
            assert doc["status"] == "completed"
        assert statuses(store, trial) == [
            "new",
            "reserved",
            "running",
            "failover",
            "reserved",
            "running",
            "completed",
        ]
        assert journalled() == (["started 0", "started 0"], [0, 0])  # both runs, all kept


def test_tail_follows_a_trial_from_another_process(git_repo, journal, tmp_path):
    go = tmp_path / "go"
    write(
        git_repo / "slow.py",
        f"""
        import os, time
        print("line 1", flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists({str(go)!r}) and time.monotonic() < deadline:
            time.sleep(0.02)
        print("line 2", flush=True)
    """,
    )
    trial = save(git_repo, "python", "slow.py")
    runner = popen("run", trial, cwd=git_repo)
    assert runner.stdout.readline() == "line 1\n"
    tail = popen("tail", "-f", trial, cwd=git_repo)
    assert tail.stdout.readline() == "line 1\n"  # journalled by the runner, read by tail
    assert tail.poll() is None  # still following
    go.touch()
    assert tail.stdout.readline() == "line 2\n"
    out, err = tail.communicate(timeout=30)
    assert tail.returncode == 0 and out == "" and err == ""  # ended with the trial
    runner.communicate(timeout=30)
    assert runner.returncode == 0


def test_unreachable_server_is_one_line_with_the_password_masked(git_repo, tmp_path):
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uri = f"mongodb://kleio:s3cret-pw@127.0.0.1:{port}/kleio?serverSelectionTimeoutMS=300"
    for args in (("ls",), ("python", "train.py")):
        result = run_kleio("--db", uri, *args, cwd=git_repo)
        assert result.returncode == errors.EXIT_STORE, result.stderr
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert f"127.0.0.1:{port}" in result.stderr and "s3cret" not in result.stderr
        assert result.stdout == ""
