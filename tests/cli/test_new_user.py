"""What a new user meets first: Ctrl-C on the commands that run until stopped, and the example."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from kleio import cli
from tests.conftest import run_kleio, write

ROOT = Path(__file__).resolve().parents[2]


def kleio_process(*args, cwd, stdin=None):
    return subprocess.Popen(
        [sys.executable, "-m", "kleio", *args],
        cwd=cwd,
        text=True,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def interrupt(proc):
    """SIGINT, as Ctrl-C sends it; the process's exit code and stderr."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


def test_ctrl_c_stops_tail_f_with_130_and_no_error_line(git_repo, db_uri):
    write(
        git_repo / "waits.py",
        """
        import sys
        print("ready", flush=True)
        sys.stdin.read()  # until the test closes it
        print("done", flush=True)
    """,
    )
    run = kleio_process("python", "waits.py", cwd=git_repo, stdin=subprocess.PIPE)
    try:
        assert run.stdout.readline() == "ready\n"
        listed = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)
        follow = kleio_process("tail", "-f", "-n", "1", listed[0]["id"], cwd=git_repo)
        assert follow.stdout.readline() == "ready\n"  # following, the trial still running
        code, err = interrupt(follow)
        assert code == 130
        assert "error" not in err, err
    finally:
        run.communicate(timeout=60)  # closes its stdin: the program ends
    assert run.returncode == 0


def test_ctrl_c_stops_ui_with_130_and_no_error_line(git_repo, db_uri):
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    assert run_kleio("python", "-c", "print(1)", cwd=git_repo).returncode == 0
    ui = kleio_process("ui", "--port", "0", cwd=git_repo)
    try:
        first = ui.stdout.readline()  # "kleio ui: URI at http://127.0.0.1:PORT/"
        url = first.rsplit(" at ", 1)[1].strip()
        assert ui.stdout.readline().startswith("read-only; press Ctrl-C to stop")
        with urllib.request.urlopen(url, timeout=30) as response:  # it is serving
            assert response.status == 200
        code, err = interrupt(ui)
    finally:
        if ui.poll() is None:
            ui.kill()
            ui.communicate()
    assert code == 130
    assert "error" not in err, err


def test_ctrl_c_elsewhere_still_says_interrupted(monkeypatch, capsys):
    import kleio.cli.ls as ls

    def interrupted(argv, flags):
        raise KeyboardInterrupt

    monkeypatch.setattr(ls, "main", interrupted)
    assert cli._main(["ls"]) == 130
    assert capsys.readouterr().err == "error: interrupted.\n"


def test_the_example_logs_and_declares_validation_metrics(tmp_path):
    """README's analysis commands rank by val_acc and plot val_loss: the example logs both."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "logistic_regression.py"), "--epochs", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "kleio: metrics val_loss=min val_acc=max (primary val_acc)"
    logged = [line for line in lines if line.startswith("kleio: statistic ")]
    assert len(logged) == 2
    for key in ("epoch=", "loss=", "acc=", "val_loss=", "val_acc="):
        assert f" {key}" in logged[0]


def test_info_in_a_repository_with_no_commit_yet(tmp_path, db_uri):
    repo = tmp_path / "fresh"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    write(repo / "train.py", "print('hello')\n")
    assert run_kleio("python", "train.py", cwd=repo).returncode == 0
    trial = json.loads(run_kleio("ls", "--json", cwd=repo).stdout)[0]["id"]
    shown = run_kleio("info", trial, cwd=repo).stdout
    assert "  commit     (none yet)  branch main\n" in shown
    assert "None" not in shown
