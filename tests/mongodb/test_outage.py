"""The MongoDB server goes away mid-run and comes back: nothing is lost.

These tests stop and restart a server, so they always use an nx-27017 wire server of their
own (a real server named by ``KLEIO_TEST_MONGODB_URI`` cannot be stopped by a test); they
are skipped where the package is not installed. The server is SIGKILLed, as a crash or a
cut cable leaves it, and restarted on the same port and data, so clients reconnect.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import run_kleio, write
from tests.faults.helpers import wait_for
from tests.mongodb.server import WireServer, wire_server_installed

pytestmark = [
    pytest.mark.mongodb,
    pytest.mark.skipif(not wire_server_installed(), reason="needs nx-27017 (the test extra)"),
]

#: Short server selection: each write to a stopped server fails in 0.5 s, not 5.
FAST_FAILURE = "?serverSelectionTimeoutMS=500&connectTimeoutMS=500"


@pytest.fixture
def server(tmp_path):
    server = WireServer(str(tmp_path / "server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def journal(server, monkeypatch):
    uri = f"{server.uri}/kleio_outage{FAST_FAILURE}"
    monkeypatch.setenv("KLEIO_DB", uri)
    monkeypatch.setenv("KLEIO_HEARTBEAT_INTERVAL", "0.2")
    return uri


@pytest.fixture
def reader(journal):
    """One store for the test's polls: a new client per poll would cost a connection and a
    handshake every few milliseconds on the one-process server the runner needs."""
    from kleio.storage.mongodb import MongoDBStore

    with MongoDBStore(journal) as store:
        yield store


def statistics(store, trial):
    """The trial's steps in the journal; None while the client has not reconnected yet."""
    from kleio.errors import StoreUnavailable

    try:
        events = store.read_events(trial_id=trial, kinds=["statistic"])
    except StoreUnavailable:
        return None
    return [e.data["step"] for e in events]


def test_outage_mid_run_and_at_the_end_loses_nothing(git_repo, server, journal, reader, tmp_path):
    resume, finish = tmp_path / "resume", tmp_path / "finish"
    write(
        git_repo / "job.py",
        f"""
        import os, time
        from kleio.client.logger import kleio_logger as log

        def wait(path):
            deadline = time.monotonic() + 60
            while not os.path.exists(path) and time.monotonic() < deadline:
                time.sleep(0.02)

        for phase, gate in enumerate([{str(resume)!r}, {str(finish)!r}, None]):
            for step in range(phase * 5, phase * 5 + 5):
                log.log_statistic(step=step)
            print("phase", phase, flush=True)
            if gate:
                wait(gate)
    """,
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "kleio", "python", "job.py"],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert runner.stdout.readline() == "phase 0\n"
    [row] = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)
    trial = row["id"]
    wait_for(lambda: statistics(reader, trial) == list(range(5)), "phase 0 in the journal")

    # Outage 1, mid-run: the runner spools, then replays when the server is back.
    server.stop()
    resume.touch()
    assert runner.stdout.readline() == "phase 1\n"
    server.start()
    wait_for(
        lambda: statistics(reader, trial) == list(range(10)),
        "the spooled phase 1 to be replayed",
        timeout=60,
    )

    # Outage 2, at the end: the run ends with the server down, `kleio sync` finishes it.
    server.stop()
    finish.touch()
    out, err = runner.communicate(timeout=90)
    assert runner.returncode == 0, err  # the program's exit code, whatever the journal did
    assert out == "phase 2\n"
    assert "the journal is unavailable" in err and "kleio sync" in err
    assert err.count("the journal is unavailable") == 1  # told once per run
    server.start()
    synced = run_kleio("sync", cwd=git_repo, timeout=90)
    assert synced.returncode == 0, synced.stderr

    assert statistics(reader, trial) == list(range(15))  # every statistic, once
    assert run_kleio("cat", trial, cwd=git_repo).stdout == "phase 0\nphase 1\nphase 2\n"
    info = json.loads(run_kleio("info", trial, "--json", cwd=git_repo).stdout)
    assert [h["status"] for h in info["history"]] == ["new", "reserved", "running", "completed"]
    assert info["status"] == "completed"
