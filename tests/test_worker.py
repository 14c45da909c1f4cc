"""The worker loop (:mod:`kleio.worker`) in-process, on SQLite and on MongoDB (mongomock).

Workers here run as threads with a stand-in ``execute`` (the real Runner waits for SIGCHLD,
which only one thread of a process can receive); the real entry point with real processes
is tested in ``tests/cli/test_save_worker.py``. On MongoDB, several ``MongoDBStore``
instances share one mongomock client: threads of one process, not several machines, so these
tests check the worker's logic (every trial once, tags, limits, failover); cross-process
races on a real server are covered by the contract suite's reservation tests when
``KLEIO_TEST_MONGODB_URI`` is set.
"""

from __future__ import annotations

import functools
import io
import os
import subprocess
import sys
import threading
import time

import pytest

from kleio.config import load_config
from kleio.reservation import reserve, runner_identity
from kleio.storage import open_store
from kleio.storage.base import SCHEMA_VERSION, encode
from kleio.trial import build_trial, store_trial
from kleio.worker import Worker, WorkerOptions, find_candidates, summary

BACKENDS = ["sqlite", "mongomock"]


@pytest.fixture(scope="module")
def atomic_mongomock():
    """Make mongomock's insert atomic across threads, as a server's unique ``_id`` is.

    mongomock checks for an existing ``_id`` and then stores the document, without a lock:
    two threads can both "win" the same key. A real server never does that.
    """
    mongomock = pytest.importorskip("mongomock")
    original = mongomock.collection.Collection._insert
    lock = threading.RLock()

    @functools.wraps(original)
    def _insert(self, *args, **kwargs):
        with lock:
            return original(self, *args, **kwargs)

    mongomock.collection.Collection._insert = _insert
    yield
    mongomock.collection.Collection._insert = original


@pytest.fixture(params=BACKENDS)
def stores(request, tmp_path):
    """A factory of stores on one journal (one store per worker thread)."""
    opened = []
    if request.param == "sqlite":
        uri = "sqlite://" + str(tmp_path / "journal.db")

        def make():
            opened.append(open_store(uri))
            return opened[-1]
    else:
        request.getfixturevalue("atomic_mongomock")
        from kleio.storage.mongodb import MongoDBStore
        from tests.storage.test_mongodb import mongomock_client

        client = mongomock_client()

        def make():
            opened.append(MongoDBStore("mongodb://localhost/kleio_worker", client=client))
            return opened[-1]

    yield make
    for store in opened:
        store.close()


def config(**env):
    values = {"KLEIO_HOSTNAME": "host-b", "KLEIO_STALE_AFTER": "60", **env}
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        return load_config({"db": "sqlite:///unused"})
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def save(store, n, argv, cwd, *, tags=(), created_at=None, redacted=False):
    """Register a trial like ``kleio save``, with the snapshots of this checkout."""
    now = time.time() if created_at is None else created_at
    trial_id = f"{n:04x}" + "ab" * 30
    snap, _ = build_trial(list(argv), str(cwd), load_config())
    doc = {
        "schema_version": SCHEMA_VERSION, "id": trial_id, "created_at": now,
        "project": str(cwd), "root": None, "command": list(argv), "argv": list(argv),
        "cwd": str(cwd), "config": {}, "config_files": {}, "redacted": redacted,
        "parent": None, "tags": sorted(tags), "code": snap["code"], "env": snap["env"],
        "host": snap["host"],
        "status": "new", "status_at": now, "heartbeat_at": None, "runner": None,
        "started_at": None, "ended_at": None, "exit_code": None,
    }
    assert store_trial(store, doc, {})
    return trial_id


def finish(store, trial_id, reservation, code, when=None):
    """Journal the end of a run the way the Runner does."""
    when = time.time() if when is None else when
    status = "completed" if code == 0 else "broken"
    seq = reservation.next_seq
    store.append_events(trial_id=trial_id, events=[
        (seq, "status", when, encode({"status": "running"})),
        (seq + 1, "status", when, encode({"status": status, "exit_code": code})),
    ])
    store.update_trial(trial_id=trial_id, fields={"status": status, "status_at": when,
                                                  "exit_code": code, "ended_at": when})


def run_process(store, config, doc, reserved, argv, cwd):
    """A stand-in for the Runner: run the recorded command, journal its end."""
    code = subprocess.run(argv, cwd=cwd).returncode
    finish(store, doc["id"], reserved.reservation, code)
    return code


def appender(path, label):
    return [sys.executable, "-c",
            f"open({str(path)!r}, 'a').write({label!r} + '\\n')"]


def worker(store, options=None, execute=run_process, **env):
    return Worker(store, config(**env), options or WorkerOptions(), execute=execute,
                  handle_signals=False, log=open(os.devnull, "w"))


def test_three_workers_run_each_of_eight_trials_once(stores, tmp_path):
    store = stores()
    out = tmp_path / "ran.txt"
    ids = [save(store, i, appender(out, f"trial {i}"), tmp_path) for i in range(8)]
    barrier = threading.Barrier(3)
    results = []

    def slow(store, config, doc, reserved, argv, cwd):
        time.sleep(0.02)  # let the others race for the next ones meanwhile
        return run_process(store, config, doc, reserved, argv, cwd)

    def one():
        w = worker(stores(), execute=slow)
        barrier.wait()
        results.append(w.run())

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    lines = out.read_text().splitlines()
    assert sorted(lines) == sorted(f"trial {i}" for i in range(8))
    assert sorted(r.trial_id for result in results for r in result.runs) == sorted(ids)
    assert all(result.stopped == "idle" for result in results)
    assert {doc["status"] for doc in store.find_trials()} == {"completed"}


def test_oldest_first_tags_and_max_trials(stores, tmp_path):
    store = stores()
    out = tmp_path / "ran.txt"
    base = time.time() - 100
    save(store, 1, appender(out, "a1"), tmp_path, tags=["a"], created_at=base + 3)
    save(store, 2, appender(out, "a2"), tmp_path, tags=["a", "b"], created_at=base + 1)
    save(store, 3, appender(out, "b3"), tmp_path, tags=["b"], created_at=base + 2)
    result = worker(store, WorkerOptions(tags=["a"], max_trials=1)).run()
    assert result.stopped == "max-trials"
    assert out.read_text() == "a2\n"
    result = worker(store, WorkerOptions(tags=["a", "b"])).run()
    assert result.runs == [] and result.stopped == "idle"
    worker(store, WorkerOptions(tags=["a"])).run()
    assert out.read_text() == "a2\na1\n"
    result = worker(store).run()
    assert out.read_text() == "a2\na1\nb3\n"
    assert summary(result) == "ran 1 trial (1 completed); stopped: nothing left to run"


def test_idle_timeout_waits_for_new_trials(stores, tmp_path):
    store = stores()
    out = tmp_path / "ran.txt"

    class SaveWhenWaiting(io.StringIO):
        """The worker's log: a trial arrives once the worker says it waits (no sleeps)."""

        def write(self, text):
            if "waiting up to" in text and not out.exists():
                save(store, 1, appender(out, "late"), tmp_path)
            return super().write(text)

    log = SaveWhenWaiting()
    w = Worker(store, config(), WorkerOptions(idle_timeout=30, poll_interval=0.05),
               execute=run_process, handle_signals=False, log=log)
    w.options.max_trials = 1  # then stop, rather than wait 30 s more
    result = w.run()
    assert out.read_text() == "late\n"
    assert result.stopped == "max-trials" and len(result.runs) == 1
    assert log.getvalue().count("waiting up to 30 s") == 1



def test_stop_ends_an_idle_worker(stores):
    w = worker(stores(), WorkerOptions(idle_timeout=30, poll_interval=0.05))
    thread = threading.Thread(target=lambda: setattr(w, "result", w.run()))
    thread.start()
    time.sleep(0.1)
    w.stop()
    thread.join(5)
    assert w.result.stopped == "interrupted"


def test_skips_redacted_and_missing_commands_and_runs_the_rest(stores, tmp_path, capsys):
    store = stores()
    out = tmp_path / "ran.txt"
    save(store, 1, ["python", "job.py", "--password", "***"], tmp_path, redacted=True)
    save(store, 2, ["no-such-program-kleio"], tmp_path)
    save(store, 3, appender(out, "ok"), tmp_path)
    w = Worker(store, config(), WorkerOptions(), execute=run_process, handle_signals=False)
    result = w.run()
    assert [r.status for r in result.runs] == ["completed"]
    err = capsys.readouterr().err
    assert "skipping trial 0001aba" in err and "secrets" in err
    assert "skipping trial 0002aba" in err and "command not found" in err
    assert {doc["status"] for doc in store.find_trials(statuses=["new"])} == {"new"}
    assert out.read_text() == "ok\n"


def test_broken_trials_need_allow_broken_and_run_once(stores, tmp_path):
    store = stores()
    fail = [sys.executable, "-c", "raise SystemExit(3)"]
    trial = save(store, 1, fail, tmp_path)
    result = worker(store).run()
    assert [(r.status, r.exit_code) for r in result.runs] == [("broken", 3)]
    assert worker(store).run().runs == []
    # Broken before this worker started: run again, once (it breaks again).
    result = worker(store, WorkerOptions(allow_broken=True)).run()
    assert [r.trial_id for r in result.runs] == [trial]


def hold(store, trial_id, *, host, pid, heartbeat_age):
    """Make a trial held by a runner, with a heartbeat ``heartbeat_age`` seconds old."""
    runner = runner_identity(host)
    runner.update(pid=pid, pid_start=None)
    reservation = reserve(store, trial_id, runner=runner, stale_after=60)
    beat = time.time() - heartbeat_age
    store.update_trial(trial_id=trial_id, fields={"status": "running", "heartbeat_at": beat})
    return reservation


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
