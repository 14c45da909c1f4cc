"""kleio.spool: what the runner could not write, replayed once the journal is back; never
twice, never over a newer execution, never by two processes at once."""

from __future__ import annotations

import os

import pytest

from kleio.spool import Spool, leftover_files
from kleio.storage.base import encode
from tests.journals import one_trial_journal


@pytest.fixture
def journal(tmp_path):
    store = one_trial_journal(tmp_path / "k.db")
    yield store
    store.close()


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
