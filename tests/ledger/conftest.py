"""What the ledger tests share: a journal with one reserved trial, a dead runner's ledger."""

from __future__ import annotations

import json

import pytest

from kleio.ledger import Leftover
from kleio.storage import open_store
from kleio.storage.base import encode, first_seq

TRIAL = "t" * 64


def reserved_journal(path):
    """A SQLite journal at ``path`` holding :data:`TRIAL`, reserved by its first execution."""
    store = open_store("sqlite://" + str(path))
    store.create_trial(
        doc={
            "schema_version": 1,
            "id": TRIAL,
            "created_at": 1.0,
            "command": ["x"],
            "status": "new",
            "tags": [],
            "parent": None,
        }
    )
    store.append_events(
        trial_id=TRIAL, events=[(first_seq(1), "status", 1.0, encode({"status": "reserved"}))]
    )
    return store


@pytest.fixture
def journal(tmp_path):
    store = reserved_journal(tmp_path / "k.db")
    yield store
    store.close()


def dead_execution(tmp_path, store, records: list[bytes], execution: int = 1) -> Leftover:
    """An execution directory whose runner and writer are gone (pids that cannot exist)."""
    directory = tmp_path / "spool" / "ledger" / f"{TRIAL}-{execution}-999999999"
    directory.mkdir(parents=True)
    (directory / "runner.json").write_text(
        json.dumps({"pid": 999_999_999, "pid_start": None, "journal": store.uri})
    )
    (directory / "999999998-abcd.log").write_bytes(b"".join(records))
    return Leftover(str(directory), TRIAL, execution, store.uri)


def stats(store) -> list[int]:
    return [e.data["i"] for e in store.read_events(trial_id=TRIAL, kinds=("statistic",))]
