"""kleio.writer.thread and kleio.writer.outage: refused events counted, nothing lost through
outages."""

from __future__ import annotations

import pytest

from kleio.errors import StoreUnavailable
from kleio.spool import Spool
from kleio.storage.base import encode, first_seq
from kleio.writer import Heartbeat, Status, Stop, Writer
from tests.ledger.conftest import TRIAL, reserved_journal, stats


@pytest.fixture
def journal(tmp_path):
    store = reserved_journal(tmp_path / "k.db")
    yield store
    store.close()


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
    writer = Writer(
        Refusing(journal), TRIAL, first_seq(1) + 1, Spool(str(tmp_path / "s"), TRIAL, 1), 0.01
    )
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
    assert journal.get_trial(trial_id=TRIAL)["problems"] == final["problems"]  # ls --json


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


def test_the_writer_handles_outages_with_outage_and_the_lease_defines_no_stub():
    # The lease calls _down and _retry, which the outage half defines: the lease declares
    # them for the type checker only, so no order of the writer's bases can pick a stub.
    from kleio.writer.lease import Lease
    from kleio.writer.outage import Outage

    assert Writer._down is Outage._down and Writer._retry is Outage._retry
    assert Writer.finish is Outage.finish and Writer.retry_interval == 2.0
    assert not {"_down", "_retry", "_fields"} & set(vars(Lease))


@pytest.mark.parametrize("batched", [True, False])
def test_an_os_error_while_writing_is_an_outage_not_a_refusal(journal, tmp_path, batched):
    """Seen in CI: no descriptor left (EMFILE) for the import a first statistic needs; the
    statistics were dropped as refused. They wait in the spool, then reach the journal."""
    import errno

    class Starved:
        calls = 0

        def append_events(self, *, trial_id, events):
            self.calls += 1
            # batched: the batch fails; else the batch is refused for its content and the
            # one-by-one salvage then meets the OSError.
            if self.calls == 1 and not batched:
                raise ValueError("document refused")
            if self.calls <= 3:
                raise OSError(errno.EMFILE, "Too many open files")
            return journal.append_events(trial_id=trial_id, events=events)

        def __getattr__(self, name):
            return getattr(journal, name)

    store = Starved()
    writer = Writer(store, TRIAL, first_seq(1) + 1, Spool(str(tmp_path / "s"), TRIAL, 1), 0.01)
    writer.retry_interval = 0.0
    writer.start()
    writer.events("statistic", 1.0, [encode({"i": i}) for i in range(50)])
    writer.send(Heartbeat(1.5))
    writer.events("statistic", 2.0, [encode({"i": i}) for i in range(50, 60)])
    writer.send(Status("completed", 3.0, {"exit_code": 0}, {}))
    writer.send(Stop())
    writer.join(timeout=10)
    assert writer.finish()
    assert stats(journal) == list(range(60))
    assert "unstorable_events" not in writer.problems
    assert journal.get_trial(trial_id=TRIAL)["problems"] is None
