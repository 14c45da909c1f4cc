"""Reservation: compare-and-append, liveness, failover."""

from __future__ import annotations

import os
import time

import pytest

from kleio.errors import NotReservable, TrialBusy
from kleio.reservation import holder_alive, reserve, runner_identity
from kleio.storage import open_store
from kleio.storage.base import encode, first_seq
from kleio.writer import Heartbeat
from tests.faults.helpers import wait_for


@pytest.fixture
def store(tmp_path):
    store = open_store("sqlite://" + str(tmp_path / "k.db"))
    store.create_trial(
        doc={
            "schema_version": 1,
            "id": "r" * 64,
            "created_at": 1.0,
            "command": ["x"],
            "status": "new",
            "tags": [],
            "parent": None,
        }
    )
    store.append_events(trial_id="r" * 64, events=[(0, "status", 1.0, encode({"status": "new"}))])
    yield store
    store.close()


def dead_runner(host="host-a"):
    return {"host": host, "pid": 999_999_999, "pid_start": None, "since": time.time() - 600}


def test_one_reservation_then_busy(store):
    me = runner_identity("host-a")
    got = reserve(store, "r" * 64, runner=me, stale_after=60)
    assert got.execution == 1 and got.next_seq == first_seq(1) + 1
    with pytest.raises(TrialBusy, match="already running on host host-a"):
        reserve(store, "r" * 64, runner=runner_identity("host-a"), stale_after=60)


def test_a_takeover_in_progress_is_not_taken_over_twice(store):
    trial = "r" * 64
    store.try_append(
        trial_id=trial,
        event=(first_seq(1), "status", time.time(), encode({"status": "reserved"})),
        fields={"status": "running", "runner": dead_runner(), "heartbeat_at": time.time() - 600},
    )
    # Runner A has written 'failover' and not yet 'reserved' (two appends): B must wait.
    taker = runner_identity("host-a")
    store.try_append(
        trial_id=trial,
        event=(
            first_seq(2),
            "status",
            time.time(),
            encode({"status": "failover", "runner": dead_runner(), "by": taker}),
        ),
    )
    with pytest.raises(TrialBusy):
        reserve(store, trial, runner=runner_identity("host-b"), stale_after=60)
    # A failover whose taker died too is stale after stale_after: it can be taken.
    got = reserve(store, trial, runner=runner_identity("host-b"), stale_after=0.0001)
    assert got.execution == 3


def test_dead_pid_on_this_host_is_failed_over_at_once(store):
    trial = "r" * 64
    store.try_append(
        trial_id=trial,
        event=(first_seq(1), "status", time.time(), encode({"status": "running"})),
        fields={
            "status": "running",
            "heartbeat_at": time.time(),
            "runner": {**dead_runner(), "since": time.time()},
        },
    )
    got = reserve(store, trial, runner=runner_identity("host-a"), stale_after=60)
    assert got.failover_of["pid"] == 999_999_999
    statuses = [e.data["status"] for e in store.read_events(trial_id=trial, kinds=("status",))]
    assert statuses == ["new", "running", "failover", "reserved"]


def test_liveness_rules():
    now = time.time()
    me = {"host": "h", "pid": os.getpid(), "since": now}
    assert holder_alive(me, now, host="h", stale_after=60)
    assert not holder_alive(me, now - 120, host="h", stale_after=60)  # stale heartbeat
    other = {"host": "elsewhere", "pid": 999_999_999, "since": now}
    assert holder_alive(other, now, host="h", stale_after=60)  # a pid elsewhere is not ours
    assert not holder_alive({**me, "pid_start": -1.0}, now, host="h", stale_after=60)  # reused
    assert not holder_alive(None, now, host="h", stale_after=60)


def test_completed_is_not_reserved(store):
    trial = "r" * 64
    store.try_append(
        trial_id=trial,
        event=(first_seq(1), "status", time.time(), encode({"status": "completed"})),
        fields={"status": "completed"},
    )
    with pytest.raises(NotReservable, match="completed"):
        reserve(store, trial, runner=runner_identity("h"), stale_after=60)


# -- leases: a runner cut off from the journal fences itself (kleio.writer) -----------------


@pytest.fixture
def fenced(store, tmp_path):
    """A runner on host-a holding the trial, whose program (a real process) it has paused."""
    import subprocess
    import sys

    from kleio.spool import Spool
    from kleio.writer import Writer

    trial = "r" * 64
    me = runner_identity("host-a")
    got = reserve(store, trial, runner=me, stale_after=60)
    writer = Writer(store, trial, got.next_seq, Spool(str(tmp_path / "spool"), trial, 1), 0.1)
    writer.runner_info = me
    program = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    writer.child_pid = program.pid
    assert not writer.fence(lease=30, group=False)  # renewed just now: the lease holds
    writer.renewed -= 31
    assert writer.fence(lease=30, group=False)
    wait_for(lambda: state_of(program.pid) == "T", "the program to stop")
    yield writer, program
    program.kill()
    program.wait()


def state_of(pid):
    with open(f"/proc/{pid}/stat", "rb") as handle:
        return handle.read().rsplit(b")", 1)[1].split()[0].decode()


def test_a_fenced_runner_claims_the_next_execution_and_resumes(store, fenced):
    writer, program = fenced
    trial = "r" * 64
    writer._heartbeat(Heartbeat(time.time(), time.monotonic()))  # the journal answers: reclaim
    assert not writer.fenced and writer.displaced is None
    wait_for(lambda: state_of(program.pid) != "T", "the program to continue")
    assert writer.next_seq == first_seq(2) + 1 and writer.spool.execution == 2
    last = store.last_status(trial_id=trial)
    assert (last.seq, last.data["status"], last.data["resumed"]) == (
        first_seq(2),
        "running",
        "lease renewed",
    )
    doc = store.get_trial(trial_id=trial)
    assert doc["status"] == "running" and doc["runner"] == writer.runner_info


def test_a_fenced_runner_taken_over_meanwhile_yields(store, fenced):
    writer, program = fenced
    trial = "r" * 64
    taker = runner_identity("host-b")
    store.update_trial(trial_id=trial, fields={"heartbeat_at": time.time() - 120})
    # Host b judges only by time (another host): the heartbeat and the events are stale.
    assert reserve(store, trial, runner=taker, stale_after=1e-6).execution == 2
    writer._fields({"status": "running", "heartbeat_at": time.time()})  # fenced: spooled
    writer._heartbeat(Heartbeat(time.time(), time.monotonic()))
    assert writer.displaced["host"] == "host-b" and not writer.fenced
    assert program.wait(timeout=30) == -15  # SIGTERM, delivered once it could continue
    doc = store.get_trial(trial_id=trial)
    assert doc["runner"] == taker and doc["status"] == "reserved"
    # What the fenced runner spooled replays under its own execution: the taker's stands.
    writer.spool.replay(store)
    assert store.get_trial(trial_id=trial)["runner"] == taker
    assert store.last_status(trial_id=trial).data["status"] == "reserved"


def test_the_journal_names_the_holder_when_the_document_lags(store):
    """On MongoDB the document's runner is written after the status event: a reader between
    the two must not take a live trial over from the dead runner the document still names."""
    trial = "r" * 64
    store.try_append(
        trial_id=trial,
        event=(first_seq(1), "status", time.time(), encode({"status": "running", **dead_runner()})),
        fields={"status": "running", "runner": dead_runner(), "heartbeat_at": time.time()},
    )
    taker = runner_identity("host-a")  # this process: alive
    store.try_append(
        trial_id=trial,
        event=(
            first_seq(2),
            "status",
            time.time(),
            encode({"status": "failover", "runner": dead_runner(), "by": taker}),
        ),
    )
    store.try_append(
        trial_id=trial,
        event=(
            first_seq(2) + 1,
            "status",
            time.time(),
            encode({"status": "reserved", "runner": taker}),
        ),
    )  # its fields not written yet
    with pytest.raises(TrialBusy, match=f"pid {os.getpid()}"):
        reserve(store, trial, runner=runner_identity("host-a"), stale_after=60)
    statuses = [e.data["status"] for e in store.read_events(trial_id=trial, kinds=("status",))]
    assert statuses == ["new", "running", "failover", "reserved"]  # no second takeover


def test_one_host_name_for_runners_and_the_host_snapshot(monkeypatch):
    from kleio.reservation import hostname
    from kleio.snapshot.host import host_snapshot

    monkeypatch.delenv("KLEIO_HOSTNAME", raising=False)
    assert hostname() == os.uname().nodename
    assert hostname("login-node") == "login-node"
    monkeypatch.setenv("KLEIO_HOSTNAME", "node-7")
    assert hostname() == "node-7"
    assert hostname("login-node") == "login-node"  # the setting, already resolved, wins
    assert host_snapshot("")["hostname"] == "node-7"
    assert host_snapshot("given")["hostname"] == hostname("given")
