"""Each process's own ledger file and connection (kleio.client.transport), in and out of kleio."""

from __future__ import annotations

import json
import os
import socket
import textwrap

from kleio.client import loads
from kleio.client.logger import KleioLogger
from tests.conftest import run_kleio


def ledger_files(directory) -> dict[str, list[dict]]:
    """Each ``.log`` file of a ledger directory, by name: its statistics, in order."""
    return {
        path.name: [loads(line[1:]) for line in path.read_bytes().splitlines()]
        for path in sorted(directory.glob("*.log"))
    }


def test_a_forked_child_appends_to_a_ledger_file_of_its_own(tmp_path, monkeypatch):
    ledger = tmp_path / "ledger"
    ledger.mkdir(mode=0o700)
    monkeypatch.setenv("KLEIO_LEDGER", str(ledger))
    monkeypatch.setenv("KLEIO_CHANNEL", str(tmp_path / "no-runner.sock"))  # never needed
    client = KleioLogger()
    client.log_statistic(who="parent", step=0)
    pid = os.fork()
    if pid == 0:
        try:
            client.log_statistic(who="child", step=1)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    client.log_statistic(who="parent", step=2)
    files = ledger_files(ledger)
    by_pid = {name.split("-")[0]: records for name, records in files.items()}
    assert by_pid == {
        str(os.getpid()): [{"who": "parent", "step": 0}, {"who": "parent", "step": 2}],
        str(pid): [{"who": "child", "step": 1}],
    }


def test_an_unwritable_ledger_warns_once_and_records_go_to_the_runner(
    tmp_path, monkeypatch, capsys
):
    not_a_directory = tmp_path / "ledger"
    not_a_directory.write_text("")
    address = str(tmp_path / "c.sock")
    runner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    runner.bind(address)
    runner.listen(1)
    monkeypatch.setenv("KLEIO_LEDGER", str(not_a_directory))
    monkeypatch.setenv("KLEIO_CHANNEL", address)
    client = KleioLogger()
    client.log_statistic(step=1)
    client.log_statistic(step=2)
    client._drop()  # the program ends: its connection closes
    connection, _ = runner.accept()
    received = b""
    while chunk := connection.recv(4096):
        received += chunk
    connection.close()
    runner.close()
    assert received == b'S{"step":1}\nS{"step":2}\n'
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 1
    assert warnings[0].startswith(f"kleio: warning: cannot write the ledger in {not_a_directory}")
    assert warnings[0].endswith("this process sends its records to the runner instead")


def test_without_kleio_a_record_is_printed_and_nothing_is_opened(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KLEIO_LEDGER", str(tmp_path))  # ignored: no runner, no KLEIO_CHANNEL
    monkeypatch.delenv("KLEIO_CHANNEL", raising=False)
    client = KleioLogger()
    client.declare_metrics(loss="min")
    client.log_statistic(loss=0.5)
    assert capsys.readouterr().out == "kleio: metrics loss=min\nkleio: statistic loss=0.5\n"
    assert list(tmp_path.glob("*.log")) == []


def test_every_process_of_a_job_logs(git_repo, db_uri):
    (git_repo / "fork.py").write_text(
        textwrap.dedent("""
        import multiprocessing as mp
        from kleio.client.logger import kleio_logger as k
        def work(rank):
            for i in range(100):
                k.log_statistic(rank=rank, step=i)
        if __name__ == "__main__":
            k.log_statistic(rank=-1, step=0)
            procs = [mp.get_context("fork").Process(target=work, args=(r,)) for r in range(4)]
            [p.start() for p in procs]
            [p.join() for p in procs]
    """),
        encoding="utf-8",
    )
    result = run_kleio("python", "fork.py", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    trial = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)[0]["id"]
    stats = run_kleio("cat", trial, "--statistics", "--json", cwd=git_repo).stdout.splitlines()
    assert len(stats) == 401
    ranks = sorted(json.loads(line)["rank"] for line in stats)
    assert ranks.count(3) == 100


def test_fork_while_another_thread_logs_does_not_deadlock(git_repo, db_uri):
    (git_repo / "forky.py").write_text(
        textwrap.dedent("""
        import os, threading
        from kleio.client.logger import kleio_logger as k
        k.log_statistic(step=-1)
        held = threading.Event()
        release = threading.Event()
        def hold():
            with k._lock:      # what a thread in the middle of a send looks like
                held.set()
                release.wait()
        threading.Thread(target=hold).start()
        held.wait()
        pid = os.fork()
        if pid == 0:
            signal_alarm = __import__("signal").alarm(5)  # a deadlock dies here, not hangs
            k.log_statistic(step=1, child=True)
            os._exit(0)
        release.set()
        _, status = os.waitpid(pid, 0)
        print("child exit", os.waitstatus_to_exitcode(status))
    """),
        encoding="utf-8",
    )
    result = run_kleio("python", "forky.py", cwd=git_repo, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "child exit 0\n"
    trial = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)[0]["id"]
    stats = run_kleio("cat", trial, "--statistics", "--json", cwd=git_repo).stdout
    assert '"child": true' in stats
