"""kleio.checks.live: checks on real programs run through the real entry point (findings,
stop_on, kleio check), then the runner's monitor with a stand-in writer (budget, sampling,
journalling, stop_on)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from kleio.checks import Check, Context, live, registry
from kleio.checks.engine import Engine
from tests.conftest import run_kleio, write
from tests.mongodb.server import live_available

BACKENDS = ["sqlite"]
if live_available():
    BACKENDS.append(pytest.param("mongodb", marks=pytest.mark.mongodb))

NAN_AT_5 = """
    from kleio.client.logger import kleio_logger as k
    for step in range(10):
        k.log_statistic(step=step, loss=float("nan") if step >= 5 else 1.0 / (step + 1))
    print("done")
"""


@pytest.fixture(params=BACKENDS)
def journal(request, tmp_path, monkeypatch):
    """KLEIO_DB for subprocesses: an SQLite journal, or a database on the live server."""
    if request.param == "sqlite":
        uri = "sqlite://" + str(tmp_path / "journal" / "kleio.db")
    else:
        uri = request.getfixturevalue("mongodb_db_uri")
    monkeypatch.setenv("KLEIO_DB", uri)
    return uri


def trial_id(cwd):
    listing = run_kleio("ls", "--json", cwd=cwd)
    assert listing.returncode == 0, listing.stderr
    return json.loads(listing.stdout)[0]["id"]


def kleio_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("kleio:")]


@pytest.mark.capability("nan")  # MongoDB stores NaN; the nx-27017 wire server refuses it
def test_nan_at_step_5_is_told_once_journalled_and_shown(git_repo, journal):
    write(git_repo / "nan.py", NAN_AT_5)
    result = run_kleio("python", "nan.py", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert kleio_lines(result.stderr) == ["kleio: error: loss is NaN at step=5 [check nan]"]
    ident = trial_id(git_repo)
    info = json.loads(run_kleio("info", ident, "--json").stdout)
    assert [(c["name"], c["severity"], c["key"]) for c in info["checks"]] == [
        ("nan", "error", "loss")
    ]
    human = run_kleio("info", ident)
    assert "loss is NaN at step=5 [nan]" in human.stdout
    listing = run_kleio("ls")
    assert "completed!" in listing.stdout
    assert json.loads(run_kleio("ls", "--json").stdout)[0]["checks"] == {"error": 1}
    check = run_kleio("check", ident[:6], "--json")
    assert check.returncode == 1, check.stderr
    (report,) = json.loads(check.stdout)
    assert [(f["name"], f["message"], f["trigger"]) for f in report["findings"]] == [
        ("nan", "loss is NaN at step=5", info["checks"][0]["trigger"])
    ]
    assert report["errors"] == 1 and report["executions"] == 1


@pytest.mark.capability("nan")  # MongoDB stores NaN; the nx-27017 wire server refuses it
def test_stop_on_nan_stops_the_program_like_kleio_stop_and_it_resumes(git_repo, journal):
    write(
        git_repo / "nan.py",
        """
        import time
        from kleio.client.logger import kleio_logger as k
        for step in range(3000):
            k.log_statistic(step=step, loss=float("nan") if step >= 5 else 1.0)
            time.sleep(0.01)  # a long run, unless it is stopped
        print("ran to the end")
    """,
    )
    result = run_kleio(
        "python", "nan.py", "--seed", "1", env={**os.environ, "KLEIO_STOP_ON": "nan"}
    )
    assert result.returncode == 143, result.stderr  # the program died of SIGTERM
    assert "ran to the end" not in result.stdout
    (line,) = kleio_lines(result.stderr)
    assert line.startswith(
        "kleio: error: loss is NaN at step=5 [check nan]; stopping the "
        "program (stop_on: nan); resume it with 'kleio run "
    )
    ident = trial_id(git_repo)
    info = json.loads(run_kleio("info", ident, "--json").stdout)
    assert info["status"] == "suspended"
    assert info["checks"][0]["action"] == "stop"
    # The same from the command line, before the id (or the program).
    again = run_kleio("run", "--stop-on", "nan", ident[:7])
    assert again.returncode == 143, again.stderr  # resumable: it ran (and was stopped) again
    info = json.loads(run_kleio("info", ident, "--json").stdout)
    assert info["status"] == "suspended" and len(info["checks"]) == 2
    assert json.loads(run_kleio("ls", "--json").stdout)[0]["checks"] == {"error": 2}
    # A misspelt check is refused before anything runs.
    typo = run_kleio("--stop-on=nann", "python", "nan.py", "--seed", "2")
    assert typo.returncode == 65
    assert typo.stderr.startswith("error: setting 'stop_on' names no installed check 'nann'")
    assert len(json.loads(run_kleio("ls", "--json").stdout)) == 1


def test_divergence_and_plateau_through_the_runner_and_kleio_check(git_repo, journal):
    write(
        git_repo / "diverge.py",
        """
        from kleio.client.logger import kleio_logger as k
        for step in range(12):
            k.log_statistic(step=step, loss=1.0 / (step + 1) if step < 10 else 50.0)
    """,
    )
    write(
        git_repo / "plateau.py",
        """
        from kleio.client.logger import kleio_logger as k
        for epoch in range(30):
            k.log_statistic(epoch=epoch, val_acc=min(0.5 + epoch / 100, 0.55))
    """,
    )
    diverged = run_kleio("python", "diverge.py")
    assert kleio_lines(diverged.stderr) == [
        "kleio: error: loss is 50 at step=10, 500 times its best 0.1: the run is diverging "
        "[check diverged]"
    ]
    plateau = run_kleio("python", "plateau.py")
    assert kleio_lines(plateau.stderr) == [
        "kleio: warning: val_acc has not improved for 20 values (best 0.55 at epoch=5, now "
        "0.55 at epoch=25) [check plateau]"
    ]
    listing = run_kleio("ls").stdout
    assert "completed!" in listing and "completed?" in listing
    ids = [t["id"] for t in json.loads(run_kleio("ls", "--json").stdout)]
    check = run_kleio("check", *ids)
    assert check.returncode == 1
    assert check.stdout.splitlines()[1].split()[:2] == ["warning", "plateau"]
    assert "error    diverged" in check.stdout
    only_plateau = run_kleio("check", ids[0])
    assert only_plateau.returncode == 0, only_plateau.stdout  # warnings only: success


def test_a_silent_program_is_told_while_it_runs(git_repo, db_uri, tmp_path):
    release = tmp_path / "release"
    write(
        git_repo / "quiet.py",
        f"""
        import os, time
        print("started", flush=True)
        for _ in range(3000):  # at most 30 s: waits for the test to see the warning
            if os.path.exists({str(release)!r}):
                break
            time.sleep(0.01)
    """,
    )
    env = {
        **os.environ,
        "KLEIO_CHECKS": json.dumps({"silent": {"after": 0.3}}),
        "KLEIO_HEARTBEAT_INTERVAL": "0.05",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "kleio", "python", "quiet.py"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        told = []
        for line in proc.stderr:
            if line.startswith("kleio:"):
                told.append(line.strip())
                release.write_text("")
                break
        rest = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert (
        len(told) == 1
        and told[0].startswith("kleio: warning: no output and no statistic for ")
        and told[0].endswith("[check silent]")
    )
    assert not kleio_lines(rest)
    ident = trial_id(git_repo)
    again = run_kleio("check", ident, "--json", env=env)
    assert again.returncode == 0
    # The silence the test waited for, and on a loaded machine maybe the start-up too.
    found = [f["name"] for f in json.loads(again.stdout)[0]["findings"]]
    assert found and set(found) == {"silent"}


def test_kleio_check_over_a_trial_journalled_without_checks(git_repo, journal):
    write(
        git_repo / "nan.py",
        """
        from kleio.client.logger import kleio_logger as k
        for step in range(12):
            k.log_statistic(step=step, loss=1.0 / (step + 1) if step < 10 else 50.0)
        for i in range(12):
            print("RuntimeError: CUDA error: an illegal memory access, retry", i)
    """,
    )
    off = json.dumps(
        {
            name: "off"
            for name in (
                "nan",
                "diverged",
                "plateau",
                "overfitting",
                "step_backwards",
                "silent",
                "repeated_error",
            )
        }
    )
    result = run_kleio("python", "nan.py", env={**os.environ, "KLEIO_CHECKS": off})
    assert result.returncode == 0 and not kleio_lines(result.stderr)
    ident = trial_id(git_repo)
    assert json.loads(run_kleio("info", ident, "--json").stdout)["checks"] == []
    check = run_kleio("check", ident)
    assert check.returncode == 1
    lines = check.stdout.splitlines()
    assert lines[0] == f"{ident[:7]}  completed  2 findings"
    # In journal order: the output may be read before the statistics logged before it.
    assert sorted(lines[1:]) == [
        "  error    diverged        loss is 50 at step=10, 500 times its best 0.1: the run is "
        "diverging",
        "  warning  repeated_error  the same error line was printed 10 times on stdout: "
        "'RuntimeError: CUDA error: an illegal memory access, retry 9'",
    ]


def test_kleio_check_errors(git_repo, db_uri):
    write(git_repo / "ok.py", "print('fine')\n")
    assert run_kleio("python", "ok.py").returncode == 0
    assert run_kleio("check").returncode == 64
    missing = run_kleio("check", "fffffff")
    assert missing.returncode == 66
    assert run_kleio("check", trial_id(git_repo)).stdout.endswith("completed  no findings\n")
    write(git_repo / "kleio.yaml", "checks:\n  silent: {afterr: 3}\n")
    bad = run_kleio("check", trial_id(git_repo))
    assert bad.returncode == 65
    assert bad.stderr.startswith(
        "error: check 'silent' has no threshold 'afterr' (its "
        "thresholds: after). Installed checks: nan, diverged, "
    )
    write(git_repo / "kleio.yaml", "stop_on: [nann]\n")
    bad = run_kleio("check", trial_id(git_repo))
    assert bad.returncode == 65
    assert bad.stderr.startswith("error: setting 'stop_on' names no installed check 'nann'")


PLUGIN = """
from kleio.checks import Check


class Boom(Check):
    name = "boom"
    description = "raises on the third statistic"

    def __init__(self, context, options):
        super().__init__(context, options)
        self.seen = 0

    def statistic(self, stat):
        self.seen += 1
        if self.seen == 3:
            raise RuntimeError("a bug in a plugin")
        return None


class ZeroLr(Check):
    name = "zero_lr"
    defaults = {"after": 2.0}

    def __init__(self, context, options):
        super().__init__(context, options)
        self.zeros = 0

    def statistic(self, stat):
        if stat.values.get("lr") == 0:
            self.zeros += 1
            if self.zeros == int(self.options["after"]):
                return [self.finding(f"lr has been 0 for {self.zeros} statistics", stat.seq,
                                     key="lr")]
        return None
"""


def test_a_third_party_check_from_an_entry_point_and_one_that_raises(git_repo, db_uri, tmp_path):
    site = tmp_path / "plugin"
    (site / "myplugin-0.1.dist-info").mkdir(parents=True)
    (site / "myplugin.py").write_text(PLUGIN)
    (site / "myplugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: myplugin\nVersion: 0.1\n"
    )
    (site / "myplugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[kleio.checks]\nboom = myplugin:Boom\nzero_lr = myplugin:ZeroLr\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    listed = json.loads(run_kleio("check", "--list", "--json", env=env).stdout)
    assert [c["name"] for c in listed][-2:] == ["boom", "zero_lr"]
    write(
        git_repo / "lr.py",
        """
        from kleio.client.logger import kleio_logger as k
        for step in range(6):
            k.log_statistic(step=step, lr=0)
    """,
    )
    result = run_kleio("python", "lr.py", env={**env, "KLEIO_CHECKS": '{"zero_lr": {"after": 4}}'})
    assert result.returncode == 0, result.stderr
    assert kleio_lines(result.stderr) == [
        "kleio: warning: check boom raised RuntimeError: a bug in a plugin; it is disabled "
        "for this run",
        "kleio: warning: lr has been 0 for 4 statistics [check zero_lr]",
    ]
    ident = trial_id(git_repo)
    info = json.loads(run_kleio("info", ident, "--json", env=env).stdout)
    assert info["history"][-1]["status"] == "completed"
    from kleio.storage import open_store

    with open_store(db_uri) as store:
        final = store.last_status(trial_id=ident).data
    assert final["problems"] == {"check_failed_boom": 1}  # counted in the final status
    check = run_kleio("check", ident, "--json", env=env)
    (report,) = json.loads(check.stdout)
    assert [f["name"] for f in report["findings"]] == ["zero_lr"]
    assert report["failed_checks"] == [
        {"name": "boom", "error": "RuntimeError: a bug in a plugin", "execution": 1}
    ]


class Writer:
    """What the monitor uses of kleio.writer.Writer."""

    trial_id = "t" * 64

    def __init__(self) -> None:
        self.pending: list[tuple[int, str, float, str]] = []
        self.next_seq = 1000
        self.problems: dict[str, int] = {}
        self.stop_request = None
        self.child_pid = 12345
        self.terminated = 0
        self.fields: list[dict] = []
        self.store = self

    def problem(self, key, message, count=1):
        self.problems[key] = self.problems.get(key, 0) + count

    def _terminate(self):
        self.terminated += 1

    def _fields(self, fields):
        self.fields.append(fields)

    def get_trial(self, trial_id):
        return {"checks": {"warning": 2}}


class Counting(Check):
    name = "counting"

    def __init__(self, context, options):
        super().__init__(context, options)
        self.seen = []

    def statistic(self, stat):
        self.seen.append(stat.position)


def monitor(stop_on=(), extra=()):
    context = Context()
    problems: list[str] = []
    checks = [*extra, *registry.build({}, context, problems)]
    writer = Writer()
    return live.Monitor(Engine(checks, context), writer, tuple(stop_on), writer.trial_id), writer


def stats(start, count, nan_at=None):
    return [
        json.dumps({"step": i, "loss": float("nan") if i == nan_at else 1.0 / (i + 1)})
        for i in range(start, start + count)
    ]


def test_every_statistic_is_checked_within_the_budget():
    counting = Counting(Context(), {})
    mon, writer = monitor(extra=[counting])
    mon.events("statistic", 1, 0.0, stats(0, 100))
    assert counting.seen == list(range(100))
    assert writer.pending == []


def test_beyond_the_budget_a_sample_is_checked_but_every_nan_is_found(monkeypatch):
    counting = Counting(Context(), {})
    mon, writer = monitor(extra=[counting])
    monkeypatch.setattr(live, "ALLOWANCE", 0.0)
    monkeypatch.setattr(live, "BUDGET", 0.0)
    batch = stats(0, 50_000, nan_at=31_337)
    mon.events("statistic", 1, 5.0, batch)
    assert 31_337 in counting.seen and 49_999 in counting.seen
    assert len(counting.seen) == 2  # the flagged statistic and the batch's last one
    (event,) = writer.pending
    seq, kind, when, data = event
    assert (seq, kind, when) == (1000, "check", 5.0)
    assert json.loads(data) == {
        "name": "nan",
        "severity": "error",
        "key": "loss",
        "message": "loss is NaN at step=31337",
        "trigger": 31_338,
    }
    assert writer.next_seq == 1001
    # The trial's cached counts add this run's findings to the earlier executions' ones.
    assert writer.fields == [{"checks": {"warning": 2, "error": 1}}]


def test_ledger_records_and_the_string_nan_is_no_finding():
    mon, writer = monitor()
    events = [
        (7, "statistic", 1.0, json.dumps({"note": "NaN", "x": 1})),
        (8, "artifact", 1.0, "{}"),
        (9, "statistic", 1.0, json.dumps({"x": float("inf")})),
    ]
    mon.records(events)
    assert [json.loads(e[3])["message"] for e in writer.pending] == ["x is +inf at statistic #2"]
    assert json.loads(writer.pending[0][3])["trigger"] == 9


def test_stop_on_asks_the_writer_to_stop_the_program_once():
    mon, writer = monitor(stop_on=["nan"])
    mon.events("statistic", 1, 0.0, stats(0, 10, nan_at=5))
    mon.events("statistic", 11, 0.0, [json.dumps({"acc": float("nan")})])
    assert writer.terminated == 1
    assert writer.stop_request["check"] == "nan"
    assert [json.loads(e[3]).get("action") for e in writer.pending] == ["stop", None]


def test_lines_and_end():
    mon, writer = monitor()
    line = json.dumps({"line": "OSError: connection refused"})
    mon.events("stderr", 50, time.time(), [line] * 12)
    mon.end("completed")
    mon.end("completed")  # once only
    (event,) = writer.pending
    assert json.loads(event[3])["name"] == "repeated_error"
    assert json.loads(event[3])["trigger"] == 59


def test_a_monitor_bug_never_reaches_the_writer():
    mon, writer = monitor()
    mon.engine = None  # type: ignore[assignment]
    mon.events("statistic", 1, 0.0, stats(0, 3))
    mon.tick(1.0)
    assert writer.problems == {"check_failed_monitor": 2}


def test_attach_without_any_check_gives_no_monitor():
    from kleio.config import load_config

    config = load_config()
    config = config.replace(checks={name: False for name in registry.available()})
    assert live.attach(Writer(), config, "t" * 64) is None
    config = config.replace(checks={})
    assert isinstance(live.attach(Writer(), config, "t" * 64), live.Monitor)
