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


def test_cat_artifact_writes_the_newest_matching_one(git_repo, db_uri, tmp_path):
    (git_repo / "save.py").write_text(
        "import io\n"
        "from kleio.client.logger import kleio_logger\n"
        "for epoch in range(3):\n"
        "    data = io.BytesIO(b'weights %d' % epoch)\n"
        "    kleio_logger.log_artifact('model.bin', data, epoch=epoch)\n"
        "kleio_logger.log_artifact('-dash', io.BytesIO(b'dash'))\n",
        encoding="utf-8",
    )
    assert run_kleio("-q", "python", "save.py", "--seed", "1", cwd=git_repo).returncode == 0
    (row,) = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)
    trial = row["id"][:8]
    newest = run_kleio("cat", "--artifact", "model.bin", trial, cwd=git_repo)
    assert (newest.returncode, newest.stdout) == (0, "weights 2")
    chosen = run_kleio("cat", "--artifact", "model.bin", "--where", "epoch=1", trial, cwd=git_repo)
    assert chosen.stdout == "weights 1"
    out = tmp_path / "out.bin"
    written = run_kleio("cat", "--artifact=-dash", "-o", str(out), trial, cwd=git_repo)
    assert written.returncode == 0, written.stderr
    assert out.read_bytes() == b"dash" and (out.stat().st_mode & 0o777) == 0o600
    missing = run_kleio("cat", "--artifact", "nope", trial, cwd=git_repo)
    assert missing.returncode == 66 and "has no artifact named 'nope'" in missing.stderr
    for wrong in (["--where", "epoch=1"], ["-o", str(out)], ["--artifact", "x", "--statistics"]):
        refused = run_kleio("cat", *wrong, trial, cwd=git_repo)
        assert refused.returncode == 64 and "Traceback" not in refused.stderr, wrong
