"""kleio.snapshot.code: the code a trial ran, from git (commit, diff, untracked sources) or
from the script alone, masked before it is stored."""

from __future__ import annotations

import hashlib
import json
import os

from kleio.snapshot import code as code_module
from kleio.snapshot.code import code_snapshot
from tests.conftest import git
from tests.snapshot.helpers import changes, snap


def test_clean_repo(git_repo):
    doc, blobs = snap(git_repo)
    head = git(git_repo, "rev-parse", "HEAD").strip()
    assert doc == {
        "vcs": "git",
        "repository": "example.invalid/team/project",
        "branch": "main",
        "commit": head,
        "detached": False,
        "dirty": False,
        "diff_sha256": None,
        "diff_size": 0,
        "diffstat": [],
        "untracked": [],
        "untracked_skipped": 0,
    }
    assert blobs == {}


def test_dirty_repo_has_diffstat_and_diff_blob(git_repo):
    (git_repo / "train.py").write_text("print('changed')\n", encoding="utf-8")
    (git_repo / "weights.bin").write_bytes(b"\0\1\2")
    git(git_repo, "add", "weights.bin")
    git(git_repo, "commit", "-q", "-m", "weights")
    (git_repo / "weights.bin").write_bytes(b"\0\1\3")
    doc, blobs = snap(git_repo)
    assert doc["dirty"] is True
    assert doc["diffstat"] == [
        {"path": "train.py", "added": 1, "removed": 2},
        {"path": "weights.bin", "added": None, "removed": None},
    ]
    patch = blobs[doc["diff_sha256"]]
    assert hashlib.sha256(patch).hexdigest() == doc["diff_sha256"]
    assert doc["diff_size"] == len(patch)
    assert b"+print('changed')" in patch
    assert b"GIT binary patch" in patch
    # The stored diff applies: it is the real thing.
    git(git_repo, "checkout", "--", ".")
    (git_repo / "p.diff").write_bytes(patch)
    git(git_repo, "apply", "p.diff")
    assert (git_repo / "train.py").read_text(encoding="utf-8") == "print('changed')\n"


def test_untracked_sources_are_recorded(git_repo):
    (git_repo / "helper.py").write_text("X = 1\n", encoding="utf-8")
    (git_repo / "pkg").mkdir()
    (git_repo / "pkg" / "mod.py").write_text("Y = 2\n", encoding="utf-8")
    (git_repo / "results.json").write_text("{}", encoding="utf-8")  # output, not code
    (git_repo / "big.py").write_bytes(b"#" * (code_module.MAX_UNTRACKED_SIZE + 1))
    (git_repo / "binary.py").write_bytes(b"\0\1")
    doc, blobs = snap(git_repo)
    assert doc["dirty"] is False
    assert [f["path"] for f in doc["untracked"]] == ["helper.py", "pkg/mod.py"]
    first = doc["untracked"][0]
    assert first["size"] == 6
    assert blobs[first["sha256"]] == b"X = 1\n"


def test_secrets_in_the_diff_and_untracked_sources_are_masked_before_storing(git_repo):
    (git_repo / "train.py").write_text(
        'API_KEY = "sk-abcdefghijklmnopqrstuvwxyz"\nlr = 1\n', encoding="utf-8"
    )
    (git_repo / "setup.sh").write_text("export DB_PASSWORD=hunter2\necho ok\n", encoding="utf-8")
    doc, blobs = snap(git_repo)
    stored = b"".join(blobs.values())
    assert b"sk-abcdefghij" not in stored and b"hunter2" not in stored
    patch = blobs[doc["diff_sha256"]]
    assert b'+API_KEY = "***"' in patch
    # Content-addressed: the hashes are those of what is stored, the masked text.
    assert hashlib.sha256(patch).hexdigest() == doc["diff_sha256"]
    [untracked] = doc["untracked"]
    assert blobs[untracked["sha256"]] == b"export DB_PASSWORD=***\necho ok\n"
    assert untracked["size"] == len(blobs[untracked["sha256"]])
    assert doc["secrets_masked"] == {"setup.sh": 1, "train.py": 1}
    # Change detection: any other edit is a change; a new value of a masked secret is not,
    # as a new --password is not a new trial.
    (git_repo / "train.py").write_text(
        'API_KEY = "sk-zyxwvutsrqponmlkjihgfedcba"\nlr = 1\n', encoding="utf-8"
    )
    assert changes(doc, snap(git_repo)[0], "code") == []
    (git_repo / "train.py").write_text(
        'API_KEY = "sk-zyxwvutsrqponmlkjihgfedcba"\nlr = 2\n', encoding="utf-8"
    )
    assert changes(doc, snap(git_repo)[0], "code") == ["uncommitted change: train.py (+2 -2)"]


def test_the_diff_is_made_with_prefixes_git_apply_expects(git_repo):
    git(git_repo, "config", "diff.noprefix", "true")
    git(git_repo, "config", "diff.mnemonicPrefix", "true")
    (git_repo / "train.py").write_text("print(2)\n", encoding="utf-8")
    doc, blobs = snap(git_repo)
    assert b"--- a/train.py\n+++ b/train.py\n" in blobs[doc["diff_sha256"]]


def test_the_script_is_masked_when_stored_outside_git(tmp_path):
    (tmp_path / "train.py").write_text(
        "TOKEN = 'ghp_abcdefghijklmnopqrstuvwxyz01'\n", encoding="utf-8"
    )
    doc, blobs = code_snapshot(str(tmp_path), None, "train.py")
    assert blobs == {doc["script_sha256"]: b"TOKEN = '***'\n"}
    assert doc["secrets_masked"] == {"train.py": 1}


def test_untracked_files_are_capped(git_repo, monkeypatch):
    monkeypatch.setattr(code_module, "MAX_UNTRACKED_FILES", 2)
    for index in range(4):
        (git_repo / f"m{index}.py").write_text(str(index), encoding="utf-8")
    doc, _ = snap(git_repo)
    assert [f["path"] for f in doc["untracked"]] == ["m0.py", "m1.py"]
    assert doc["untracked_skipped"] == 2


def test_detached_head(git_repo):
    head = git(git_repo, "rev-parse", "HEAD").strip()
    git(git_repo, "checkout", "-q", "--detach")
    doc, _ = snap(git_repo)
    assert doc["detached"] is True
    assert doc["branch"] is None
    assert doc["commit"] == head


def test_repo_without_commit(tmp_path):
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "trunk")
    (repo / "train.py").write_text("print(1)\n", encoding="utf-8")
    doc, blobs = snap(repo)
    assert doc["commit"] is None
    assert doc["branch"] == "trunk"
    assert doc["dirty"] is False
    assert doc["repository"] == str(repo)
    assert [f["path"] for f in doc["untracked"]] == ["train.py"]
    git(repo, "add", "train.py")
    doc, blobs = snap(repo)
    assert doc["dirty"] is True
    assert doc["diffstat"] == [{"path": "train.py", "added": 1, "removed": 0}]
    assert b"+print(1)" in blobs[doc["diff_sha256"]]


def test_no_repo_hashes_the_script(tmp_path):
    script = tmp_path / "train.py"
    script.write_bytes(b"print('hi')\n")
    doc, blobs = code_snapshot(str(tmp_path), None, "train.py")
    digest = hashlib.sha256(b"print('hi')\n").hexdigest()
    assert doc == {"vcs": None, "script": str(script), "script_sha256": digest}
    assert blobs == {digest: b"print('hi')\n"}
    doc, blobs = code_snapshot(str(tmp_path), None, "pkg.module")
    assert doc["script_sha256"] is None and blobs == {}


def test_origin_password_is_not_recorded(git_repo):
    git(git_repo, "remote", "set-url", "origin", "https://bob:hunter2@example.invalid/t/p.git")
    doc, _ = snap(git_repo)
    assert doc["repository"] == "example.invalid/t/p"
    assert "hunter2" not in json.dumps(doc)


def test_unusable_repository_falls_back_to_the_script(tmp_path):
    (tmp_path / ".git").mkdir()  # not a repository: git refuses it
    (tmp_path / "train.py").write_text("a", encoding="utf-8")
    doc, _ = code_snapshot(str(tmp_path), str(tmp_path), "train.py")
    assert doc["vcs"] is None
    assert doc["script_sha256"] == hashlib.sha256(b"a").hexdigest()
    assert doc["vcs_error"]


def test_config_files_outside_the_repository_are_stored_masked(git_repo, tmp_path):
    from kleio.snapshot.code import MAX_CONFIG_BLOB

    outside = tmp_path / "exp"
    outside.mkdir()
    (outside / "a.yaml").write_text("lr: 0.1\npassword: hunter2hunter2\n", encoding="utf-8")
    (outside / "big.json").write_bytes(b"[" + b"1," * MAX_CONFIG_BLOB + b"1]")
    (git_repo / "in.yaml").write_text("lr: 1\n", encoding="utf-8")
    named = {"../exp/a.yaml": "x", "../exp/big.json": "y", "in.yaml": "z"}
    doc, blobs = code_snapshot(str(git_repo), str(git_repo), "train.py", named)
    by_path = {entry["path"]: entry for entry in doc["config_files"]}
    assert set(by_path) == {"../exp/a.yaml", "../exp/big.json"}  # in.yaml: git has it
    small = by_path["../exp/a.yaml"]
    assert small["absolute"] == str(outside / "a.yaml")
    stored = blobs[small["sha256"]]
    assert b"lr: 0.1" in stored and b"hunter2" not in stored
    assert doc["secrets_masked"] == {"../exp/a.yaml": 1}
    assert by_path["../exp/big.json"]["sha256"] is None
    assert by_path["../exp/big.json"]["size"] > MAX_CONFIG_BLOB
    # Without git too.
    alone, blobs = code_snapshot(str(outside), None, None, {"a.yaml": "x"})
    assert alone["config_files"][0]["path"] == "a.yaml"


def test_a_hung_git_status_is_told_and_leaves_nothing_running(tmp_path, monkeypatch):
    """git status that never answers (a hook, a dead network file system): after the
    timeout the snapshot says so, and what git started dies with it."""
    from kleio import git as git_module
    from kleio.reservation import pid_alive

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    grandchild = tmp_path / "grandchild.pid"
    fake = bin_dir / "git"
    fake.write_text(
        f"#!/bin/sh\nsleep 300 &\necho $! > {grandchild}\nexec sleep 300\n", encoding="utf-8"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(git_module, "TIMEOUT", 1.0)
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "train.py").write_text("a", encoding="utf-8")
    doc, _ = code_snapshot(str(repo), str(repo), "train.py")
    assert doc["vcs"] is None
    assert doc["vcs_error"] == "git status did not answer within 1 s"
    pid = int(grandchild.read_text(encoding="utf-8"))
    for _ in range(1000):  # SIGKILL was sent to its group; wait until it is gone
        if not pid_alive(pid):
            break
        os.sched_yield()
    else:
        os.kill(pid, 9)
        raise AssertionError("git's own child outlived the timeout")
