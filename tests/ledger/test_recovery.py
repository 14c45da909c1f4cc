"""kleio.ledger.recovery: a dead runner's ledger journalled exactly once, by whoever comes next."""

from __future__ import annotations

import json
import os

from kleio.ledger.directories import Leftover, leftovers
from kleio.ledger.events import chunk_events
from kleio.ledger.reader import Chunk
from kleio.ledger.recovery import recover, recover_trial
from kleio.spool import Spool
from kleio.storage.base import encode, first_seq
from tests.ledger.conftest import TRIAL, dead_execution, stats


def test_recovery_journals_a_dead_runners_ledger_once(journal, tmp_path):
    leftover = dead_execution(
        tmp_path, journal, [b'S{"i":%d}\n' % i for i in range(1000)] + [b'S{"i":10']
    )
    assert recover(journal, leftover) == 1000
    assert stats(journal) == list(range(1000))
    assert not os.path.exists(leftover.directory)  # its writer is gone: nothing left to read
    assert recover(journal, leftover) == 0
    assert stats(journal) == list(range(1000))


def test_a_range_half_journalled_before_the_runner_died_is_completed_not_doubled(journal, tmp_path):
    records = [b'S{"i":%d}\n' % i for i in range(10)]
    leftover = dead_execution(tmp_path, journal, records)
    # The dead runner had read the first 6 records, inserted their marker, then only 2 of
    # its events (MongoDB's unordered insert_many can stop anywhere), then died.
    name = "999999998-abcd.log"
    chunk = Chunk(name, 0, sum(len(r) for r in records[:6]), [r[:-1] for r in records[:6]])
    marker, events = chunk_events(
        chunk, first_seq(1) + 1, 2.0, leftover.directory, lambda path, header: ("0" * 64, 0)
    )
    journal.append_events(trial_id=TRIAL, events=[marker, events[0], events[3]])
    recover(journal, leftover)
    assert stats(journal) == list(range(10))
    markers = journal.read_events(trial_id=TRIAL, kinds=("ledger",))
    assert [(m.data["from"], m.data["n"]) for m in markers] == [(0, 6), (chunk.end, 4)]


def test_recovery_skips_another_journals_ledger(journal, tmp_path):
    leftover = dead_execution(tmp_path, journal, [b'S{"i":0}\n'])
    other = Leftover(
        leftover.directory, leftover.trial_id, leftover.execution, "sqlite:///elsewhere.db"
    )
    assert recover(journal, other) is None
    assert stats(journal) == []
    assert leftovers(str(tmp_path / "spool"))[0].journal == journal.uri


def test_recovery_stores_an_artifacts_bytes_before_its_event(journal, tmp_path):
    leftover = dead_execution(tmp_path, journal, [])
    blob = os.path.join(leftover.directory, "999999998-abcd-1.blob")
    with open(blob, "wb") as handle:
        handle.write(b"weights")
    import hashlib

    header = {
        "filename": "w.bin",
        "metadata": {"epoch": 3},
        "blob": "999999998-abcd-1.blob",
        "sha256": hashlib.sha256(b"weights").hexdigest(),
        "size": 7,
    }
    with open(os.path.join(leftover.directory, "999999998-abcd.log"), "ab") as handle:
        handle.write(b"B" + json.dumps(header).encode() + b"\n")
    assert recover(journal, leftover) == 1
    [event] = journal.read_events(trial_id=TRIAL, kinds=("artifact",))
    assert event.data["metadata"] == {"epoch": 3}
    with journal.open_blob(sha256=header["sha256"]) as handle:
        assert handle.read() == b"weights"


def test_a_ledger_waits_while_its_spool_is_not_replayed(journal, tmp_path):
    leftover = dead_execution(tmp_path, journal, [b'S{"i":0}\n'])
    spool = Spool(str(tmp_path / "spool"), TRIAL, 1)
    spool.add_events([(first_seq(1) + 1, "stdout", 1.0, encode({"line": "x"}))])
    spool.close()
    os.rename(spool.path, spool.path.replace(f"-{os.getpid()}.", "-999999999."))  # dead runner
    assert recover(journal, leftover) is None  # another process may be replaying it
    assert recover_trial(journal, str(tmp_path / "spool"), TRIAL) >= 1
    assert stats(journal) == [0]
    assert [e.data["line"] for e in journal.read_events(trial_id=TRIAL, kinds=("stdout",))] == ["x"]
