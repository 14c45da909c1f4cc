"""kleio.worker.loop: workers as threads run every trial once, oldest first, until told to stop."""

from __future__ import annotations

import io
import sys
import threading
import time

from kleio.worker import Worker, WorkerOptions, summary
from tests.worker.conftest import appender, config, run_process, save, worker


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
    w = Worker(
        store,
        config(),
        WorkerOptions(idle_timeout=30, poll_interval=0.05),
        execute=run_process,
        handle_signals=False,
        log=log,
    )
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
