"""End-to-end tests of ``kleio run`` through the real entry point, with real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kleio import errors
from tests.conftest import run_kleio, write


def ls(cwd):
    result = run_kleio("ls", "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def info(cwd, trial):
    result = run_kleio("info", trial, "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def short_id(stderr):
    for line in stderr.splitlines():
        if line.startswith("trial reserved with id: "):
            return line.split(": ", 1)[1].strip()
    raise AssertionError(f"no reservation line in {stderr!r}")


def test_run_is_transparent_and_journalled(git_repo, db_uri):
    write(
        git_repo / "hello.py",
        """
        import sys
        print("out:", sys.argv[1:])
        print("err line", file=sys.stderr)
        sys.exit(3)
    """,
    )
    result = run_kleio("python", "hello.py", "--name", "two words", "--lr=0.1", cwd=git_repo)
    assert result.returncode == 3
    assert result.stdout == "out: ['--name', 'two words', '--lr=0.1']\n"
    assert "err line" in result.stderr
    trial = short_id(result.stderr)
    assert len(trial) == 7
    [row] = ls(git_repo)
    assert row["id"].startswith(trial)
    assert row["status"] == "broken"
    assert row["command"] == ["python", "hello.py", "--name", "two words", "--lr=0.1"]
    cat = run_kleio("cat", trial, cwd=git_repo)
    assert cat.stdout == "out: ['--name', 'two words', '--lr=0.1']\n"
    cat_err = run_kleio("cat", trial, "--stderr", cwd=git_repo)
    assert cat_err.stdout == "err line\n"
    details = info(git_repo, trial)
    for key in ("id", "status", "command", "code", "env", "host"):
        assert key in details
    assert details["code"]["vcs"] == "git"
    assert details["exit_code"] == 3
    statuses = [h["status"] for h in details["history"]]
    assert statuses == ["new", "reserved", "running", "broken"]


def test_same_command_is_same_trial_and_completed_is_not_rerun(git_repo, db_uri):
    first = run_kleio("python", "train.py", "--lr", "0.1", cwd=git_repo)
    assert first.returncode == 0, first.stderr
    again = run_kleio("python", "train.py", "--lr", "0.1", cwd=git_repo)
    assert again.returncode == errors.EXIT_NOT_RESERVABLE
    assert again.stderr.startswith("error: trial ")
    assert "completed" in again.stderr
    assert "Traceback" not in again.stderr
    other = run_kleio("python", "train.py", "--lr", "0.2", cwd=git_repo)
    assert other.returncode == 0
    assert short_id(other.stderr) != short_id(first.stderr)
    assert len(ls(git_repo)) == 2


def test_resume_interrupted_trial_by_id_prefix(git_repo, db_uri):
    marker = git_repo / "marker"
    write(
        git_repo / "once.py",
        f"""
        import os, signal
        if not os.path.exists({str(marker)!r}):
            open({str(marker)!r}, "w").close()
            os.kill(os.getpid(), signal.SIGTERM)
        print("second run")
    """,
    )
    first = run_kleio("python", "once.py", cwd=git_repo)
    assert first.returncode == 128 + signal.SIGTERM
    trial = short_id(first.stderr)
    assert ls(git_repo)[0]["status"] == "interrupted"
    resumed = run_kleio("run", trial[:5], cwd=git_repo)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "second run\n"
    assert short_id(resumed.stderr) == trial
    assert ls(git_repo)[0]["status"] == "completed"


def test_broken_trial_needs_allow_broken(git_repo, db_uri):
    write(git_repo / "fail.py", "raise SystemExit(2)\n")
    assert run_kleio("python", "fail.py", cwd=git_repo).returncode == 2
    refused = run_kleio("python", "fail.py", cwd=git_repo)
    assert refused.returncode == errors.EXIT_NOT_RESERVABLE
    assert "--allow-broken" in refused.stderr
    assert run_kleio("run", "--allow-broken", "python", "fail.py", cwd=git_repo).returncode == 2


@pytest.mark.parametrize(
    "args, code, text",
    [
        ([], errors.EXIT_USAGE, "usage"),
        (["run"], errors.EXIT_USAGE, "no command to run"),
        (["no-such-program-kleio"], 127, "command not found"),
        (["./missing.sh"], 127, "command not found"),
        (["info", "ffffffff"], errors.EXIT_NOT_FOUND, "no trial matches"),
        (["cat", "zz"], errors.EXIT_NOT_FOUND, "no trial matches"),
        (["run", "--bogus", "python"], errors.EXIT_USAGE, "unknown option"),
        (["ls", "--sort", "nope"], errors.EXIT_USAGE, "cannot sort"),
        (["--frob"], errors.EXIT_USAGE, "unknown option"),
    ],
)
def test_user_mistakes_are_one_line_errors(git_repo, db_uri, args, code, text):
    assert run_kleio("python", "train.py", cwd=git_repo).returncode == 0  # a journal exists
    result = run_kleio(*args, cwd=git_repo)
    assert result.returncode == code, result.stderr
    assert text in result.stderr
    assert "Traceback" not in result.stderr
    if code != errors.EXIT_USAGE or args:
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


def test_ambiguous_prefix_lists_candidates(git_repo, db_uri):
    ids = set()
    for lr in range(40):
        result = run_kleio("python", "train.py", "--lr", str(lr), cwd=git_repo)
        ids.add(short_id(result.stderr))
        firsts = [i[0] for i in ids]
        if len(set(firsts)) < len(firsts):
            break
    prefix = next(c for c in "0123456789abcdef" if sum(i[0] == c for i in ids) > 1)
    result = run_kleio("info", prefix, cwd=git_repo)
    assert result.returncode == errors.EXIT_AMBIGUOUS
    assert "matches" in result.stderr and "Traceback" not in result.stderr


def test_not_a_git_repository_works_and_warns_once(tmp_path, db_uri):
    work = tmp_path / "plain"
    work.mkdir()
    write(work / "job.py", "print('ok')\n")
    result = run_kleio("python", "job.py", cwd=work)
    assert result.returncode == 0
    assert result.stdout == "ok\n"
    assert result.stderr.count("not a git repository") == 1
    assert info(work, short_id(result.stderr))["code"]["vcs"] is None


def test_invalid_config_file_is_reported(git_repo, db_uri):
    (git_repo / "kleio.yaml").write_text("db: [unclosed\n", encoding="utf-8")
    result = run_kleio("ls", cwd=git_repo)
    assert result.returncode == errors.EXIT_CONFIG
    assert "not valid YAML" in result.stderr and "Traceback" not in result.stderr


def test_database_in_unusable_directory(git_repo, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("KLEIO_DB", f"sqlite://{blocker}/sub/kleio.db")
    result = run_kleio("python", "train.py", cwd=git_repo)
    assert result.returncode == errors.EXIT_STORE
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert result.stdout == ""  # nothing ran


def test_child_killed_by_sigkill(git_repo, db_uri):
    write(
        git_repo / "die.py",
        "import os, signal\nprint('bye', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n",
    )
    result = run_kleio("python", "die.py", cwd=git_repo)
    assert result.returncode == 128 + signal.SIGKILL
    [row] = ls(git_repo)
    assert row["status"] == "broken"
    assert run_kleio("cat", row["id"], cwd=git_repo).stdout == "bye\n"


def test_sigterm_to_runner_is_forwarded(git_repo, db_uri, tmp_path):
    flag = tmp_path / "got-term"
    write(
        git_repo / "wait.py",
        f"""
        import signal, sys, time
        def handler(signo, frame):
            open({str(flag)!r}, "w").write(str(signo))
            sys.exit(0)
        signal.signal(signal.SIGTERM, handler)
        print("ready", flush=True)
        time.sleep(30)
    """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kleio", "python", "wait.py"],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert flag.read_text() == str(int(signal.SIGTERM))
    assert proc.returncode == 0
    assert ls(git_repo)[0]["status"] == "interrupted"


def test_ten_thousand_statistics_then_os_exit(git_repo, db_uri):
    write(
        git_repo / "burst.py",
        """
        import os
        from kleio.client.logger import kleio_logger
        for i in range(10000):
            kleio_logger.log_statistic(step=i, loss=1.0 / (i + 1))
        os._exit(1)
    """,
    )
    result = run_kleio("python", "burst.py", cwd=git_repo)
    assert result.returncode == 1
    trial = short_id(result.stderr)
    stats = run_kleio("cat", trial, "--statistics", "--json", cwd=git_repo)
    lines = stats.stdout.splitlines()
    assert len(lines) == 10000
    assert json.loads(lines[0]) == {"step": 0, "loss": 1.0}
    assert json.loads(lines[-1])["step"] == 9999


def test_statistics_sorted_and_shape(git_repo, db_uri):
    write(
        git_repo / "stats.py",
        """
        from kleio.client.logger import kleio_logger
        for epoch, loss in [(1, 0.5), (2, 0.2), (3, 0.9)]:
            kleio_logger.log_statistic(epoch=epoch, loss=loss)
    """,
    )
    trial = short_id(run_kleio("python", "stats.py", cwd=git_repo).stderr)
    result = run_kleio("cat", trial, "--statistics", "--sort", "loss", "--json", cwd=git_repo)
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"epoch": 2, "loss": 0.2},
        {"epoch": 1, "loss": 0.5},
        {"epoch": 3, "loss": 0.9},
    ]
    table = run_kleio("cat", trial, "--statistics", cwd=git_repo).stdout
    assert table.splitlines()[0].split() == ["EPOCH", "LOSS"]


def test_sixteen_concurrent_starts_run_exactly_once(git_repo, db_uri):
    write(git_repo / "slow.py", "import time\nprint('running', flush=True)\ntime.sleep(3)\n")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kleio", "python", "slow.py"],
            cwd=git_repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(16)
    ]
    results = [(p.wait(timeout=90), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes.count(0) == 1, results
    assert codes.count(errors.EXIT_BUSY) == 15, results
    for code, out, err in results:
        if code == errors.EXIT_BUSY:
            assert "already running on host" in err and "kleio tail -f" in err
            assert out == ""
    assert len(ls(git_repo)) == 1


def test_runner_killed_by_sigkill_is_failed_over(git_repo, db_uri, tmp_path):
    alive = tmp_path / "alive"
    keep_going = tmp_path / "keep-going"
    keep_going.touch()
    write(
        git_repo / "long.py",
        f"""
        import os, time
        from kleio.client.logger import kleio_logger
        for i in range(3):
            kleio_logger.log_statistic(step=i)
        print("logged", flush=True)
        while os.path.exists({str(keep_going)!r}):
            open({str(alive)!r}, "w").write(str(time.time()))
            time.sleep(0.1)
        print("finished")
    """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kleio", "python", "long.py"],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.readline() == b"logged\n"
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(0.5)
    stamp = float(alive.read_text())
    time.sleep(0.5)
    assert float(alive.read_text()) == stamp, "the child kept running without its runner"
    [row] = ls(git_repo)
    assert row["status"] == "lost"
    stats = run_kleio("cat", row["id"], "--statistics", "--json", cwd=git_repo)
    assert len(stats.stdout.splitlines()) == 3
    assert run_kleio("cat", row["id"], cwd=git_repo).stdout == "logged\n"
    keep_going.unlink()
    again = run_kleio("run", row["id"][:8], cwd=git_repo)
    assert again.returncode == 0, again.stderr
    assert "taking it over" in again.stderr
    history = [h["status"] for h in info(git_repo, row["id"])["history"]]
    assert history[-4:] == ["failover", "reserved", "running", "completed"]
    assert run_kleio("cat", row["id"], cwd=git_repo).stdout.splitlines()[-1] == "finished"


def test_tail_follows_a_running_trial(git_repo, db_uri):
    write(
        git_repo / "ticks.py",
        """
        import time
        for i in range(6):
            print("tick", i, flush=True)
            time.sleep(0.3)
    """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kleio", "python", "ticks.py"],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "tick 0\n"
    trial = ls(git_repo)[0]["id"]
    follow = run_kleio("tail", "-f", "-n", "1", trial, cwd=git_repo, timeout=30)
    proc.wait(timeout=30)
    assert follow.returncode == 0
    assert follow.stdout.splitlines()[-1] == "tick 5"
    last = run_kleio("tail", "-n", "2", trial, cwd=git_repo)
    assert last.stdout == "tick 4\ntick 5\n"


def test_python_m_kleio_and_version(db_uri):
    result = subprocess.run(
        [sys.executable, "-m", "kleio", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("kleio ")


def test_config_masks_passwords(git_repo, monkeypatch):
    monkeypatch.setenv("KLEIO_DB", "mongodb://alice:s3cret@db.example.invalid/kleio")
    result = run_kleio("config", "--json", cwd=git_repo)
    assert result.returncode == 0
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["db"]["value"] == "mongodb://alice:***@db.example.invalid/kleio"
    assert rows["db"]["source"] == "KLEIO_DB"
    assert "s3cret" not in result.stdout
    assert rows["stale_after"]["source"] == "default"


def test_undecodable_output_is_kept(git_repo, db_uri):
    write(
        git_repo / "bytes.py",
        "import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe end\\n')\n"
        "sys.stdout.buffer.write(b'10%\\r50%\\r100%\\n')\n",
    )
    result = subprocess.run(
        [sys.executable, "-m", "kleio", "python", "bytes.py"], cwd=git_repo, capture_output=True
    )
    assert result.returncode == 0
    trial = short_id(result.stderr.decode())
    cat = subprocess.run(
        [sys.executable, "-m", "kleio", "cat", trial], cwd=git_repo, capture_output=True
    )
    assert cat.stdout == b"ok \xff\xfe end\n100%\n"


def test_environment_of_child(git_repo, db_uri):
    write(
        git_repo / "env.py", "import os\nprint(os.environ['KLEIO_TRIAL_ID'])\nprint(os.getcwd())\n"
    )
    result = run_kleio("python", "env.py", cwd=git_repo)
    trial_id, cwd = result.stdout.splitlines()
    assert trial_id.startswith(short_id(result.stderr))
    assert os.path.realpath(cwd) == os.path.realpath(git_repo)


def test_signal_to_the_whole_process_group_reaches_the_child_once(git_repo, db_uri, tmp_path):
    count = tmp_path / "count"
    write(
        git_repo / "count.py",
        f"""
        import signal, sys, time
        hits = []
        def handler(signo, frame):
            hits.append(signo)
        signal.signal(signal.SIGINT, handler)
        print("ready", flush=True)
        deadline = time.time() + 5
        while time.time() < deadline and not hits:
            time.sleep(0.05)
        time.sleep(0.5)
        open({str(count)!r}, "w").write(str(len(hits)))
    """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kleio", "python", "count.py"],
        cwd=git_repo,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout.readline() == "ready\n"
    # What `timeout -s INT` does: signal the runner, then its whole process group.
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(0.05)  # the runner has handled the first one: not merged as a pending signal
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=20)
    assert count.read_text() == "1"


def test_program_named_like_a_subcommand_runs_after_double_dash(git_repo, db_uri):
    result = run_kleio("run", "--", "ls", "-d", ".", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ".\n"
    assert ls(git_repo)[0]["command"] == ["ls", "-d", "."]


def test_a_terminal_stays_a_terminal_for_the_child(git_repo, db_uri):
    import pty

    write(
        git_repo / "term.py",
        "import sys\nprint('tty', sys.stdout.isatty(), sys.stderr.isatty())\n"
        "print('\\x1b[31mred\\x1b[0m')\n",
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kleio", "python", "term.py"],
        cwd=git_repo,
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    proc.wait(timeout=20)
    os.close(master)
    assert proc.returncode == 0
    assert b"tty True True" in output
    trial = ls(git_repo)[0]["id"]
    journal = run_kleio("cat", trial, cwd=git_repo).stdout
    assert journal == "tty True True\n\x1b[31mred\x1b[0m\n"


def test_output_and_statistics_are_journalled_in_step(git_repo, db_uri):
    # Output and statistics travel on two channels: their order is kept when the program
    # does some work between epochs (here 0.1 s), as any training loop does.
    write(
        git_repo / "step.py",
        """
        import time
        from kleio.client.logger import kleio_logger
        for epoch in range(3):
            print("epoch", epoch)
            kleio_logger.log_statistic(epoch=epoch)
            time.sleep(0.1)
    """,
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    result = run_kleio("python", "step.py", cwd=git_repo, env=env)
    trial = short_id(result.stderr)
    from kleio.storage import open_store

    with open_store(db_uri) as store:
        [doc] = store.find_trials(id_prefix=trial)
        kinds = [
            e.kind for e in store.read_events(trial_id=doc["id"], kinds=("stdout", "statistic"))
        ]
    assert kinds == ["stdout", "statistic"] * 3


def test_sorting_descending_and_unknown_keys(git_repo, db_uri):
    write(
        git_repo / "stats.py",
        """
        from kleio.client.logger import kleio_logger
        for epoch, loss in [(1, 0.5), (2, 0.2), (3, 0.9)]:
            kleio_logger.log_statistic(epoch=epoch, loss=loss)
        kleio_logger.log_statistic(note="no loss here")
    """,
    )
    trial = short_id(run_kleio("python", "stats.py", cwd=git_repo).stderr)
    result = run_kleio("cat", trial, "--statistics", "--sort", "-loss", "--json", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line).get("loss") for line in result.stdout.splitlines()] == [
        0.9,
        0.5,
        0.2,
        None,
    ]
    bad = run_kleio("cat", trial, "--statistics", "--sort", "acc", cwd=git_repo)
    assert bad.returncode == errors.EXIT_USAGE
    assert "has the key 'acc'" in bad.stderr and "epoch, loss, note" in bad.stderr
    listing = run_kleio("ls", "--sort", "-created", "--json", cwd=git_repo)
    assert listing.returncode == 0, listing.stderr


def test_reading_commands_never_create_a_journal(git_repo, tmp_path, monkeypatch):
    missing = tmp_path / "typo" / "kleio.db"
    monkeypatch.setenv("KLEIO_DB", f"sqlite://{missing}")
    listing = run_kleio("ls", "--json", cwd=git_repo)
    assert listing.returncode == 0 and listing.stdout == "[]\n"
    details = run_kleio("info", "abcd", cwd=git_repo)
    assert details.returncode == errors.EXIT_STORE
    assert "there is no journal at" in details.stderr
    assert not missing.parent.exists()


@pytest.mark.parametrize(
    "args, hint, code",
    [
        (["lss"], "Did you mean 'kleio ls'?\n", 127),
        # An id followed by options: a usage error, the options belong before the id.
        (
            ["run", "64437c2", "--allow-broken"],
            "For example 'kleio run --allow-broken 64437c2'.\n",
            errors.EXIT_USAGE,
        ),
    ],
)
def test_not_found_explains_the_likely_mistake(git_repo, db_uri, args, hint, code):
    result = run_kleio(*args, cwd=git_repo)
    assert result.returncode == code
    assert result.stderr.startswith("error: ") and result.stderr.endswith(hint)


def test_stop_suspends_a_running_trial_which_resumes(git_repo, db_uri, monkeypatch, tmp_path):
    monkeypatch.setenv("KLEIO_HEARTBEAT_INTERVAL", "0.2")
    keep_going = tmp_path / "keep-going"
    keep_going.touch()
    write(
        git_repo / "loop.py",
        f"""
        import os, time
        print("started", flush=True)
        while os.path.exists({str(keep_going)!r}):
            time.sleep(0.05)
        print("finished")
    """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kleio", "python", "loop.py"],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "started\n"
    trial = ls(git_repo)[0]["id"][:7]
    stopped = run_kleio("stop", trial, "--wait", cwd=git_repo, timeout=30)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.splitlines()[-1] == f"trial {trial} is suspended"
    proc.communicate(timeout=20)
    assert proc.returncode == 128 + signal.SIGTERM
    again = run_kleio("stop", trial, cwd=git_repo)
    assert again.returncode == errors.EXIT_NOT_RUNNING
    assert "is not running (status suspended)" in again.stderr
    keep_going.unlink()
    resumed = run_kleio("run", trial, cwd=git_repo)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "started\nfinished\n"
    history = [h["status"] for h in info(git_repo, trial)["history"]]
    assert history == [
        "new",
        "reserved",
        "running",
        "suspended",
        "reserved",
        "running",
        "completed",
    ]


def test_a_paused_and_resumed_runner_carries_on(git_repo, db_uri, monkeypatch):
    """Ctrl-Z then fg, or a scheduler suspending a job: SIGSTOP, then SIGCONT."""
    monkeypatch.setenv("KLEIO_HEARTBEAT_INTERVAL", "0.5")
    write(
        git_repo / "ticks.py",
        """
        import time
        for i in range(30):
            print("tick", i, flush=True)
            time.sleep(0.1)
    """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kleio", "python", "ticks.py"],
        cwd=git_repo,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "tick 0\n"
    proc.send_signal(signal.SIGSTOP)
    time.sleep(1.5)
    proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.splitlines()[-1] == "tick 29"
    assert ls(git_repo)[0]["status"] == "completed"


def test_a_runner_taken_over_stops_its_run(git_repo, db_uri, monkeypatch):
    """A too small stale_after elsewhere fails a live runner over: the first one stops."""
    monkeypatch.setenv("KLEIO_HEARTBEAT_INTERVAL", "0.3")
    write(
        git_repo / "long.py",
        """
        import time
        print("started", flush=True)
        time.sleep(20)
    """,
    )
    env = dict(os.environ, KLEIO_HOSTNAME="host-a")
    first = subprocess.Popen(
        [sys.executable, "-m", "kleio", "python", "long.py"],
        cwd=git_repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert first.stdout.readline() == "started\n"
    trial = ls(git_repo)[0]["id"][:7]
    other = dict(os.environ, KLEIO_HOSTNAME="host-b", KLEIO_STALE_AFTER="0.01")
    second = subprocess.Popen(
        [sys.executable, "-m", "kleio", "run", trial],
        cwd=git_repo,
        env=other,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = second.stdout.readline()
    if line != "started\n":
        first.kill()
        pytest.fail(f"the second runner did not start: {line!r}, {second.communicate()}")
    out, err = first.communicate(timeout=20)
    assert "was taken over by a runner on host-b" in err
    second.send_signal(signal.SIGTERM)
    second.communicate(timeout=20)
    assert info(git_repo, trial)["runner"]["host"] == "host-b"


def test_ls_says_when_filters_match_nothing(git_repo, db_uri):
    assert run_kleio("python", "train.py", cwd=git_repo).returncode == 0
    result = run_kleio("ls", "--status", "broken", cwd=git_repo)
    assert result.returncode == 0 and result.stdout == "no trials match these filters\n"


def test_a_script_without_shebang_is_126_and_broken(git_repo, db_uri):
    script = git_repo / "noshebang.sh"
    script.write_text("echo hi\n", encoding="utf-8")
    script.chmod(0o755)
    result = run_kleio("./noshebang.sh", cwd=git_repo)
    assert result.returncode == 126
    assert result.stderr.splitlines()[-1].startswith("error: cannot execute ./noshebang.sh")
    assert "Traceback" not in result.stderr
    assert ls(git_repo)[0]["status"] == "broken"


# -- tail -f never skips what is journalled while it prints (in-process, no timing) ---------


class _RacingStore:
    """A real SQLite journal that lets the "runner" journal more at one chosen moment.

    ``moment`` names the read of ``kleio tail -f`` after which the late lines are appended:
    ``last_seq`` (before the tail is read), ``tail`` (the tail read itself) or ``follow``
    (an empty read of the follow loop, after which the run also ends).
    """

    def __init__(self, store, trial_id, moment, late):
        self.store, self.trial_id, self.moment, self.late = store, trial_id, moment, late
        self.fired = False

    def __getattr__(self, name):
        return getattr(self.store, name)

    def _fire(self, moment):
        if self.fired or moment != self.moment:
            return
        self.fired = True
        from kleio.storage.base import encode, first_seq

        last = self.store.last_seq(trial_id=self.trial_id)
        start = first_seq(1) if last is None else last + 1  # a branch without events yet
        self.store.append_events(
            trial_id=self.trial_id,
            events=[
                (start + i, "stdout", 1.0, encode({"line": line}))
                for i, line in enumerate(self.late)
            ],
        )
        self.store.update_trial(trial_id=self.trial_id, fields={"status": "completed"})

    def last_seq(self, **kwargs):
        result = self.store.last_seq(**kwargs)
        self._fire("last_seq")
        return result

    def read_events(self, **kwargs):
        result = self.store.read_events(**kwargs)
        if kwargs.get("reverse"):
            self._fire("tail")
        elif not result:
            self._fire("follow")
        return result


def _journal_with_lines(tmp_path, lines, *, trial_id="a" * 64, parent=None):
    from kleio.storage.base import encode, first_seq
    from kleio.storage.sqlite import SQLiteStore

    store = SQLiteStore(str(tmp_path / "tail.db"))
    me = {"host": "h", "pid": os.getpid(), "pid_start": None, "since": time.time()}
    store.create_trial(
        doc={
            "schema_version": 1,
            "id": trial_id,
            "created_at": 1.0,
            "command": ["x"],
            "status": "running",
            "tags": [],
            "parent": parent,
            "runner": me,
            "heartbeat_at": time.time(),
        }
    )
    start = first_seq(1)
    store.append_events(
        trial_id=trial_id,
        events=[(start + i, "stdout", 1.0, encode({"line": line})) for i, line in enumerate(lines)],
    )
    return store


@pytest.mark.parametrize("moment", ["last_seq", "tail", "follow"])
def test_tail_follow_never_skips_lines_journalled_while_it_prints(tmp_path, moment):
    from kleio.cli.tail import tail

    lines = [f"line {i}" for i in range(50)]
    late = [f"late {i}" for i in range(20)]
    store = _journal_with_lines(tmp_path, lines)
    racing = _RacingStore(store, "a" * 64, moment, late)
    shown = []
    code = tail(
        racing,
        store.get_trial(trial_id="a" * 64),
        kind="stdout",
        lines=30,
        follow=True,
        show=lambda event: shown.append(event.data["line"]),
        host="h",
        stale_after=60.0,
        poll=0,
    )
    store.close()
    assert racing.fired and code == 0
    assert shown == lines[-30:] + late  # every late line, once, in order


def test_tail_follow_of_a_branch_reads_the_parent_up_to_the_cut_then_its_own(tmp_path):
    from kleio.cli.tail import tail
    from kleio.storage.base import encode, first_seq

    parent_lines = [f"parent {i}" for i in range(10)]
    store = _journal_with_lines(tmp_path, parent_lines, trial_id="p" * 64)
    cut = first_seq(1) + 5  # the branch inherits parent 0..5
    store.append_events(
        trial_id="p" * 64,
        events=[(first_seq(1) + 100, "stdout", 1.0, encode({"line": "after the cut"}))],
    )
    me = {"host": "h", "pid": os.getpid(), "pid_start": None, "since": time.time()}
    store.create_trial(
        doc={
            "schema_version": 1,
            "id": "b" * 64,
            "created_at": 2.0,
            "command": ["x"],
            "status": "running",
            "tags": [],
            "parent": {"id": "p" * 64, "cut": cut},
            "runner": me,
            "heartbeat_at": time.time(),
        }
    )
    racing = _RacingStore(store, "b" * 64, "tail", ["own 0", "own 1"])
    shown = []
    tail(
        racing,
        store.get_trial(trial_id="b" * 64),
        kind="stdout",
        lines=3,
        follow=True,
        show=lambda event: shown.append(event.data["line"]),
        host="h",
        stale_after=60.0,
        poll=0,
    )
    store.close()
    assert shown == ["parent 3", "parent 4", "parent 5", "own 0", "own 1"]


def test_a_signal_kleio_was_started_with_ignored_stays_ignored(git_repo, db_uri):
    """`cmd &` in a script starts kleio with SIGINT ignored: a SIGINT then neither reaches
    the program nor makes the run 'interrupted' (blocked, Linux would queue it for kleio)."""
    write(
        git_repo / "waits.py",
        """
        import signal, sys
        signal.signal(signal.SIGUSR1, lambda *_: sys.exit(0))
        print("ready", flush=True)
        while True:
            signal.pause()
    """,
    )
    kleio = subprocess.Popen(
        [sys.executable, "-m", "kleio", "python", "waits.py"],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert kleio.stdout.readline() == "ready\n"
    kleio.send_signal(signal.SIGINT)  # queued, it would be taken before the SIGUSR1
    kleio.send_signal(signal.SIGUSR1)  # forwarded: the program exits 0
    out, err = kleio.communicate(timeout=30)
    assert kleio.returncode == 0, err
    assert ls(git_repo)[0]["status"] == "completed"


def test_a_removed_working_directory_is_one_line(git_repo, db_uri, tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    probe = (
        f"import os, subprocess, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); "
        "r = subprocess.run([sys.executable, '-m', 'kleio', 'python', 'x.py'], "
        "capture_output=True, text=True); print(r.returncode); print(r.stderr, end='')"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
    code, message = out.split("\n", 1)
    assert int(code) == errors.EXIT_USAGE
    assert message == (
        "error: the current directory no longer exists. Change to an existing "
        "directory and run again.\n"
    )


@pytest.mark.parametrize("redirect", ["2>/dev/full", "2>&-", ">&- 2>&-"])
def test_a_stderr_kleio_cannot_write_never_loses_the_trial(git_repo, db_uri, redirect):
    """kleio's own messages fail (a full disk, a closed descriptor): the program still runs,
    with its exit code, and the trial ends as that exit code says (broken), not lost."""
    write(git_repo / "hello.py", "import sys\nprint('hello')\nsys.exit(3)\n")
    shell = f"exec {sys.executable} -m kleio python hello.py {redirect}"
    result = subprocess.run(["sh", "-c", shell], cwd=git_repo, capture_output=True, text=True)
    assert result.returncode == 3
    if ">&-" not in redirect:
        assert result.stdout == "hello\n"
    assert ls(git_repo)[0]["status"] == "broken"  # exit 3: broken, but journalled and run


def test_a_git_status_started_ahead_dies_with_a_refused_run(git_repo, tmp_path):
    """kleio starts git status first thing; a run refused before the snapshot reads it (a
    journal URI of no known kind) must not leave that git running."""
    import glob

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text("#!/bin/sh\nexec sleep 299.25\n", encoding="utf-8")
    (bin_dir / "git").chmod(0o755)
    env = dict(
        os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", KLEIO_DB="bogus://nowhere"
    )
    result = subprocess.run(
        [sys.executable, "-m", "kleio", "python", "train.py"],
        cwd=git_repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == errors.EXIT_CONFIG, result.stderr

    def left():  # the fake git's sleep, still running
        found = []
        for path in glob.glob("/proc/[0-9]*/cmdline"):
            try:
                with open(path, "rb") as handle:
                    if handle.read() == b"sleep\x00299.25\x00":
                        found.append(int(path.split("/")[2]))
            except OSError:
                pass
        return found

    stray = left()
    for pid in stray:
        os.kill(pid, signal.SIGKILL)
    assert stray == []


def test_a_runner_killed_after_its_final_event_shows_the_final_status(git_repo, db_uri):
    """SIGKILLed between journalling its final status and updating the trial's cached
    fields, the runner left them saying 'running': ls and info show the journal's status,
    not 'lost' (the breaker's 2 of 900 kills)."""
    from kleio.storage import open_store

    assert run_kleio("python", "train.py", cwd=git_repo).returncode == 0
    trial = ls(git_repo)[0]["id"]
    with open_store(db_uri) as store:  # what the killed runner left
        store.update_trial(
            trial_id=trial,
            fields={
                "status": "running",
                "heartbeat_at": 1.0,
                "ended_at": None,
                "runner": {"host": "elsewhere", "pid": 1, "since": 1.0},
            },
        )
    assert ls(git_repo)[0]["status"] == "completed"
    assert info(git_repo, trial[:7])["status"] == "completed"
    again = run_kleio("run", trial[:7], cwd=git_repo)
    assert again.returncode == errors.EXIT_NOT_RESERVABLE and "completed" in again.stderr
