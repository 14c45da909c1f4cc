"""What the tests of kleio diff, checkout and pdb share: two trials a branch apart
(different options, code and untracked files), and a trial whose journal was tampered with."""

from __future__ import annotations

import io
import json
import sqlite3

from kleio.storage import open_store
from tests.cli.test_branch import branched
from tests.cli.test_run import short_id, write
from tests.conftest import git, run_kleio

STATS = """
    import sys
    from kleio.client.logger import kleio_logger
    lr = float(sys.argv[2])
    for epoch in (1, 2, 3):
        kleio_logger.log_statistic(epoch=epoch, loss=lr / epoch, acc=0.5 + lr * epoch)
    kleio_logger.log_artifact("w.bin", b"weights-%d" % int(lr * 10), epoch=3)
"""


def _two_trials(git_repo):
    write(git_repo / "fit.py", STATS)
    git(git_repo, "add", "fit.py")
    git(git_repo, "commit", "-q", "-m", "fit")
    a = short_id(run_kleio("python", "fit.py", "--lr", "0.1", cwd=git_repo).stderr)
    with open(git_repo / "fit.py", "a", encoding="utf-8") as handle:
        handle.write("print('changed')\n")
    write(git_repo / "util.py", "HELPER = 1\n")
    result = run_kleio("branch", a, "--lr", "0.2", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    return a, branched(result.stderr)[1]


def _tampered(git_repo, db_uri, original=None, *, untracked=None, patch=None, **fields):
    """A trial (a new one, or ``original`` again) whose journal says what a tampered one
    would; returns its id."""
    if original is None:
        trial = short_id(run_kleio("python", "train.py", cwd=git_repo).stderr)
        with open_store(db_uri) as store:
            [original] = store.find_trials(id_prefix=trial)
    doc = json.loads(json.dumps(original))
    code = doc["code"]
    with open_store(db_uri) as store:
        if untracked is not None:
            digest, size = store.put_blob(fileobj=io.BytesIO(b"echo pwned\n"))
            code["untracked"] = [{"path": untracked, "sha256": digest, "size": size}]
        if patch is not None:
            code["diff_sha256"], code["diff_size"] = store.put_blob(fileobj=io.BytesIO(patch))
            code["dirty"] = True
    code.update(fields)
    # As whoever can write the journal file would: past the store's own API.
    with sqlite3.connect(db_uri[len("sqlite://") :]) as db:
        db.execute("UPDATE trials SET doc = ? WHERE id = ?", (json.dumps(doc), doc["id"]))
    db.close()
    return doc["id"][:7]
