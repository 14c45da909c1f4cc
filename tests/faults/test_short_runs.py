"""Hundreds of short runs: every exit code, final status and output line right.

The exit race of issue 7 (the I/O thread closing its wake pipe while the main thread wrote
to it, the store closed under the writer) broke about 2 % of such runs. Runs go a few at a
time; each command differs, so each is a new trial.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from kleio.storage import open_store
from tests.faults.helpers import TOTALS, count_lost, kleio_argv

SHELL_RUNS = 160
PYTHON_RUNS = 40
PARALLEL = 4
CODES = [0, 1, 2, 0, 3, 42, 0, 127, 255, 0]
STATISTICS = 50


def shell(i: int) -> tuple[list[str], int]:
    if i % 40 == 13:
        return ["sh", "-c", f"echo out-{i}; echo err-{i} >&2; kill -KILL $$"], 137
    if i % 40 == 27:
        return ["sh", "-c", f"echo out-{i}; echo err-{i} >&2; kill -SEGV $$"], 139
    code = CODES[i % len(CODES)]
    return ["sh", "-c", f"echo out-{i}; echo err-{i} >&2; exit {code}"], code


def python(i: int) -> tuple[list[str], int]:
    code = CODES[i % len(CODES)]
    source = (
        "import sys\n"
        "from kleio.client.logger import kleio_logger as k\n"
        f"for n in range({STATISTICS}): k.log_statistic(run={i}, n=n)\n"
        f"print('out-{i}'); print('err-{i}', file=sys.stderr)\n"
        f"sys.exit({code})\n"
    )
    return [sys.executable, "-c", source], code


@pytest.mark.slow
def test_hundreds_of_short_runs(lab):
    cases = [shell(i) for i in range(SHELL_RUNS)]
    cases += [python(i) for i in range(SHELL_RUNS, SHELL_RUNS + PYTHON_RUNS)]

    def run(case):
        argv, _ = case
        return subprocess.run(
            kleio_argv("run", "-q", *argv),
            cwd=lab.repo,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(run, cases))
    TOTALS["runs"] += len(cases)

    wrong_codes = [
        (i, r.returncode, code, r.stderr[-300:])
        for i, (r, (_, code)) in enumerate(zip(results, cases))
        if r.returncode != code
    ]
    assert not wrong_codes, (
        f"{len(wrong_codes)} of {len(cases)} exit codes wrong: {wrong_codes[:3]}"
    )
    not_teed = [
        i for i, r in enumerate(results) if f"out-{i}" not in r.stdout or f"err-{i}" not in r.stderr
    ]
    assert not not_teed, f"output not passed through for runs {not_teed[:10]}"
    unexpected = [
        (i, r.stderr) for i, r in enumerate(results) if "warning" in r.stderr or "error" in r.stderr
    ]
    assert not unexpected, f"{len(unexpected)} runs told of problems: {unexpected[:3]}"

    with open_store(lab.db) as store:
        trials = {tuple(doc["argv"]): doc for doc in store.find_trials()}
        assert len(trials) == len(cases)
        wrong_status, wrong_lines = [], []
        acknowledged, stored = [], []
        for i, (argv, code) in enumerate(cases):
            doc = trials[tuple(argv)]
            expected = "completed" if code == 0 else "broken"
            status = store.last_status(trial_id=doc["id"])
            if (
                doc["status"],
                doc.get("exit_code"),
                status.data.get("status"),
                status.data.get("exit_code"),
            ) != (expected, code, expected, code):
                wrong_status.append((i, doc["status"], doc.get("exit_code"), status.data))
            events = store.read_events(trial_id=doc["id"])
            lines = [(e.kind, e.data.get("line")) for e in events if e.kind in ("stdout", "stderr")]
            if (
                lines.count(("stdout", f"out-{i}")) != 1
                or lines.count(("stderr", f"err-{i}")) != 1
                or len(lines) != 2
            ):
                wrong_lines.append((i, lines))
            if argv[0] == sys.executable:
                acknowledged += [(i, n) for n in range(STATISTICS)]
                stored += [(e.data["run"], e.data["n"]) for e in events if e.kind == "statistic"]
    assert not wrong_status, f"{len(wrong_status)} final statuses wrong: {wrong_status[:3]}"
    assert not wrong_lines, f"{len(wrong_lines)} runs' output journalled wrong: {wrong_lines[:3]}"
    # Each run's acknowledged lines count too: two per run.
    TOTALS["acknowledged"] += 2 * len(cases)
    assert count_lost(acknowledged, stored) == (0, 0)
