"""``kleio cat --statistics`` of a long trial through the real entry point: the table (made
on two cores past a few batches) and ``--json`` are the bytes of one statistic at a time."""

from __future__ import annotations

import json
import random

from kleio.cli.cat_helper import MIN_ROWS
from kleio.cli.cat_table import stream_table
from kleio.storage import open_store
from kleio.storage.base import encode, first_seq
from tests.conftest import run_kleio


def test_a_long_trial_s_table_and_json(git_repo, db_uri):
    rng = random.Random(8)
    stats = []
    for step in range(3 * 20000 + 11):  # four batches of the store's reads, two to the child
        stat = {"step": step, "epoch": step // 1000, "loss": rng.random() * 10 ** (step // 9000)}
        if step % 20000 == 17:
            stat["acc"] = rng.random()  # a column only some statistics have
        stats.append(stat)
    with open_store(db_uri) as store:
        store.create_trial(doc={"id": "a" * 32, "created_at": 1.0, "status": "completed"})
        seq = first_seq(1)
        for start in range(0, len(stats), 5000):
            store.append_events(
                trial_id="a" * 32,
                events=[
                    (seq + i, "statistic", 1.0, encode(s))
                    for i, s in enumerate(stats[start : start + 5000], start)
                ],
            )
    assert len(stats) > 2 * MIN_ROWS
    table = run_kleio("cat", "--statistics", "aaaa", cwd=git_repo)
    assert table.returncode == 0, table.stderr
    assert table.stdout == "".join(stream_table(lambda: iter(stats)))
    lines = run_kleio("cat", "--statistics", "--json", "aaaa", cwd=git_repo)
    assert lines.returncode == 0, lines.stderr
    assert [json.loads(line) for line in lines.stdout.splitlines()] == stats
