"""kleio.client.checkpoints: how a checkpoint's file or directory is restored."""

from __future__ import annotations

import io
import json
import os
import tarfile

import pytest

from kleio.client.checkpoints import artifact_name, restore, stays_inside
from tests.conftest import git, run_kleio, write


def archive(**members: bytes) -> io.BytesIO:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name.replace("__", "/"))
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    data.seek(0)
    return data


def test_artifact_name_drops_a_trailing_separator():
    assert artifact_name("ckpt/") == "ckpt"
    assert artifact_name("/") == "/"


def test_restore_rewrites_a_file_and_extracts_a_directory(tmp_path):
    target = tmp_path / "new" / "w.pt"
    restore(str(target), io.BytesIO(b"weights"), {})
    assert target.read_bytes() == b"weights"
    restore(str(tmp_path / "ck"), archive(a=b"1", sub__b=b"2"), {"archive": "tar"})
    assert (tmp_path / "ck" / "sub" / "b").read_bytes() == b"2"


def test_restore_refuses_a_member_outside_the_directory(tmp_path):
    with pytest.raises(ValueError, match="would land outside it"):
        restore(str(tmp_path / "ck"), archive(**{"..__evil": b"x"}), {"archive": "tar"})
    assert not (tmp_path / "evil").exists()


def _member(name, kind=tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


def test_stays_inside_takes_files_below_the_root_and_nothing_else(tmp_path):
    root = os.path.realpath(tmp_path)
    for name in ("a", "sub/b", ".", "sub/../c"):
        assert stays_inside(root, _member(name)), name
    for name in ("../x", "/etc/passwd", "sub/../../x"):
        assert not stays_inside(root, _member(name)), name
    for kind in (tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE):
        assert not stays_inside(root, _member("a", kind)), kind


def test_kleio_artifacts_refuses_an_archive_member_outside_the_directory(tmp_path):
    from kleio.cli.artifacts import _extract
    from kleio.errors import UsageError

    class Store:
        def open_blob(self, sha256):
            return io.BytesIO(archive(**{"ok": b"1", "..__evil": b"x"}).getvalue())

    with pytest.raises(UsageError, match="would land outside"):
        _extract(Store(), "0" * 64, str(tmp_path / "out"))
    assert not (tmp_path / "evil").exists()


CHECKPOINT_PROGRAM = """
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
    write(git_repo / "ck.py", CHECKPOINT_PROGRAM)
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
