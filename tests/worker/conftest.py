"""What the worker tests share: journals (SQLite, mongomock) and workers, in-process.

Workers here run as threads with a stand-in ``execute`` (the real Runner waits for SIGCHLD,
which only one thread of a process can receive); the real entry point with real processes
is tested in ``tests/cli/test_worker.py``. On MongoDB, several ``MongoDBStore``
instances share one mongomock client: threads of one process, not several machines, so these
tests check the worker's logic (every trial once, tags, limits, failover); cross-process
races on a real server are covered by the contract suite's reservation tests when
``KLEIO_TEST_MONGODB_URI`` is set.
"""

from __future__ import annotations

import functools
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
from kleio.worker import Worker, WorkerOptions

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
        "schema_version": SCHEMA_VERSION,
        "id": trial_id,
        "created_at": now,
        "project": str(cwd),
        "root": None,
        "command": list(argv),
        "argv": list(argv),
        "cwd": str(cwd),
        "config": {},
        "config_files": {},
        "redacted": redacted,
        "parent": None,
        "tags": sorted(tags),
        "code": snap["code"],
        "env": snap["env"],
        "host": snap["host"],
        "status": "new",
        "status_at": now,
        "heartbeat_at": None,
        "runner": None,
        "started_at": None,
        "ended_at": None,
        "exit_code": None,
    }
    assert store_trial(store, doc, {})
    return trial_id


def finish(store, trial_id, reservation, code, when=None):
    """Journal the end of a run the way the Runner does."""
    when = time.time() if when is None else when
    status = "completed" if code == 0 else "broken"
    seq = reservation.next_seq
    store.append_events(
        trial_id=trial_id,
        events=[
            (seq, "status", when, encode({"status": "running"})),
            (seq + 1, "status", when, encode({"status": status, "exit_code": code})),
        ],
    )
    store.update_trial(
        trial_id=trial_id,
        fields={"status": status, "status_at": when, "exit_code": code, "ended_at": when},
    )


def run_process(store, config, doc, reserved, argv, cwd):
    """A stand-in for the Runner: run the recorded command, journal its end."""
    code = subprocess.run(argv, cwd=cwd).returncode
    finish(store, doc["id"], reserved.reservation, code)
    return code


def appender(path, label):
    return [sys.executable, "-c", f"open({str(path)!r}, 'a').write({label!r} + '\\n')"]


def worker(store, options=None, execute=run_process, **env):
    return Worker(
        store,
        config(**env),
        options or WorkerOptions(),
        execute=execute,
        handle_signals=False,
        log=open(os.devnull, "w"),
    )


def hold(store, trial_id, *, host, pid, heartbeat_age):
    """Make a trial held by a runner, with a heartbeat ``heartbeat_age`` seconds old."""
    runner = runner_identity(host)
    runner.update(pid=pid, pid_start=None)
    reservation = reserve(store, trial_id, runner=runner, stale_after=60)
    beat = time.time() - heartbeat_age
    store.update_trial(trial_id=trial_id, fields={"status": "running", "heartbeat_at": beat})
    return reservation
