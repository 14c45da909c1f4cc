"""A journal locked by another process while the program logs.

Another connection holds SQLite's write lock (``BEGIN IMMEDIATE``) from before the program's
first call until after its last: the program must finish every call while the lock is still
held (its records wait in the ledger, never in the call), and everything must arrive once
the lock is released. The slowest call is measured inside the program and bounded
generously (0.5 s; before the ledger a call could wait out the 10 s busy timeout).
"""

from __future__ import annotations

import os
import sqlite3
import sys

from kleio.storage import open_store, sqlite_path
from tests.faults import programs
from tests.faults.helpers import (
    TOTALS,
    Run,
    exactly_once,
    info,
    kleio,
    read_report,
    wait_for,
    wait_gone,
)

CALLS = 200_000  # about a second and a half of calls: the lock is held all along


def journalled(lab, trial: str) -> list[int]:
    """The statistics' ``i`` as stored (read with the store: faster than ``cat`` here)."""
    with open_store(lab.db) as store:
        return [e.data["i"] for e in store.read_events(trial_id=trial, kinds=("statistic",))]


def run_under_lock(lab, calls: int, lines: int) -> tuple[Run, dict, dict]:
    """Run the program; hold the write lock from before its first call until after its last.

    The lock is released early only when the program reports a print stuck for 0.5 s.
    """
    lab.program("locked.py", programs.LOCKED)
    run = Run(
        ["run", "-q", sys.executable, "locked.py", lab.state, str(calls), str(lines)],
        cwd=lab.repo,
        out_dir=lab.tmp,
    )
    ready = wait_for(
        lambda: read_report(lab.state, "ready") or run.proc.poll() is not None,
        "the program to start",
    )
    assert isinstance(ready, dict), run.stderr
    lab.pids.append(ready["pid"])
    lock = sqlite3.connect(sqlite_path(lab.db), isolation_level=None, timeout=30)
    try:
        lock.execute("BEGIN IMMEDIATE")
        open(os.path.join(lab.state, "locked"), "w").close()
        done = wait_for(
            lambda: (
                read_report(lab.state, "done")
                or read_report(lab.state, "stuck")
                or run.proc.poll() is not None
            ),
            f"the program's {calls} calls under the lock",
        )
        assert isinstance(done, dict), f"kleio ended first:\n{run.stderr}"
        if "stuck" not in done:  # every call returned while we held the lock
            assert done["lock_held"] and lock.in_transaction
    finally:
        open(os.path.join(lab.state, "released"), "w").close()
        lock.execute("ROLLBACK")
        lock.close()
    return run, ready, done


def test_locked_journal_never_blocks_a_call(lab):
    run, ready, done = run_under_lock(lab, CALLS, 0)
    TOTALS["locked_calls_max_ms"] = max(TOTALS["locked_calls_max_ms"], int(done["max_call"] * 1000))
    assert done["max_call"] < 0.5, f"a log_statistic call took {done['max_call']:.3f} s"
    code = run.wait()
    assert code == 0, run.stderr
    exactly_once(journalled(lab, ready["trial"]), CALLS)
    assert info(ready["trial"], lab.repo)["status"] == "completed"


def test_locked_journal_never_blocks_output(lab, monkeypatch):
    # Frequent heartbeats: the writer meets the lock within 50 ms, long before the prints.
    monkeypatch.setenv("KLEIO_HEARTBEAT_INTERVAL", "0.05")
    lines = 3000  # more than the pipe and the writer's queue hold
    run, ready, done = run_under_lock(lab, 50 * lines, lines)
    assert run.wait() == 0, run.stderr
    assert "stuck" not in done, f"a print() waited {done.get('stuck', 0):.2f} s and more"
    assert done["max_print"] < 0.5, f"a print() took {done['max_print']:.3f} s"
    doc = info(ready["trial"], lab.repo)
    assert doc["counts"]["stdout"] == len(run.stdout.splitlines()) == lines


def test_runner_killed_while_the_journal_is_locked(lab):
    """A runner killed while the journal is unwritable leaves everything to ``kleio sync``."""
    lab.program("locked.py", programs.LOCKED)
    run = Run(
        ["run", "-q", sys.executable, "locked.py", lab.state, str(CALLS // 2), "0"],
        cwd=lab.repo,
        out_dir=lab.tmp,
    )
    ready = wait_for(
        lambda: read_report(lab.state, "ready") or run.proc.poll() is not None,
        "the program to start",
    )
    assert isinstance(ready, dict), run.stderr
    lab.pids.append(ready["pid"])
    lock = sqlite3.connect(sqlite_path(lab.db), isolation_level=None, timeout=30)
    try:
        lock.execute("BEGIN IMMEDIATE")
        open(os.path.join(lab.state, "locked"), "w").close()
        done = wait_for(
            lambda: read_report(lab.state, "done") or run.proc.poll() is not None,
            "the program's calls under the lock",
        )
        assert isinstance(done, dict), f"kleio ended first:\n{run.stderr}"
        run.kill()  # the runner waits on the lock for the journal: it dies holding it all
        wait_gone(ready["pid"])
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    result = kleio("sync", cwd=lab.repo)
    assert result.returncode == 0, result.stderr
    exactly_once(journalled(lab, ready["trial"]), CALLS // 2)
    assert info(ready["trial"], lab.repo)["pending"] == []
