"""The in-program client: argument checks, conversions, print fallback, resume support."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kleio.client.logger import KleioLogger
from tests.conftest import run_kleio


@pytest.fixture
def logger(monkeypatch):
    monkeypatch.delenv("KLEIO_CHANNEL", raising=False)
    return KleioLogger()


def test_positional_arguments_are_rejected_with_the_reason(logger):
    with pytest.raises(TypeError, match="keyword arguments only.*name every value"):
        logger.log_statistic(0.5)
    with pytest.raises(TypeError, match="at least one keyword"):
        logger.log_statistic()


def test_non_json_value_names_its_key(logger):
    with pytest.raises(TypeError, match="'weights' is a set"):
        logger.log_statistic(epoch=1, weights={1, 2})
    with pytest.raises(TypeError, match="metadata 'obj' is a object"):
        logger.log_artifact("a.bin", b"x", obj=object())


def test_circular_value_is_a_clear_error(logger):
    loop = []
    loop.append(loop)
    with pytest.raises(TypeError, match="'loop'"):
        logger.log_statistic(loop=loop)


def test_print_fallback_without_kleio(logger, capsys):
    logger.log_statistic(epoch=np.int64(3), loss=np.float32(0.5), acc=np.array(0.25))
    logger.log_artifact("w.bin", io.BytesIO(b"12345"), epoch=3)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "kleio: statistic epoch=3 loss=0.5 acc=0.25",
        "kleio: artifact w.bin (5 bytes) epoch=3",
    ]
    assert logger.statistics() == []
    assert logger.load_artifact("w.bin") is None
    assert logger.active is False and logger.trial_id is None


def test_text_file_is_rejected(logger, tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("hello")
    with path.open("r") as handle, pytest.raises(TypeError, match="binary mode"):
        logger.log_artifact("t.txt", handle)
    with pytest.raises(TypeError, match="binary file object or bytes"):
        logger.log_artifact("t.txt", 42)


def test_importing_the_client_imports_no_driver():
    code = (
        "import sys, kleio.client.logger\n"
        "bad = [m for m in ('sqlite3', 'pymongo', 'yaml', 'git', 'psutil', 'numpy') "
        "if m in sys.modules]\nprint(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"


def test_importing_the_client_adds_no_slow_standard_module():
    """json, re, enum and typing cost tens of ms at a program's start: none is imported."""
    code = (
        "import sys\nbefore = set(sys.modules)\nimport kleio.client.logger\n"
        "print(sorted(set(sys.modules) - before & {'json', 're', 'enum', 'typing', "
        "'threading', 'socket', 'hashlib'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_numpy_values_statistics_and_artifacts_round_trip(git_repo, db_uri):
    (git_repo / "job.py").write_text(
        textwrap.dedent("""
        import io, numpy as np
        from kleio.client.logger import kleio_logger as k
        k.log_statistic(epoch=np.int64(1), loss=np.float64(0.5), acc=np.array(0.75),
                        vec=np.arange(3), nested={"a": [1, 2.5, None, True]})
        k.log_artifact("ckpt.bin", io.BytesIO(b"first"), epoch=1, kind="ckpt")
        k.log_artifact("ckpt.bin", b"second" * 300000, epoch=2, kind="ckpt")
        k.log_artifact("other.bin", b"x", epoch=2)
        print(k.statistics())
        found, meta = k.load_artifact("ckpt.bin", kind="ckpt")
        print(len(found.read()), meta)
        found, meta = k.load_artifact(epoch=1)
        print(found.read(), meta)
        print(k.load_artifact("missing.bin"))
    """),
        encoding="utf-8",
    )
    result = run_kleio("python", "job.py", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "[{'epoch': 1, 'loss': 0.5, 'acc': 0.75, 'vec': [0, 1, 2], "
        "'nested': {'a': [1, 2.5, None, True]}}]"
    )
    assert lines[1] == "1800000 {'epoch': 2, 'kind': 'ckpt'}"
    assert lines[2] == "b'first' {'epoch': 1, 'kind': 'ckpt'}"
    assert lines[3] == "None"
    trial = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)[0]["id"]
    info = json.loads(run_kleio("info", trial, "--json", cwd=git_repo).stdout)
    assert info["counts"]["artifact"] == 3 and info["counts"]["statistic"] == 1


def test_example_resumes_from_its_checkpoint(git_repo, db_uri, tmp_path):
    import shutil
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "logistic_regression.py"
    shutil.copy(example, git_repo / "train.py")
    subprocess.run(["git", "add", "train.py"], cwd=git_repo, check=True)
    subprocess.run(["git", "commit", "-qm", "example"], cwd=git_repo, check=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kleio",
            "python",
            "train.py",
            "--epochs",
            "12",
            "--checkpoint-every",
            "4",
            "--sleep",
            "0.15",
        ],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("epoch   6"):
            break
    proc.send_signal(2)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    resumed = run_kleio(
        "python",
        "train.py",
        "--epochs",
        "12",
        "--checkpoint-every",
        "4",
        "--sleep",
        "0.15",
        cwd=git_repo,
    )
    assert resumed.returncode == 0, resumed.stderr
    first = resumed.stdout.splitlines()[0]
    assert first == "resuming from the checkpoint of epoch 4"
    assert resumed.stdout.splitlines()[1].startswith("epoch   5")
    trial = json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)[0]["id"]
    stats = run_kleio("cat", trial, "--statistics", "--json", cwd=git_repo).stdout.splitlines()
    epochs = [json.loads(line)["epoch"] for line in stats]
    assert epochs[-8:] == list(range(5, 13))


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
