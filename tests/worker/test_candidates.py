"""kleio.worker.candidates: which trials a worker may reserve (dead holders included)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from kleio.worker import find_candidates
from tests.worker.conftest import appender, hold, save, worker


def test_failover_of_a_stale_runner_on_another_host(stores, tmp_path):
    store = stores()
    out = tmp_path / "ran.txt"
    trial = save(store, 1, appender(out, "failed over"), tmp_path)
    hold(store, trial, host="host-a", pid=os.getpid(), heartbeat_age=5)
    # Fresh enough (stale after 60 s) and on another host: the pid cannot be checked.
    assert find_candidates(store, tags=[], host="host-b", stale_after=60) == []
    assert worker(store).run().runs == []
    # Stale (after 1 s): failed over by host-b.
    [candidate] = find_candidates(store, tags=[], host="host-b", stale_after=1)
    assert candidate["id"] == trial
    result = worker(store, KLEIO_STALE_AFTER="1").run()
    assert [r.status for r in result.runs] == ["completed"]
    statuses = [e.data["status"] for e in store.read_events(trial_id=trial, kinds=["status"])]
    assert statuses == ["new", "reserved", "failover", "reserved", "running", "completed"]
    assert out.read_text() == "failed over\n"


def test_dead_pid_on_the_same_host_is_failed_over_at_once(stores, tmp_path):
    store = stores()
    trial = save(store, 1, [sys.executable, "-c", "pass"], tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    hold(store, trial, host="host-b", pid=gone.pid, heartbeat_age=0)
    # Fresh heartbeat, but host-b can see that the pid is gone.
    assert find_candidates(store, tags=[], host="host-a", stale_after=60) == []
    [candidate] = find_candidates(store, tags=[], host="host-b", stale_after=60)
    assert candidate["id"] == trial
    assert [r.trial_id for r in worker(store).run().runs] == [trial]


def test_candidates_are_limited_in_the_query(stores, tmp_path):
    store = stores()
    base = time.time() - 100
    for i in range(30):
        save(store, i, ["true"], tmp_path, created_at=base + i)
    first = find_candidates(store, tags=[], host="h", stale_after=60, limit=4)
    assert [doc["id"][:4] for doc in first] == ["0000", "0001", "0002", "0003"]
    skip = {doc["id"] for doc in first}
    after = find_candidates(store, tags=[], host="h", stale_after=60, limit=2, exclude=skip)
    assert [doc["id"][:4] for doc in after] == ["0004", "0005"]
