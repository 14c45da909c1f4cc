"""A full disk under the ledger and spool, under the journal, and under both.

A small tmpfs is mounted where the machine allows (root with CAP_SYS_ADMIN; else those cases
skip) and the program itself fills it to the last byte half-way through its run, so the
disk is full exactly from then on. The program must never hang nor see a raw
BrokenPipeError, the runner must exit with the program's exit code, and afterwards what was
acknowledged must be in the journal (after ``kleio sync`` once space is back) or counted in
the run's final status ``problems``. Without a tmpfs, an in-process case injects ENOSPC and
short writes into the client's ``os.write``.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import subprocess
import sys
import threading

import pytest

from kleio.storage import open_store
from tests.faults import programs
from tests.faults.helpers import Run, count_lost, kleio, read_report, wait_for


@pytest.fixture
def tmpfs(tmp_path):
    """A 32 MiB tmpfs, unmounted afterwards; skip where it cannot be mounted."""
    mounts = []

    def mount(name: str) -> str:
        path = tmp_path / name
        path.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounts.append(path)
        return str(path)

    yield mount
    for path in reversed(mounts):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def final_status(db: str, trial: str) -> dict:
    with open_store(db) as store:
        status = store.last_status(trial_id=trial)
    return status.data if status else {}


LOST_ON_STDERR = re.compile(r"(\d+) events of this run could be written neither")
#: What the run counted but could not journal (no final status on a full disk), on stderr.
COUNTED_ON_STDERR = re.compile(r"counted during this run: (.*)")


def counted_on_stderr(stderr: str) -> dict[str, int]:
    told = COUNTED_ON_STDERR.search(stderr)
    pairs = (item.rsplit(" ", 1) for item in told.group(1).split(", ")) if told else ()
    return {key: int(count) for key, count in pairs}


@pytest.mark.parametrize(
    "full",
    [
        "ledger",
        "journal",
        "all-space-back",
        "all",
    ],
)
def test_disk_fills_up_mid_run(lab, tmpfs, monkeypatch, full):
    disk = tmpfs("disk")
    if full in ("ledger", "all", "all-space-back"):
        monkeypatch.setenv("KLEIO_SPOOL_DIR", os.path.join(disk, "spool"))
    else:
        monkeypatch.setenv("KLEIO_SPOOL_DIR", os.path.join(lab.tmp, "spool"))
    if full in ("journal", "all", "all-space-back"):
        lab.db = "sqlite://" + os.path.join(disk, "journal", "kleio.db")
        monkeypatch.setenv("KLEIO_DB", lab.db)
    lab.program("filler.py", programs.FILLER)
    run = Run(
        ["run", "-q", sys.executable, "filler.py", lab.state, disk], cwd=lab.repo, out_dir=lab.tmp
    )
    filler = os.path.join(disk, "filler")
    if full == "all-space-back":
        # Space comes back once the program has ended, while the runner still holds what
        # neither the journal nor the spool took: it must all reach the journal.
        wait_for(
            lambda: read_report(lab.state, "result") or run.proc.poll() is not None,
            "the program to end",
        )
        os.remove(filler)
    code = run.wait(timeout=90)
    stderr = run.stderr
    assert code == 3, f"kleio exited {code}, not the program's 3; stderr:\n{stderr}"
    result = read_report(lab.state, "result")
    assert result is not None, f"the program did not finish; stderr:\n{stderr}"
    assert "BrokenPipeError" not in result["failures"], result
    assert "Traceback" not in stderr, stderr

    if os.path.exists(filler):
        os.remove(filler)  # space is back: what waits can be journalled
    synced = kleio("sync", cwd=lab.repo)
    assert synced.returncode == 0, synced.stderr

    with open_store(lab.db) as store:
        (doc,) = store.find_trials()
        events = store.read_events(trial_id=doc["id"])
    stats = [e.data["i"] for e in events if e.kind == "statistic"]
    arts = [e.data["metadata"]["j"] for e in events if e.kind == "artifact"]
    status = final_status(lab.db, doc["id"])
    problems = status.get("problems") or {}
    # Lost means acknowledged, not journalled, and not counted in the final status.
    reported = sum(problems.get(key, 0) for key in ("events_dropped", "unstorable_events"))
    if full == "all":
        # Documented: nowhere is left to count them in, so the runner says it on stderr.
        told = LOST_ON_STDERR.search(stderr)
        reported += int(told.group(1)) if told else 0
        problems = {**problems, **counted_on_stderr(stderr)}
    reported_artifacts = sum(
        problems.get(key, 0) for key in ("artifacts_dropped", "missing_artifacts")
    )
    lost, duplicates = count_lost(result["acked"], stats, reported)
    lost_artifacts, duplicate_artifacts = count_lost(result["artifacts"], arts, reported_artifacts)
    assert (duplicates, duplicate_artifacts) == (0, 0)
    assert (max(0, lost - reported), max(0, lost_artifacts - reported_artifacts)) == (0, 0), (
        f"{lost} of {len(result['acked'])} acknowledged statistics and {lost_artifacts} of "
        f"{len(result['artifacts'])} artifacts are not journalled, and the final status "
        f"counts {problems}: {status}; program failures {result['failures']} "
        f"{result['errors']}; stderr:\n{stderr}"
    )
    warnings = [line for line in stderr.splitlines() if line.startswith("kleio: warning:")]
    repeated = {line for line in warnings if warnings.count(line) > 1}
    assert not repeated, f"told more than once: {sorted(repeated)}"
    if full != "all":  # documented: then no final status can be journalled
        assert (status.get("status"), status.get("exit_code")) == ("broken", 3), (status, stderr)


# -- without a tmpfs: ENOSPC and short writes injected into the client ----------------------


class FakeRunner:
    """A listening channel socket that keeps every byte a client sends."""

    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(4)
        self.received = bytearray()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    return
                self.received += data

    def records(self) -> list[bytes]:
        self.thread.join(10)
        assert not self.thread.is_alive(), "the client never closed its connection"
        self.listener.close()
        return bytes(self.received).splitlines()


def ledger_records(directory: str) -> list[bytes]:
    """Every record of the ledger files; fails on a torn (unterminated) record."""
    records = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".log"):
            with open(os.path.join(directory, name), "rb") as handle:
                data = handle.read()
            assert not data or data.endswith(b"\n"), f"torn last record in {name}: {data[-40:]!r}"
            records += data.splitlines()
    return records


@pytest.mark.parametrize("failure", ["short-write", "enospc", "zero-write"])
def test_ledger_write_fails_in_process(tmp_path, monkeypatch, failure):
    """The ledger stays whole (no torn record) and the calls go on over the socket."""
    from kleio.client import logger as logger_module

    ledger = tmp_path / "ledger"
    ledger.mkdir(mode=0o700)
    channel = str(tmp_path / "c.sock")
    runner = FakeRunner(channel)
    monkeypatch.setenv("KLEIO_LEDGER", str(ledger))
    monkeypatch.setenv("KLEIO_CHANNEL", channel)
    monkeypatch.setenv("KLEIO_TRIAL_ID", "f" * 64)
    client = logger_module.KleioLogger()
    real_write = os.write
    full = {"on": False}

    def write(fd: int, data: bytes) -> int:
        if not full["on"]:
            return real_write(fd, data)
        if failure == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if failure == "zero-write":
            return 0
        return real_write(fd, data[: len(data) // 2])  # the disk took half the record

    monkeypatch.setattr(logger_module, "_write", write)
    acked = []
    for i in range(3000):
        if i == 1000:
            full["on"] = True
        client.log_statistic(i=i, pad="x" * (i % 50))
        acked.append(i)
    client.log_artifact("after.bin", b"a" * 5000, n=1)
    client._drop()  # the program ends: its connection closes
    in_ledger = [json.loads(r[1:])["i"] for r in ledger_records(str(ledger))]
    over_socket = [json.loads(r[1:])["i"] for r in runner.records() if r[:1] == b"S"]
    assert in_ledger == list(range(1000))
    assert count_lost(acked, in_ledger + over_socket) == (0, 0)
    assert b"after.bin" in bytes(runner.received)
