"""The ledger: records read in linear time, journalled exactly once whoever takes them over."""

from __future__ import annotations

import json
import os

import pytest

from kleio import ledger
from kleio.errors import StoreUnavailable
from kleio.ledger import Chunk, LedgerFile, LedgerReader, Leftover, chunk_events, recover
from kleio.runner import final_status
from kleio.spool import Spool
from kleio.storage import open_store
from kleio.storage.base import encode, first_seq
from kleio.writer import Heartbeat, LedgerChunk, Status, Stop, Writer

TRIAL = "t" * 64


@pytest.fixture
def journal(tmp_path):
    store = open_store("sqlite://" + str(tmp_path / "k.db"))
    store.create_trial(doc={"schema_version": 1, "id": TRIAL, "created_at": 1.0,
                            "command": ["x"], "status": "new", "tags": [], "parent": None})
    store.append_events(trial_id=TRIAL, events=[
        (first_seq(1), "status", 1.0, encode({"status": "reserved"}))])
    yield store
    store.close()


def dead_execution(tmp_path, store, records: list[bytes], execution: int = 1) -> Leftover:
    """An execution directory whose runner and writer are gone (pids that cannot exist)."""
    directory = tmp_path / "spool" / "ledger" / f"{TRIAL}-{execution}-999999999"
    directory.mkdir(parents=True)
    (directory / "runner.json").write_text(json.dumps(
        {"pid": 999_999_999, "pid_start": None, "journal": store.uri}))
    (directory / "999999998-abcd.log").write_bytes(b"".join(records))
    return Leftover(str(directory), TRIAL, execution, store.uri)


def stats(store) -> list[int]:
    return [e.data["i"] for e in store.read_events(trial_id=TRIAL, kinds=("statistic",))]


def test_records_are_cut_whole_and_a_huge_one_costs_one_copy(tmp_path):
    path = tmp_path / "1-a.log"
    big = b"S" + json.dumps({"x": "y" * (3 << 20)}).encode() + b"\n"
    path.write_bytes(b'S{"i":0}\n' + big + b'S{"i":1')
    reader = LedgerFile(str(path))
    chunks = []
    size = os.path.getsize(path)
    while reader.read_to < size:
        chunk = reader.read(1 << 16)
        if chunk is not None:
            chunks.append(chunk)
    lines = [line for chunk in chunks for line in chunk.lines]
    assert lines[0] == b'S{"i":0}' and lines[1] == big[:-1]
    assert reader.offset == 9 + len(big)  # the torn last record is not handed over
    assert chunks[0].start == 0 and chunks[-1].end == reader.offset
    assert not reader.at_end()
    with open(path, "ab") as handle:
        handle.write(b"}\n")
    assert reader.read().lines == [b'S{"i":1}']
    assert reader.at_end()
    reader.close()


def test_record_i_of_a_chunk_is_always_event_seq_plus_one_plus_i(tmp_path):
    chunk = Chunk("1-a.log", 0, 30, [b'S{"i":0}', b"garbage", b'S{"i":2}'])
    marker, events = chunk_events(chunk, 100, 5.0, str(tmp_path),
                                  lambda path, header: ("0" * 64, 0))
    assert marker[:2] == (100, "ledger")
    assert json.loads(marker[3]) == {"file": "1-a.log", "from": 0, "to": 30, "n": 3, "e": 2}
    assert [(seq, kind) for seq, kind, _, _ in events] == [(101, "statistic"),
                                                           (103, "statistic")]


def test_recovery_journals_a_dead_runners_ledger_once(journal, tmp_path):
    leftover = dead_execution(tmp_path, journal,
                              [b'S{"i":%d}\n' % i for i in range(1000)] + [b'S{"i":10'])
    assert recover(journal, leftover) == 1000
    assert stats(journal) == list(range(1000))
    assert not os.path.exists(leftover.directory)  # its writer is gone: nothing left to read
    assert recover(journal, leftover) == 0
    assert stats(journal) == list(range(1000))


def test_a_range_half_journalled_before_the_runner_died_is_completed_not_doubled(
        journal, tmp_path):
    records = [b'S{"i":%d}\n' % i for i in range(10)]
    leftover = dead_execution(tmp_path, journal, records)
    # The dead runner had read the first 6 records, inserted their marker, then only 2 of
    # its events (MongoDB's unordered insert_many can stop anywhere), then died.
    name = "999999998-abcd.log"
    chunk = Chunk(name, 0, sum(len(r) for r in records[:6]), [r[:-1] for r in records[:6]])
    marker, events = chunk_events(chunk, first_seq(1) + 1, 2.0, leftover.directory,
                                  lambda path, header: ("0" * 64, 0))
    journal.append_events(trial_id=TRIAL, events=[marker, events[0], events[3]])
    recover(journal, leftover)
    assert stats(journal) == list(range(10))
    markers = journal.read_events(trial_id=TRIAL, kinds=("ledger",))
    assert [(m.data["from"], m.data["n"]) for m in markers] == [(0, 6), (chunk.end, 4)]


def test_recovery_skips_another_journals_ledger(journal, tmp_path):
    leftover = dead_execution(tmp_path, journal, [b'S{"i":0}\n'])
    other = Leftover(leftover.directory, leftover.trial_id, leftover.execution,
                     "sqlite:///elsewhere.db")
    assert recover(journal, other) is None
    assert stats(journal) == []
    assert ledger.leftovers(str(tmp_path / "spool"))[0].journal == journal.uri


def test_recovery_stores_an_artifacts_bytes_before_its_event(journal, tmp_path):
    leftover = dead_execution(tmp_path, journal, [])
    blob = os.path.join(leftover.directory, "999999998-abcd-1.blob")
    with open(blob, "wb") as handle:
        handle.write(b"weights")
    import hashlib

    header = {"filename": "w.bin", "metadata": {"epoch": 3}, "blob": "999999998-abcd-1.blob",
              "sha256": hashlib.sha256(b"weights").hexdigest(), "size": 7}
    with open(os.path.join(leftover.directory, "999999998-abcd.log"), "ab") as handle:
        handle.write(b"B" + json.dumps(header).encode() + b"\n")
    assert recover(journal, leftover) == 1
    [event] = journal.read_events(trial_id=TRIAL, kinds=("artifact",))
    assert event.data["metadata"] == {"epoch": 3}
    with journal.open_blob(sha256=header["sha256"]) as handle:
        assert handle.read() == b"weights"


def test_live_writer_journals_ledger_chunks_with_markers_first(journal, tmp_path):
    directory = tmp_path / "d"
    directory.mkdir()
    (directory / "999999998-x.log").write_bytes(b"".join(b'S{"i":%d}\n' % i for i in range(20)))
    reader = LedgerReader(str(directory))
    writer = Writer(journal, TRIAL, first_seq(1) + 1, Spool(str(tmp_path / "s"), TRIAL, 1),
                    0.01, ledger_dir=str(directory))
    writer.start()
    for chunk in reader.drain():
        writer.send(LedgerChunk(chunk))
    writer.send(Stop())
    writer.join(timeout=10)
    assert stats(journal) == list(range(20))
    assert reader.all_read()
    ledger.finish(str(directory), reader, complete=writer.durable)
    assert not directory.exists()


class Refusing:
    """A store that refuses some events for their content, and fails in odd ways."""

    def __init__(self, store):
        self.store = store

    def append_events(self, *, trial_id, events):
        if any('"bad"' in data for _, _, _, data in events):
            raise ValueError("document refused")
        return self.store.append_events(trial_id=trial_id, events=events)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_the_writer_survives_a_refused_event_and_counts_it(journal, tmp_path):
    writer = Writer(Refusing(journal), TRIAL, first_seq(1) + 1,
                    Spool(str(tmp_path / "s"), TRIAL, 1), 0.01)
    writer.start()
    writer.events("statistic", 1.0, [encode({"i": 0}), encode({"bad": 1}), encode({"i": 1})])
    writer.send(object())  # a bug of ours (no such message) must not end the thread either
    writer.events("statistic", 2.0, [encode({"i": 2})])
    writer.send(Status("completed", 3.0, {"exit_code": 0}, {}))
    writer.send(Stop())
    writer.join(timeout=10)
    assert stats(journal) == [0, 1, 2]
    final = journal.last_status(trial_id=TRIAL).data
    assert final["problems"] == {"unstorable_events": 1, "errors": 1}


class Full(Spool):
    def _write(self, record):
        raise OSError(28, "No space left on device")


def test_nothing_is_lost_when_journal_and_spool_both_fail_for_a_while(journal, tmp_path):
    import threading

    class Down:
        down = True
        failed = threading.Event()

        def append_events(self, **kwargs):
            if self.down:
                self.failed.set()
                raise StoreUnavailable("injected outage")
            return journal.append_events(**kwargs)

        def __getattr__(self, name):
            return getattr(journal, name)

    store = Down()
    writer = Writer(store, TRIAL, first_seq(1) + 1, Full(str(tmp_path / "s"), TRIAL, 1), 0.01)
    writer.retry_interval = 0.0
    writer.start()
    writer.events("stdout", 1.0, [encode({"line": str(i)}) for i in range(100)])
    writer.send(Heartbeat(1.5))  # a flush: the journal and the spool both refuse
    assert store.failed.wait(10)
    store.down = False
    writer.send(Heartbeat(2.0))
    writer.send(Stop())
    writer.join(timeout=10)
    assert writer.finish()
    lines = journal.read_events(trial_id=TRIAL, kinds=("stdout",))
    assert [e.data["line"] for e in lines] == [str(i) for i in range(100)]
    assert writer.problems.get("spool_failures", 0) >= 1


@pytest.mark.parametrize("code, interrupted, stop, expected", [
    (0, None, False, "completed"),
    (1, None, False, "broken"),
    (137, None, False, "broken"),
    (130, None, False, "interrupted"),
    (143, 15, False, "interrupted"),
    (0, 15, False, "interrupted"),
    (0, None, True, "suspended"),
    (137, None, True, "suspended"),
])
def test_final_status_rule(code, interrupted, stop, expected):
    assert final_status(code, interrupted=interrupted, stop_requested=stop) == expected


def test_without_a_writable_ledger_calls_go_over_the_socket(git_repo, db_uri):
    """A ledger that cannot be written (here: gone) costs one warning, not one record."""
    from tests.conftest import run_kleio, write

    write(git_repo / "fallback.py", """
        import os, shutil
        from kleio.client.logger import kleio_logger
        shutil.rmtree(os.environ["KLEIO_LEDGER"])
        for i in range(500):
            kleio_logger.log_statistic(i=i)
        kleio_logger.log_artifact("w.bin", b"x" * 3_000_000, epoch=1)
        print(len(kleio_logger.statistics()), kleio_logger.load_artifact("w.bin")[1])
    """)
    result = run_kleio("python", "fallback.py", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "500 {'epoch': 1}\n"
    assert result.stderr.count("cannot write the ledger") == 1


def test_a_reader_ignores_what_is_not_a_regular_file_and_closes_ended_writers(tmp_path):
    directory = tmp_path / "d"
    directory.mkdir()
    os.mkfifo(directory / "1-fifo.log")  # would block an open() for ever
    (directory / "2-dir.log").mkdir()
    (directory / "3-link.log").symlink_to(tmp_path / "elsewhere")
    (directory / "999999998-x.log").write_bytes(b'S{"i":0}\n')
    reader = LedgerReader(str(directory))
    chunks = reader.poll()
    assert [c.lines for c in chunks] == [[b'S{"i":0}']]
    assert reader.ignored == {"1-fifo.log", "2-dir.log", "3-link.log"}
    reader.close_finished()  # its writer (a pid that cannot exist) has ended
    assert reader.files["999999998-x.log"].fd == -1
    assert reader.poll() == []
    reader.close()


def test_an_endless_record_is_skipped_in_bounded_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(ledger, "MAX_RECORD", 1000)
    path = tmp_path / "1-a.log"
    path.write_bytes(b"S" + b"x" * 5000 + b'\nS{"i":1}\n')
    reader = LedgerFile(str(path))
    lines = []
    while reader.read_to < os.path.getsize(path):
        chunk = reader.read(100)
        assert reader.partial_size <= 1100
        if chunk is not None:
            lines += chunk.lines
    assert lines == [b"", b'S{"i":1}']  # the same index as a recovery gives it
    marker, events = chunk_events(Chunk("1-a.log", 0, reader.offset,
                                        path.read_bytes().split(b"\n")[:2]), 10, 1.0,
                                  str(tmp_path), lambda path, header: None)
    assert [seq for seq, *_ in events] == [12]
    reader.close()


def test_an_artifact_record_naming_a_file_that_is_not_a_blob_is_skipped(tmp_path):
    asked = []
    chunk = Chunk("1-a.log", 0, 10, [b'B{"blob": "runner.json", "sha256": "x", "size": 1}',
                                     b'B{"blob": "../../etc/passwd.blob"}'])
    _, events = chunk_events(chunk, 1, 1.0, str(tmp_path),
                             lambda path, header: asked.append(path) or None)
    assert events == [] and asked == [str(tmp_path / "passwd.blob")]


def test_a_ledger_waits_while_its_spool_is_not_replayed(journal, tmp_path):
    leftover = dead_execution(tmp_path, journal, [b'S{"i":0}\n'])
    spool = Spool(str(tmp_path / "spool"), TRIAL, 1)
    spool.add_events([(first_seq(1) + 1, "stdout", 1.0, encode({"line": "x"}))])
    spool.close()
    os.rename(spool.path, spool.path.replace(f"-{os.getpid()}.", "-999999999."))  # dead runner
    assert recover(journal, leftover) is None  # another process may be replaying it
    assert ledger.recover_trial(journal, str(tmp_path / "spool"), TRIAL) >= 1
    assert stats(journal) == [0]
    assert [e.data["line"] for e in journal.read_events(trial_id=TRIAL, kinds=("stdout",))] \
        == ["x"]


def test_a_program_logging_from_a_signal_handler_never_deadlocks(git_repo, db_uri):
    from tests.conftest import run_kleio, write

    write(git_repo / "handler.py", """
        import os, signal
        from kleio.client.logger import kleio_logger
        signal.signal(signal.SIGUSR1, lambda *a: kleio_logger.log_statistic(signal=1))
        for i in range(20000):
            kleio_logger.log_statistic(i=i)
            if i % 100 == 0:
                os.kill(os.getpid(), signal.SIGUSR1)
    """)
    result = run_kleio("python", "handler.py", cwd=git_repo, timeout=120)
    assert result.returncode == 0, result.stderr
    trial = result.stderr.split("id: ")[1][:7]
    lines = run_kleio("cat", trial, "--statistics", "--json", cwd=git_repo).stdout.splitlines()
    assert len(lines) == 20000 + 200


def test_short_lived_writers_never_exhaust_the_runners_descriptors(git_repo, db_uri):
    """Workers forked and ended by the hundred (DataLoader workers every epoch), with only
    64 descriptors: every record is read, and the program reads its own writes."""
    import subprocess
    import sys

    from tests.conftest import write

    write(git_repo / "forks.py", """
        import os
        from kleio.client.logger import kleio_logger
        for epoch in range(100):
            pids = []
            for w in range(4):
                pid = os.fork()
                if pid == 0:
                    kleio_logger.log_statistic(epoch=epoch, w=w)
                    os._exit(0)
                pids.append(pid)
            for pid in pids:
                os.waitpid(pid, 0)
        print(len(kleio_logger.statistics()))
    """)
    limited = subprocess.run(
        ["sh", "-c", f"ulimit -n 64 && exec {sys.executable} -m kleio python forks.py"],
        cwd=git_repo, capture_output=True, text=True, timeout=120)
    assert limited.returncode == 0, limited.stderr
    assert limited.stdout == "400\n"
