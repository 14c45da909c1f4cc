"""End-to-end tests of ``kleio worker`` through the real entry point."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from kleio import errors
from tests.cli.saving import append_script, ls, save
from tests.conftest import run_kleio, write


def test_three_worker_processes_run_eight_trials_exactly_once(git_repo, db_uri, tmp_path):
    out = tmp_path / "ran.txt"
    append_script(git_repo, out)
    ids = [save(git_repo, "python", "append.py", "--i", str(i)) for i in range(8)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "kleio", "worker"],
            cwd=git_repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=60) for proc in workers]
    assert [proc.returncode for proc in workers] == [0, 0, 0], outputs
    assert sorted(out.read_text().splitlines()) == sorted(f"--i {i}" for i in range(8))
    rows = ls(git_repo)
    assert {rows[i]["status"] for i in ids} == {"completed"}
    ran = sum(err.count("completed (exit code 0") for _, err in outputs)
    assert ran == 8
    assert all("stopped: nothing left to run" in err for _, err in outputs)
    # The children's output went through each worker's stdout.
    assert sorted(line for o, _ in outputs for line in o.splitlines()) == sorted(
        f"ran --i {i}" for i in range(8)
    )


def test_worker_tags_max_trials_and_exit_codes(git_repo, db_uri, tmp_path):
    out = tmp_path / "ran.txt"
    append_script(git_repo, out)
    write(git_repo / "fail.py", "raise SystemExit(5)\n")
    a1 = save(git_repo, "--tag", "a", "python", "append.py", "a1")
    a2 = save(git_repo, "--tag", "a", "python", "append.py", "a2")
    b = save(git_repo, "--tag", "b", "python", "append.py", "b")
    broken = save(git_repo, "--tag", "a", "python", "fail.py")
    first = run_kleio("worker", "--tag", "a", "--max-trials", "1", cwd=git_repo)
    assert first.returncode == 0, first.stderr
    assert out.read_text() == "a1\n"
    assert f"trial {a1} completed (exit code 0" in first.stderr
    assert first.stderr.endswith("ran 1 trial (1 completed); stopped: reached --max-trials\n")
    rest = run_kleio("worker", "--tag", "a", cwd=git_repo)
    assert rest.returncode == 0  # a trial's own failure is journalled, not the worker's
    assert out.read_text() == "a1\na2\n"
    assert f"trial {broken} broken (exit code 5" in rest.stderr
    rows = ls(git_repo)
    assert (rows[a2]["status"], rows[b]["status"], rows[broken]["status"]) == (
        "completed",
        "new",
        "broken",
    )
    last = run_kleio("worker", cwd=git_repo)
    assert out.read_text() == "a1\na2\nb\n"
    assert "ran 1 trial" in last.stderr


def test_idle_timeout_picks_up_trials_saved_later(git_repo, db_uri, tmp_path):
    out = tmp_path / "ran.txt"
    append_script(git_repo, out)
    began = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kleio", "worker", "--idle-timeout", "2"],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    save(git_repo, "python", "append.py", "late")
    _, err = proc.communicate(timeout=30)
    elapsed = time.monotonic() - began
    assert proc.returncode == 0, err
    assert out.read_text() == "late\n"
    assert 2.4 < elapsed < 15
    assert "ran 1 trial (1 completed); stopped: nothing left to run" in err


def test_sigterm_interrupts_the_running_trial_and_stops_the_worker(git_repo, db_uri):
    write(
        git_repo / "wait.py",
        """
        import sys, time
        print("started", sys.argv[1], flush=True)
        time.sleep(30)
    """,
    )
    first = save(git_repo, "python", "wait.py", "1")
    second = save(git_repo, "python", "wait.py", "2")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kleio", "worker"],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "started 1\n"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped: interrupted" in err
    rows = ls(git_repo)
    assert rows[first]["status"] == "interrupted"  # resumable by any worker
    assert rows[second]["status"] == "new"


def test_worker_skips_a_trial_whose_command_held_secrets(git_repo, db_uri, tmp_path):
    write(git_repo / "stop.py", "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    run = run_kleio("python", "stop.py", "--password", "hunter2", cwd=git_repo)
    assert run.returncode == 128 + signal.SIGTERM
    [trial] = ls(git_repo)
    assert ls(git_repo)[trial]["status"] == "interrupted"
    result = run_kleio("worker", cwd=git_repo)
    assert result.returncode == errors.EXIT_SKIPPED
    assert f"warning: skipping trial {trial}" in result.stderr and "secrets" in result.stderr

    assert "ran 0 trials" in result.stderr


def test_sigint_stops_an_idle_worker(git_repo, db_uri):
    proc = subprocess.Popen(
        [sys.executable, "-m", "kleio", "worker", "--idle-timeout", "60"],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Once it says it waits, its signals are blocked and it is ready.
    waiting = "kleio worker: nothing to run; waiting up to 60 s for new trials\n"
    assert proc.stderr.readline() == waiting
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 128 + signal.SIGINT
    assert err == "kleio worker: ran 0 trials; stopped: interrupted\n"


def test_a_trial_dying_of_a_signal_on_its_own_does_not_stop_the_worker(git_repo, db_uri, tmp_path):
    out = tmp_path / "ran.txt"
    append_script(git_repo, out)
    write(
        git_repo / "suicide.py",
        """
        import os, signal
        os.kill(os.getpid(), signal.SIGTERM)
    """,
    )
    first = save(git_repo, "python", "suicide.py")
    second = save(git_repo, "python", "append.py", "--i", "2")
    result = run_kleio("worker", cwd=git_repo, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = ls(git_repo)
    assert rows[first]["status"] == "interrupted"
    assert rows[second]["status"] == "completed"
    assert out.read_text() == "--i 2\n"


def test_worker_never_runs_a_trial_with_changed_code(git_repo, db_uri, tmp_path):
    out = tmp_path / "ran.txt"
    append_script(git_repo, out)
    subprocess.run(["git", "add", "append.py"], cwd=git_repo, check=True)
    subprocess.run(["git", "commit", "-qm", "append"], cwd=git_repo, check=True)
    trial = save(git_repo, "python", "append.py", "--i", "1")
    with (git_repo / "append.py").open("a") as handle:
        handle.write("print('new code')\n")
    skipped = run_kleio("worker", cwd=git_repo, timeout=60)
    assert skipped.returncode == errors.EXIT_SKIPPED, skipped.stderr  # for a batch script
    assert f"skipping trial {trial}" in skipped.stderr
    assert "skipped 1 (listed above)" in skipped.stderr.splitlines()[-1]
    assert "append.py (+1 -0)" in skipped.stderr
    assert not out.exists()
    assert ls(git_repo)[trial]["status"] == "new"
    branched = run_kleio("worker", "--allow-code-change", cwd=git_repo, timeout=60)
    assert branched.returncode == 0, branched.stderr
    assert f"branched {trial} -> " in branched.stderr
    assert out.read_text() == "--i 1\n"
    rows = ls(git_repo)
    assert rows[trial]["status"] == "new"  # the parent keeps its own code, still resumable
    [child] = [row for row in rows.values() if row["parent"]]
    assert child["status"] == "completed" and child["parent"].startswith(trial)


def test_a_trial_that_cannot_be_executed_does_not_stop_the_worker(git_repo, db_uri, tmp_path):
    out = tmp_path / "ran.txt"
    append_script(git_repo, out)
    write(git_repo / "noshebang.sh", "echo no interpreter line\n")
    (git_repo / "noshebang.sh").chmod(0o755)
    broken = save(git_repo, "./noshebang.sh")
    fine = save(git_repo, "python", "append.py", "--i", "2")
    result = run_kleio("worker", cwd=git_repo, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = ls(git_repo)
    assert rows[broken]["status"] == "broken" and rows[broken]["exit_code"] == 126
    assert rows[fine]["status"] == "completed"
    assert out.read_text() == "--i 2\n"
    assert f"trial {broken} broken (exit code 126" in result.stderr
