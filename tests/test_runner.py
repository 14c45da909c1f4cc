"""kleio.runner: the final status rule, nothing lost when the store fails, the start path."""

from __future__ import annotations

import os

import pytest

from kleio.errors import StoreUnavailable
from kleio.runner import final_status
from kleio.spool import Spool, leftover_files
from kleio.storage.base import encode
from kleio.writer import Heartbeat, Status, Stop, Writer
from tests.journals import FlakyStore, one_trial_journal


@pytest.mark.parametrize(
    "code, interrupted, stop, expected",
    [
        (0, None, False, "completed"),
        (1, None, False, "broken"),
        (137, None, False, "broken"),
        (130, None, False, "interrupted"),
        (143, 15, False, "interrupted"),
        (0, 15, False, "interrupted"),
        (0, None, True, "suspended"),
        (137, None, True, "suspended"),
    ],
)
def test_final_status_rule(code, interrupted, stop, expected):
    assert final_status(code, interrupted=interrupted, stop_requested=stop) == expected


@pytest.fixture
def journal(tmp_path):
    store = one_trial_journal(tmp_path / "k.db")
    yield store
    store.close()


def test_outage_mid_run_spools_then_replays(journal, tmp_path):
    flaky = FlakyStore(journal)
    writer = Writer(flaky, "t" * 64, 1 << 32, Spool(str(tmp_path / "spool"), "t" * 64, 1), 0.05)
    writer.start()
    writer.events("statistic", 1.0, [encode({"i": i}) for i in range(100)])
    writer.send(Heartbeat(2.0))
    flaky.down = True
    writer.events("statistic", 3.0, [encode({"i": i}) for i in range(100, 250)])
    writer.send(Status("running", 3.5, {}, {}))
    writer.send(Heartbeat(4.0))
    flaky.down = False
    writer.events("statistic", 5.0, [encode({"i": i}) for i in range(250, 300)])
    writer.send(Stop())
    writer.join(timeout=10)
    assert writer.finish()
    stats = journal.read_events(trial_id="t" * 64, kinds=("statistic",))
    assert [e.data["i"] for e in stats] == list(range(300))
    assert journal.last_status(trial_id="t" * 64).data["status"] == "running"
    assert leftover_files(str(tmp_path / "spool")) == []


def test_storage_failure_never_changes_the_exit_code(journal, tmp_path, monkeypatch):
    """The store fails for a while mid-run: exit code, output and every event survive."""
    import sys

    from kleio.config import load_config
    from kleio.runner import Runner

    class Window(FlakyStore):
        def _check(self):
            self.calls += 1
            if 2 <= self.calls <= 6:
                raise StoreUnavailable("injected outage")

    config = load_config({"db": "sqlite://" + str(tmp_path / "k.db")})
    config = config.replace(
        spool_dir=str(tmp_path / "spool"), flush_interval=0.02, heartbeat_interval=0.05
    )
    flaky = Window(journal)
    child = (
        "import time\nfrom kleio.client.logger import kleio_logger as k\n"
        "for i in range(50):\n    k.log_statistic(i=i)\n    time.sleep(0.01)\n"
        "print('done')\nraise SystemExit(5)\n"
    )
    runner = Runner(
        store=flaky,
        trial_id="t" * 64,
        execution=1,
        next_seq=(1 << 32) + 1,
        argv=[sys.executable, "-c", child],
        cwd=str(tmp_path),
        config=config,
        runner_info={"host": "h", "pid": os.getpid()},
    )
    monkeypatch.setattr(Writer, "retry_interval", 0.05)
    code = runner.run()
    assert code == 5
    assert flaky.calls > 6, "the outage window was never reached"
    stats = journal.read_events(trial_id="t" * 64, kinds=("statistic",))
    assert [e.data["i"] for e in stats] == list(range(50))
    assert [e.data["line"] for e in journal.read_events(trial_id="t" * 64, kinds=("stdout",))] == [
        "done"
    ]
    assert journal.last_status(trial_id="t" * 64).data["status"] == "broken"
    assert leftover_files(str(tmp_path / "spool")) == []


#: Modules the start path must not import before the program starts: each costs a good part
#: of a bare interpreter's start (re, json and signal pull in enum; subprocess, threading...).
NOT_BEFORE_THE_PROGRAM = (
    "re",
    "json",
    "enum",
    "typing",
    "subprocess",
    "contextlib",
    "datetime",
    "ctypes",
    "threading",
    "queue",
    "socket",
    "selectors",
    "dataclasses",
    "signal",
    "importlib.metadata",
    "hashlib",
    "sqlite3.dbapi2",
)


@pytest.mark.parametrize(
    "origin", ["git@example.invalid:team/project.git", "https://example.invalid/team/project.git"]
)
def test_nothing_slow_is_imported_before_the_program_starts(git_repo, db_uri, origin):
    """``kleio python train.py`` up to its fork, in a fresh interpreter (a second run: the
    first fills the package-list cache): none of NOT_BEFORE_THE_PROGRAM is imported."""
    import subprocess
    import sys

    from tests.conftest import git

    git(git_repo, "remote", "set-url", "origin", origin)
    probe = (
        "import os, sys\n"
        "import kleio.runner as runner\n"
        "def stop(self, child, listener):\n"
        f"    print(sorted(m for m in {NOT_BEFORE_THE_PROGRAM!r} if m in sys.modules))\n"
        "    sys.stdout.flush()\n"
        "    os._exit(0)\n"
        "runner.Runner._start = stop\n"
        "from kleio.cli import main\n"
        "sys.argv = ['kleio', '-q', 'python', 'train.py', sys.argv[1]]\n"
        "main()\n"
    )
    # -S: this interpreter's own site (a .pth file may import anything) is not kleio's.
    probe = f"import sys\nsys.path[:0] = {sys.path!r}\n" + probe
    for run in ("--warm", "--measured"):
        result = subprocess.run(
            [sys.executable, "-S", "-c", probe, run], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


def test_the_exec_failure_hint_names_the_reason(tmp_path):
    import errno

    from kleio.runner import exec_hint

    script = tmp_path / "s.py"
    script.write_text("#!/nonexistent/python3 -u\nprint(1)\n", encoding="utf-8")
    missing = OSError(errno.ENOENT, "No such file or directory")
    assert "'#!' line names /nonexistent/python3" in exec_hint(missing, ["./s.py"], str(tmp_path))
    assert "'#!' line" in exec_hint(
        OSError(errno.ENOEXEC, "Exec format error"), ["./s.py"], str(tmp_path)
    )
    assert "chmod +x ./s.py" in exec_hint(
        OSError(errno.EACCES, "Permission denied"), ["./s.py"], str(tmp_path)
    )
    assert "longer than the system accepts" in exec_hint(
        OSError(errno.E2BIG, "Argument list too long"), ["./s.py"], str(tmp_path)
    )


def test_a_script_whose_interpreter_is_missing_is_told_so(git_repo, db_uri):
    from tests.conftest import git, run_kleio

    script = git_repo / "s.py"
    script.write_text("#!/nonexistent/python3\nprint(1)\n", encoding="utf-8")
    script.chmod(0o755)
    git(git_repo, "add", "s.py")
    git(git_repo, "commit", "-q", "-m", "script")
    done = run_kleio("run", "./s.py", cwd=git_repo)
    assert done.returncode == 126
    assert "Its '#!' line names /nonexistent/python3, which does not exist here" in done.stderr
