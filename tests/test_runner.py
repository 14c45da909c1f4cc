"""kleio.runner: the final status rule, nothing lost when the store fails, the start path."""

from __future__ import annotations

import json
import os

import pytest

from kleio.errors import StoreUnavailable
from kleio.runner import final_status
from kleio.spool import Spool, leftover_files
from kleio.storage import open_store
from kleio.storage.base import encode
from kleio.writer import Heartbeat, Status, Stop, Writer
from tests.conftest import run_kleio


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


class FlakyStore:
    """Wraps a real store; writes fail while ``down`` is set (a fault-injecting store)."""

    def __init__(self, store, fail_after=0):
        self.store = store
        self.calls = 0
        self.fail_after = fail_after
        self.down = False

    def _check(self):
        self.calls += 1
        if self.down or (self.fail_after and self.calls > self.fail_after):
            raise StoreUnavailable("injected outage")

    def append_events(self, **kwargs):
        self._check()
        return self.store.append_events(**kwargs)

    def update_trial(self, **kwargs):
        self._check()
        return self.store.update_trial(**kwargs)

    def put_blob(self, **kwargs):
        self._check()
        return self.store.put_blob(**kwargs)

    def __getattr__(self, name):
        return getattr(self.store, name)


@pytest.fixture
def journal(tmp_path):
    store = open_store("sqlite://" + str(tmp_path / "k.db"))
    store.create_trial(
        doc={
            "schema_version": 1,
            "id": "t" * 64,
            "created_at": 1.0,
            "command": ["x"],
            "status": "new",
            "tags": [],
            "parent": None,
        }
    )
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


def test_store_still_down_at_exit_leaves_spool_for_sync(journal, tmp_path, monkeypatch):
    spool_dir = tmp_path / "spool"
    flaky = FlakyStore(journal)
    flaky.down = True
    writer = Writer(flaky, "t" * 64, 1 << 32, Spool(str(spool_dir), "t" * 64, 1), 0.05)
    writer.start()
    writer.events("stdout", 1.0, [encode({"line": f"line {i}"}) for i in range(10)])
    writer.send(Stop())
    writer.join(timeout=10)
    assert not writer.finish()
    [(path, pid)] = leftover_files(str(spool_dir))
    assert pid == os.getpid()
    # A dead runner's spool: rename it to a pid that cannot be alive, then `kleio sync`.
    dead = path.replace(f"-{pid}.jsonl", "-999999999.jsonl")
    os.rename(path, dead)
    monkeypatch.setenv("KLEIO_DB", "sqlite://" + str(tmp_path / "k.db"))
    monkeypatch.setenv("KLEIO_SPOOL_DIR", str(spool_dir))
    result = run_kleio("sync", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["replayed"][0]["events"] == 10
    lines = [e.data["line"] for e in journal.read_events(trial_id="t" * 64, kinds=("stdout",))]
    assert lines == [f"line {i}" for i in range(10)]
    again = run_kleio("sync")
    assert "nothing to sync" in again.stdout


def test_an_event_the_journal_refuses_never_stops_a_replay(journal, tmp_path, capsys):
    """A journal that refuses one event for what it holds (not an outage): the others are
    replayed and the file is done with, so that kleio sync cannot fail forever."""

    class Refusing:
        def __getattr__(self, name):
            return getattr(journal, name)

        def append_events(self, *, trial_id, events):
            if any("refuse-me" in event[3] for event in events):
                raise ValueError("document too large")
            return journal.append_events(trial_id=trial_id, events=events)

    spool = Spool(str(tmp_path / "s"), "t" * 64, 1)
    events = [((1 << 32) + i, "statistic", 1.0, encode({"i": i})) for i in range(5)]
    events[2] = ((1 << 32) + 2, "statistic", 1.0, encode({"i": "refuse-me"}))
    spool.add_events(events)
    assert spool.replay(Refusing()) == 4
    assert journal.count_events(trial_id="t" * 64, kind="statistic") == 4
    assert "the journal refused a statistic event" in capsys.readouterr().err
    assert leftover_files(str(tmp_path / "s")) == []


def test_replaying_twice_never_doubles(journal, tmp_path):
    spool = Spool(str(tmp_path / "s"), "t" * 64, 1)
    events = [((1 << 32) + i, "statistic", 1.0, encode({"i": i})) for i in range(5)]
    spool.add_events(events)
    journal.append_events(trial_id="t" * 64, events=events[:3])  # part made it before
    assert spool.replay(journal) == 2
    assert journal.count_events(trial_id="t" * 64, kind="statistic") == 5


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


def test_replay_of_a_dead_runner_never_overwrites_a_newer_execution(journal, tmp_path):
    trial = "t" * 64
    spool = Spool(str(tmp_path / "s"), trial, 1)
    spool.add_events([((1 << 32) + 5, "status", 1.0, encode({"status": "running"}))])
    spool.add_fields({"status": "running", "heartbeat_at": 1.0})
    # Meanwhile another runner took the trial over (execution 2) and completed it.
    journal.try_append(
        trial_id=trial,
        event=(2 << 32, "status", 2.0, encode({"status": "completed"})),
        fields={"status": "completed"},
    )
    spool.replay(journal)
    assert journal.get_trial(trial_id=trial)["status"] == "completed"
    assert journal.count_events(trial_id=trial, kind="status") == 2


def test_a_spool_being_replayed_elsewhere_is_skipped(journal, tmp_path):
    from filelock import FileLock

    from kleio.spool import replay_file

    spool = Spool(str(tmp_path / "s"), "t" * 64, 1)
    spool.add_events([((1 << 32), "statistic", 1.0, encode({"i": 0}))])
    spool.close()
    with FileLock(spool.path + ".lock"):
        assert replay_file(journal, spool.path) == 0  # another process holds it
    assert replay_file(journal, spool.path) == 1
    assert not os.path.exists(spool.path)
    assert replay_file(journal, spool.path) == 0  # already replayed: nothing, no error


def test_sync_removes_partial_artifacts_of_dead_runners(tmp_path, monkeypatch):
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    (spool_dir / "artifact-999999999-abc").write_bytes(b"partial")
    (spool_dir / f"artifact-{os.getppid()}-def").write_bytes(b"in progress")
    monkeypatch.setenv("KLEIO_DB", "sqlite://" + str(tmp_path / "k.db"))
    monkeypatch.setenv("KLEIO_SPOOL_DIR", str(spool_dir))
    result = run_kleio("sync", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["removed"] == ["artifact-999999999-abc"]
    assert sorted(p.name for p in spool_dir.iterdir()) == [f"artifact-{os.getppid()}-def"]


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
