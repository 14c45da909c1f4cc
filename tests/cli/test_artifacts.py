"""``kleio artifacts ID NAME -o FILE | --extract DIR``: where a trial's artifact is written."""

from __future__ import annotations

import json
import os

import pytest

from kleio import errors
from tests.conftest import git, run_kleio, write

# A file artifact, and two archives as a checkpoint of a directory journals them: one whose
# second member climbs out of the directory it is extracted into.
PROGRAM = """
    import io, tarfile
    from kleio.client.logger import kleio_logger as k

    def archive(*names):
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w") as tar:
            for name in names:
                info = tarfile.TarInfo(name)
                info.size = 2
                tar.addfile(info, io.BytesIO(b"ok"))
        data.seek(0)
        return data

    k.log_artifact("weights.bin", b"new weights")
    k.log_artifact("ck", archive("a.txt", "sub/b.txt"), archive="tar")
    k.log_artifact("evil", archive("first.txt", "../escaped.txt", "last.txt"), archive="tar")
"""


@pytest.fixture
def trial(git_repo, db_uri):
    write(git_repo / "art.py", PROGRAM)
    git(git_repo, "add", "art.py")
    git(git_repo, "commit", "-qm", "art")
    ran = run_kleio("-q", "python", "art.py", "--seed", "1", cwd=git_repo)
    assert ran.returncode == 0, ran.stderr
    return json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)[0]["id"][:8]


def refused(trial, *args, cwd):
    result = run_kleio("artifacts", trial, *args, cwd=cwd)
    assert result.returncode == errors.EXIT_USAGE, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    return result.stderr


def test_o_onto_an_existing_file_replaces_it_and_makes_it_private(trial, git_repo, tmp_path):
    out = tmp_path / "w.bin"
    out.write_bytes(b"an older and longer file")
    out.chmod(0o644)
    written = run_kleio("artifacts", trial, "weights.bin", "-o", str(out), cwd=git_repo)
    assert written.returncode == 0, written.stderr
    assert out.read_bytes() == b"new weights"
    assert out.stat().st_mode & 0o777 == 0o600


def test_o_where_no_file_can_be_written_is_one_sentence_naming_the_path(trial, git_repo, tmp_path):
    missing = tmp_path / "nosuch" / "w.bin"
    assert refused(trial, "weights.bin", "-o", str(missing), cwd=git_repo) == (
        f"error: cannot write to {missing}: the directory {missing.parent} does not exist. "
        "Create it first, or give -o a path in an existing directory.\n"
    )
    assert refused(trial, "weights.bin", "-o", str(tmp_path), cwd=git_repo) == (
        f"error: cannot write to {tmp_path}: it is a directory. "
        f"Give a file's path, e.g. {tmp_path / 'NAME'}.\n"
    )
    (tmp_path / "file").write_text("x")
    under_a_file = tmp_path / "file" / "w.bin"
    assert "does not exist" in refused(trial, "weights.bin", "-o", str(under_a_file), cwd=git_repo)
    # A full disk, when written.
    if os.path.exists("/dev/full"):
        full = refused(trial, "weights.bin", "-o", "/dev/full", cwd=git_repo)
        assert full.startswith("error: cannot write to /dev/full: No space left on device.")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_o_into_a_directory_one_may_not_write_says_so(trial, git_repo, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert "permission denied" in refused(
        trial, "weights.bin", "-o", str(locked / "w.bin"), cwd=git_repo
    )


def test_extract_writes_the_archive_or_nothing_of_it(trial, git_repo, tmp_path):
    good = tmp_path / "good"
    assert run_kleio("artifacts", trial, "ck", "--extract", str(good), cwd=git_repo).returncode == 0
    assert (good / "sub" / "b.txt").read_bytes() == b"ok"
    # The bad member comes second: the first is not written either, nor the one after.
    bad = tmp_path / "bad"
    message = refused(trial, "evil", "--extract", str(bad), cwd=git_repo)
    assert "'../escaped.txt', which would land outside" in message
    assert "Nothing was extracted." in message
    assert list(bad.iterdir()) == [] and not (tmp_path / "escaped.txt").exists()
    # A directory that cannot be made.
    (tmp_path / "plain").write_text("x")
    message = refused(trial, "ck", "--extract", str(tmp_path / "plain"), cwd=git_repo)
    assert message == (
        f"error: cannot extract into {tmp_path / 'plain'}: it, or a directory above it, is a "
        "file. Give --extract a directory you may write to (it is made if missing).\n"
    )
