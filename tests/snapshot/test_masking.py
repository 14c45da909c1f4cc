"""kleio.snapshot.masking: secrets masked in the recorded diff, which still applies once
restored from the commit."""

from __future__ import annotations

import subprocess

from kleio.snapshot.masking import mask_patch, restore_patch
from tests.conftest import git


def _repo(tmp_path, files):
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for name, text in files.items():
        (repo / name).write_text(text, encoding="utf-8")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def _diff(repo):
    return subprocess.run(
        ["git", "diff", "HEAD", "--binary", "--src-prefix=a/", "--dst-prefix=b/"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout


def test_a_masked_patch_applies_once_restored_from_the_commit(tmp_path):
    # The commit holds a key; the working tree removes it and adds another secret: both are
    # masked in the recorded diff, and the diff still applies to the commit.
    repo = _repo(
        tmp_path,
        {
            "train.py": 'import os\nAPI_KEY = "sk-committedcommittedcommitted"\nlr = 0.1\n',
            "my file.yaml": "user: me\npassword: old\n",
        },
    )
    (repo / "train.py").write_text(
        'import os\nAPI_KEY = os.environ["KEY"]\nlr = 0.2\n', encoding="utf-8"
    )
    (repo / "my file.yaml").write_text("user: me\npassword: new-secret\n", encoding="utf-8")
    (repo / "blob.bin").write_bytes(b"\0password=x\0")
    git(repo, "add", "-N", "blob.bin")
    original = _diff(repo)
    masked, found = mask_patch(original)
    assert b"committed" not in masked and b"new-secret" not in masked and b"old" not in masked
    # Same lines, but for the blob ids of the masked files (hashes of their secrets).
    assert masked.count(b"\n") == original.count(b"\n") - 2
    assert [line for line in masked.splitlines() if line.startswith(b"index ")] == [
        line for line in original.splitlines() if line.startswith(b"index 0000000")
    ]
    assert b"Binary" in masked or b"GIT binary patch" in masked  # kept as git wrote it
    # Counted: what a checkout shows masked (added lines), not what it puts back.
    assert found == {"my file.yaml": 1}

    def base(path):
        shown = subprocess.run(
            ["git", "cat-file", "blob", f"HEAD:{path}"], cwd=repo, capture_output=True
        )
        return shown.stdout if shown.returncode == 0 else None

    restored = restore_patch(masked, base)
    assert b"sk-committedcommittedcommitted" in restored  # from the commit, not the journal
    assert b"new-secret" not in restored
    git(repo, "reset", "-q", "--hard")
    (repo / "p.diff").write_bytes(restored)
    git(repo, "apply", "p.diff")
    assert (repo / "train.py").read_text(encoding="utf-8").endswith("lr = 0.2\n")
    assert (repo / "my file.yaml").read_text(encoding="utf-8") == "user: me\npassword: ***\n"


def test_restoring_never_takes_a_line_that_does_not_match():
    patch = (
        b"diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,2 +1,2 @@\n"
        b' KEY = "***"\n-x = 1\n+x = 2\n'
    )
    assert restore_patch(patch, lambda path: b'OTHER = "y"\nx = 1\n') == patch
    assert b'KEY = "abc"' in restore_patch(patch, lambda path: b'KEY = "abc"\nx = 1\n')
    assert restore_patch(patch, lambda path: None) == patch


def test_quoted_paths_are_read(tmp_path):
    name = 'q"u\to\u00e9.yaml'
    repo = _repo(tmp_path, {name: "password: a\nx: 1\n"})
    (repo / name).write_text("password: a\nx: 2\n", encoding="utf-8")
    masked, found = mask_patch(_diff(repo))
    assert b"password: ***" in masked and found == {}  # a context line: not counted
    restored = restore_patch(
        masked, lambda path: (repo / path).read_bytes() if path == name else None
    )
    assert b" password: a\n" in restored


def test_garbage_patches_do_not_crash():
    for patch in [
        b"",
        b"@@ -1 +1 @@\n+password=x\n",
        b'diff --git "a/\\q" "b\n',
        b"@@ -99999999999999999999,1 +1 @@\n",
        b"\xff\xfe password=x\n",
        b"diff --git a/x b/x\n@@ -1,1000000 +1,1000000 @@\n password: x",
    ]:
        masked, _ = mask_patch(patch)
        restore_patch(masked, lambda path: b"password: x\n")
