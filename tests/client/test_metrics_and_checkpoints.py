"""declare_metrics and checkpoint: printed without kleio, journalled under it, restored whole."""

from __future__ import annotations

import json

import pytest

from kleio.client.logger import KleioLogger
from tests.conftest import git, run_kleio, write


@pytest.fixture
def logger(monkeypatch):
    monkeypatch.delenv("KLEIO_CHANNEL", raising=False)
    return KleioLogger()


def test_without_kleio_calls_print(logger, capsys, tmp_path):
    logger.declare_metrics(val_loss="minimize", val_acc="max", primary="val_acc")
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "w.txt").write_text("w")
    logger.checkpoint(
        str(tmp_path / "ck"),
        step=3,
        metrics={"val_loss": 0.2},
        primary_metric=("val_loss", "minimize"),
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "kleio: metrics val_loss=min val_acc=max (primary val_acc)"
    assert out[1] == "kleio: metrics val_loss=min (primary val_loss)"
    assert out[2] == "kleio: statistic step=3 val_loss=0.2"
    assert out[3].startswith("kleio: artifact ") and "archive='tar' step=3" in out[3]
    assert logger.load_checkpoint(str(tmp_path / "ck")) is None


def test_bad_declarations(logger):
    with pytest.raises(TypeError, match="keyword arguments only"):
        logger.declare_metrics("loss")
    with pytest.raises(TypeError, match="at least one"):
        logger.declare_metrics()
    with pytest.raises(ValueError, match="'loss' must be 'min' or 'max'"):
        logger.declare_metrics(loss="best")
    with pytest.raises(TypeError, match="primary"):
        logger.declare_metrics(primary=3)
    with pytest.raises(FileNotFoundError):
        logger.checkpoint("/nonexistent/kleio/ck", step=1)


PROGRAM = """
    import os, sys
    from kleio.client.logger import kleio_logger as k
    if sys.argv[sys.argv.index("--mode") + 1] == "save":
        k.declare_metrics(score="min")
        os.makedirs("ck/sub", exist_ok=True)
        open("ck/sub/w.txt", "w").write("weights")
        open("single.bin", "wb").write(b"one")
        k.checkpoint("ck", step=1, metrics={"score": 5.0})
        k.checkpoint("single.bin", step=1)
        open("ck/sub/w.txt", "w").write("later")
        k.checkpoint("ck", step=2, metrics={"score": 7.0}, primary_metric=("score", "min"))
        open("ck/extra.txt", "w").write("extra")
    else:
        import shutil
        shutil.rmtree("ck"); os.remove("single.bin")
        meta = k.load_checkpoint("ck", step=1)
        print("meta", meta["step"], open("ck/sub/w.txt").read(), os.path.exists("ck/extra.txt"))
        k.load_checkpoint("single.bin")
        print("single", open("single.bin").read())
"""


def test_checkpoint_is_journalled_and_restored_whole(git_repo, db_uri):
    write(git_repo / "ck.py", PROGRAM)
    git(git_repo, "add", "ck.py")
    git(git_repo, "commit", "-q", "-m", "ck")
    saved = run_kleio("-q", "python", "ck.py", "--mode", "save", cwd=git_repo)
    assert saved.returncode == 0, saved.stderr
    listed = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)[0]
    assert listed["primary_metric"] == "score"
    assert listed["metrics"]["score"] == {
        "mode": "min",
        "last": 7.0,
        "best": 5.0,
        "best_step": 1,
        "step_key": "step",
    }
    branched = run_kleio("branch", listed["id"][:8], "--mode", "load", cwd=git_repo)
    assert branched.returncode == 0, branched.stderr
    assert "meta 1 weights False" in branched.stdout
    assert "single one" in branched.stdout
