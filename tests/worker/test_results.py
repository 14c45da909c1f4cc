"""kleio.worker.results: how a run ended, and the worker's one summary line."""

from __future__ import annotations

import signal

from kleio.worker.results import TrialRun, WorkerResult, run_status, summary


def test_the_journalled_status_wins_over_the_exit_code():
    assert run_status({"status": "interrupted", "stopped_by": 15}, 0) == ("interrupted", 15)
    assert run_status({"status": "completed"}, 1) == ("completed", None)


def test_without_a_final_status_the_exit_code_tells():
    assert run_status(None, 0) == ("completed", None)
    assert run_status({"status": "running"}, 3) == ("broken", None)
    assert run_status(None, 128 + signal.SIGTERM) == ("interrupted", signal.SIGTERM)
    assert run_status(None, 128 + signal.SIGKILL) == ("broken", None)  # not an interrupt


def test_summary_counts_by_status():
    runs = [
        TrialRun("a", "completed", 0, 1.0),
        TrialRun("b", "broken", 1, 1.0),
        TrialRun("c", "completed", 0, 1.0),
    ]
    result = WorkerResult(runs=runs, stopped="max-trials", skipped=["d"])
    assert summary(result) == (
        "ran 3 trials (1 broken, 2 completed); skipped 1 (listed "
        "above); stopped: reached --max-trials"
    )
    assert summary(WorkerResult()) == "ran 0 trials; stopped: nothing left to run"
