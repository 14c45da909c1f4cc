"""kleio sync: the spools a dead runner left replayed into the journal, its partial
artifacts removed."""

from __future__ import annotations

import json
import os

import pytest

from kleio.spool import Spool, leftover_files
from kleio.storage.base import encode
from kleio.writer import Stop, Writer
from tests.conftest import run_kleio
from tests.journals import FlakyStore, one_trial_journal


@pytest.fixture
def journal(tmp_path):
    store = one_trial_journal(tmp_path / "k.db")
    yield store
    store.close()


def test_store_still_down_at_exit_leaves_spool_for_sync(journal, tmp_path, monkeypatch):
    spool_dir = tmp_path / "spool"
    flaky = FlakyStore(journal)
    flaky.down = True
    writer = Writer(flaky, "t" * 64, 1 << 32, Spool(str(spool_dir), "t" * 64, 1), 0.05)
    writer.start()
    writer.events("stdout", 1.0, [encode({"line": f"line {i}"}) for i in range(10)])
    writer.send(Stop())
    writer.join(timeout=10)
    assert not writer.finish()
    [(path, pid)] = leftover_files(str(spool_dir))
    assert pid == os.getpid()
    # A dead runner's spool: rename it to a pid that cannot be alive, then `kleio sync`.
    dead = path.replace(f"-{pid}.jsonl", "-999999999.jsonl")
    os.rename(path, dead)
    monkeypatch.setenv("KLEIO_DB", "sqlite://" + str(tmp_path / "k.db"))
    monkeypatch.setenv("KLEIO_SPOOL_DIR", str(spool_dir))
    result = run_kleio("sync", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["replayed"][0]["events"] == 10
    lines = [e.data["line"] for e in journal.read_events(trial_id="t" * 64, kinds=("stdout",))]
    assert lines == [f"line {i}" for i in range(10)]
    again = run_kleio("sync")
    assert "nothing to sync" in again.stdout


def test_sync_removes_partial_artifacts_of_dead_runners(tmp_path, monkeypatch):
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    (spool_dir / "artifact-999999999-abc").write_bytes(b"partial")
    (spool_dir / f"artifact-{os.getppid()}-def").write_bytes(b"in progress")
    monkeypatch.setenv("KLEIO_DB", "sqlite://" + str(tmp_path / "k.db"))
    monkeypatch.setenv("KLEIO_SPOOL_DIR", str(spool_dir))
    result = run_kleio("sync", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["removed"] == ["artifact-999999999-abc"]
    assert sorted(p.name for p in spool_dir.iterdir()) == [f"artifact-{os.getppid()}-def"]
