"""``kleio ls`` costs MongoDB a constant number of requests, whatever ``--limit`` says.

Counted, not timed: pymongo's command monitoring sees every command the CLI's store sends
to the live server (nx-27017 unless ``KLEIO_TEST_MONGODB_URI``). A page reads its trials'
summaries, status events and lineages with the batched reads of
:mod:`kleio.storage.batched` (see :mod:`kleio.api.prefetch`); reading them trial by trial
cost three or more requests a row.
"""

from __future__ import annotations

import json

import pytest

pymongo = pytest.importorskip("pymongo")

from pymongo import monitoring  # noqa: E402

import kleio.api.journal as journal_module  # noqa: E402
import kleio.cli.ls as ls  # noqa: E402
from kleio.storage.base import encode, first_seq  # noqa: E402
from kleio.storage.mongodb import MongoDBStore  # noqa: E402

pytestmark = pytest.mark.mongodb

EXEC1 = first_seq(1)


class Commands(monitoring.CommandListener):
    """The commands sent, as ``name:collection`` (handshakes and heartbeats left out)."""

    IGNORED = frozenset({"hello", "ismaster", "isMaster", "endSessions", "ping", "buildInfo"})

    def __init__(self) -> None:
        self.sent: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in self.IGNORED:
            self.sent.append(f"{event.command_name}:{event.command.get(event.command_name)}")

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def trial_id(index: int) -> str:
    return f"{index:04x}" + "ab" * 30


def fill(store: MongoDBStore, count: int = 70) -> None:
    """Completed trials with statistics; every tenth a branch of the one before, cut before
    its last statistic (so its inherited part is summarized up to the cut); one declares its
    metrics, one is held by a runner that died after journalling its final status."""
    for index in range(count):
        doc = {
            "id": trial_id(index),
            "created_at": 1000.0 + index,
            "status": "completed",
            "parent": None,
            "tags": ["sweep"],
            "project": "p",
            "config": {"lr": str(index / 100), "seed": str(index % 3)},
            "argv": ["python", "train.py", "--lr", str(index / 100)],
            "command": ["python", "train.py", "--lr", str(index / 100)],
            "ended_at": 1010.0 + index,
        }
        if index % 10 == 9:
            doc["parent"] = {"id": trial_id(index - 1), "cut": EXEC1 + 4}
        if index == 33:  # held in the cache, its runner long dead
            doc.update(
                status="running",
                heartbeat_at=1.0,
                runner={"host": "elsewhere", "pid": 1, "since": 1.0},
            )
        store.create_trial(doc=doc)
        events = [
            (EXEC1, "status", 1.0 + index, encode({"status": "reserved"})),
            (EXEC1 + 1, "status", 2.0 + index, encode({"status": "running"})),
        ]
        if index == 20:
            events.append(
                (
                    EXEC1 + 2,
                    "metrics",
                    2.0,
                    encode({"metrics": {"val_loss": "min"}, "primary": "val_loss"}),
                )
            )
        events += [
            (
                EXEC1 + 3 + k,
                "statistic",
                3.0 + k,
                encode({"epoch": k, "val_loss": 1.0 / (k + 1 + index), "acc": k / 8}),
            )
            for k in range(5)
        ]
        events.append((EXEC1 + 9, "status", 9.0 + index, encode({"status": "completed"})))
        store.append_events(trial_id=doc["id"], events=events)


@pytest.fixture
def listened(mongodb_db_uri, monkeypatch):
    """The CLI's store on a client whose commands are counted."""
    commands = Commands()
    client = pymongo.MongoClient(
        mongodb_db_uri, event_listeners=[commands], serverSelectionTimeoutMS=5000
    )
    with MongoDBStore(mongodb_db_uri) as store:
        fill(store)
    import kleio.storage

    monkeypatch.setattr(
        kleio.storage, "open_store", lambda uri: MongoDBStore(mongodb_db_uri, client=client)
    )
    yield mongodb_db_uri, commands
    client.close()


def listed(uri: str, commands: Commands, capsys, *args: str) -> tuple[list[str], str]:
    capsys.readouterr()
    commands.sent.clear()
    assert ls.main(list(args), {"db": uri}) == 0
    return list(commands.sent), capsys.readouterr().out


@pytest.mark.parametrize("extra", [(), ("--json",), ("--where", "lr<0.5"), ("--sort", "-val_loss")])
def test_a_page_costs_the_same_requests_whatever_its_length(listened, capsys, extra):
    uri, commands = listened
    small, shown_small = listed(uri, commands, capsys, "--limit", "5", *extra)
    large, shown_large = listed(uri, commands, capsys, "--limit", "50", *extra)
    if "--json" in extra:
        assert len(json.loads(shown_small)) == 5 and len(json.loads(shown_large)) == 50
    else:
        assert len(shown_large.splitlines()) > len(shown_small.splitlines())
    assert sorted(small) == sorted(large), (small, large)
    # 33: the page's trials, their summaries, statuses and lineages, a ranking's batches,
    # and (since e4d5653) one query for which of them have branches.
    assert len(large) <= 33, large


def test_what_a_page_shows_is_what_reading_trial_by_trial_shows(listened, capsys, monkeypatch):
    uri, commands = listened
    _, batched = listed(uri, commands, capsys, "--json", "--limit", "70")

    def one_by_one(store, trials):  # the summaries only: the rest is read trial by trial
        from kleio.api.prefetch import EMPTY

        for trial in trials:
            if trial._summary is None:
                trial._summary = store.read_summaries(trial_ids=[trial.id]).get(trial.id) or dict(
                    EMPTY
                )

    monkeypatch.setattr(journal_module, "prefetch", one_by_one)
    slow, alone = listed(uri, commands, capsys, "--json", "--limit", "70")
    assert len(slow) > 70 * 2  # what the batched reads save
    rows = json.loads(batched)
    assert rows == json.loads(alone)
    by_id = {row["id"]: row for row in rows}
    assert by_id[trial_id(33)]["status"] == "completed"  # the last status event, not 'lost'
    branch = by_id[trial_id(29)]
    # Its parent's statistics up to the cut (epochs 0, 1), then its own five.
    assert branch["parent"] == trial_id(28)
    assert branch["metrics"]["val_loss"]["best"] == pytest.approx(1 / 34)
    assert branch["metrics"]["acc"]["best"] == pytest.approx(4 / 8)
    assert by_id[trial_id(20)]["primary_metric"] == "val_loss"
    assert branch["started_at"] == 31.0 and branch["duration"] == 7.0
