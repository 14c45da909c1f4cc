"""kleio.snapshot.compare: the changes between two snapshots, and which of them refuse a
resume (code, environment) or are only listed (host, volatile environment)."""

from __future__ import annotations

import pytest

from kleio.snapshot import environment
from kleio.snapshot.code import code_snapshot
from kleio.snapshot.compare import Change, code_changes, env_changes, host_changes
from kleio.snapshot.environment import env_snapshot
from tests.conftest import git
from tests.snapshot.helpers import changes, snap


def test_code_changes_both_ways(git_repo):
    before, _ = snap(git_repo)
    assert changes(before, snap(git_repo)[0], "code") == []
    (git_repo / "train.py").write_text("print('changed')\n", encoding="utf-8")
    (git_repo / "helper.py").write_text("X = 1\n", encoding="utf-8")
    dirty, _ = snap(git_repo)
    assert changes(before, dirty, "code") == [
        "uncommitted change: train.py (+1 -2)",
        "untracked file added: helper.py",
    ]
    assert changes(dirty, before, "code") == [
        "uncommitted changes removed",
        "uncommitted change reverted: train.py",
        "untracked file removed: helper.py",
    ]
    # Same line counts, other content: still a change.
    (git_repo / "train.py").write_text("print('other')\n", encoding="utf-8")
    (git_repo / "helper.py").write_text("X = 2\n", encoding="utf-8")
    assert changes(dirty, snap(git_repo)[0], "code") == [
        "uncommitted change: train.py (+1 -2)",
        "untracked file changed: helper.py",
    ]
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "second")
    committed, _ = snap(git_repo)
    old_head, new_head = before["commit"][:7], committed["commit"][:7]
    assert changes(before, committed, "code") == [f"commit {old_head} → {new_head}"]
    # The branch name alone is not a code change.
    git(git_repo, "checkout", "-q", "-b", "other")
    assert changes(committed, snap(git_repo)[0], "code") == []


def test_code_changes_without_git(tmp_path):
    (tmp_path / "train.py").write_text("a", encoding="utf-8")
    before, _ = code_snapshot(str(tmp_path), None, "train.py")
    assert changes(before, code_snapshot(str(tmp_path), None, "train.py")[0], "code") == []
    (tmp_path / "train.py").write_text("b", encoding="utf-8")
    after, _ = code_snapshot(str(tmp_path), None, "train.py")
    assert changes(before, after, "code") == [f"script {tmp_path / 'train.py'} changed"]


def env_doc(**overrides):
    doc = {
        "python": {"version": "3.11.7", "implementation": "cpython", "executable": "/a/python"},
        "platform": {"system": "Linux", "release": "6.1", "machine": "x86_64"},
        "packages": {"numpy": "1.26.0", "scipy": "1.11.0", "kleio": "0.1.0"},
        "variables": {"CUDA_VISIBLE_DEVICES": "0", "SLURM_JOB_ID": "1"},
        "gpu": {"driver": "535", "cuda": "12.2"},
    }
    doc.update(overrides)
    return doc


def test_env_changes_both_ways():
    old = env_doc()
    assert changes(old, env_doc(), "env") == []
    assert env_changes(old, env_doc()) == []
    # Volatile: interpreter path with the same version, kernel, job, devices, driver, kleio.
    volatile = env_doc(
        python={"version": "3.11.7", "implementation": "cpython", "executable": "/b/python"},
        platform={"system": "Linux", "release": "6.5", "machine": "x86_64"},
        packages={"numpy": "1.26.0", "scipy": "1.11.0", "kleio": "0.2.0"},
        variables={"CUDA_VISIBLE_DEVICES": "3", "SLURM_JOB_ID": "2"},
        gpu={"driver": "550", "cuda": "12.4"},
    )
    assert changes(old, volatile, "env") == []
    # ... listed all the same, for kleio diff.
    assert [(str(c), c.refuses) for c in env_changes(old, volatile)] == [
        ("python executable /a/python → /b/python", False),
        ("platform release 6.1 → 6.5", False),
        ("package kleio 0.1.0 → 0.2.0", False),
        ("variable CUDA_VISIBLE_DEVICES 0 → 3", False),
        ("variable SLURM_JOB_ID 1 → 2", False),
        ("gpu driver 535 → 550", False),
        ("gpu cuda 12.2 → 12.4", False),
    ]
    new = env_doc(
        python={"version": "3.12.1", "implementation": "cpython", "executable": "/b/python"},
        packages={"numpy": "2.0.0", "torch": "2.3.0", "kleio": "0.1.0"},
        variables={"PYTHONHASHSEED": "0"},
    )
    assert changes(old, new, "env") == [
        "python cpython 3.11.7 → cpython 3.12.1 (/a/python → /b/python)",
        "package numpy 1.26.0 → 2.0.0",
        "package removed: scipy 1.11.0",
        "variable PYTHONHASHSEED (unset) → 0",
    ]
    listed = env_changes(old, new)
    assert [c.message for c in listed if not c.refuses] == [
        "package added: torch 2.3.0",
        "variable CUDA_VISIBLE_DEVICES 0 → (unset)",
        "variable SLURM_JOB_ID 1 → (unset)",
    ]
    assert {c.subject for c in listed} >= {"python", "package:numpy", "variable:PYTHONHASHSEED"}
    assert all(c.kind == "env" for c in listed)
    assert changes(new, old, "env")[1:] == [
        "package numpy 2.0.0 → 1.26.0",
        "package removed: torch 2.3.0",
        "variable PYTHONHASHSEED 0 → (unset)",
    ]


def test_a_package_added_does_not_refuse_but_one_removed_or_changed_does():
    old = env_doc()
    added = env_doc(packages={**old["packages"], "pytest": "8.0.0"})
    assert changes(old, added, "env") == []
    assert env_changes(old, added) == [
        Change("env", "package:pytest", "package added: pytest 8.0.0", False)
    ]
    assert changes(added, old, "env") == ["package removed: pytest 8.0.0"]
    upgraded = env_doc(packages={**old["packages"], "numpy": "1.26.1"})
    assert changes(old, upgraded, "env") == ["package numpy 1.26.0 → 1.26.1"]
    # The platform's system or machine is another build of every package: refused.
    arm = env_doc(platform={"system": "Linux", "release": "6.1", "machine": "aarch64"})
    assert changes(old, arm, "env") == ["platform machine x86_64 → aarch64"]


@pytest.mark.parametrize("name", environment.REPRODUCIBILITY_VARIABLES)
def test_every_reproducibility_variable_refuses(name):
    old = env_doc(variables_version=2)
    new = env_doc(variables={**old["variables"], name: "1"}, variables_version=2)
    assert changes(old, new, "env") == [f"variable {name} (unset) → 1"]


@pytest.mark.parametrize("name", [*environment.PLACEMENT_VARIABLES, "PYTHONPATH", "VIRTUAL_ENV"])
def test_placement_variables_are_listed_but_never_refuse(name):
    old = env_doc(variables={name: "0"}, variables_version=2)
    new = env_doc(variables={name: "1"}, variables_version=2)
    assert changes(old, new, "env") == []
    assert env_changes(old, new) == [
        Change("env", f"variable:{name}", f"variable {name} 0 → 1", False)
    ]


def test_a_variable_recorded_only_since_a_newer_kleio_does_not_refuse_an_old_trial():
    # A trial snapshotted before TF_DETERMINISTIC_OPS was recorded: it may have been set.
    old = env_doc()
    assert "variables_version" not in old
    new = env_doc(variables={**old["variables"], "TF_DETERMINISTIC_OPS": "1"}, variables_version=2)
    assert changes(old, new, "env") == []
    assert [str(c) for c in env_changes(old, new)] == ["variable TF_DETERMINISTIC_OPS (unset) → 1"]
    # The variables recorded from the start still count.
    seeded = env_doc(variables={**old["variables"], "PYTHONHASHSEED": "1"})
    assert changes(old, seeded, "env") == ["variable PYTHONHASHSEED (unset) → 1"]


def test_host_changes_never_refuse():
    old = {
        "hostname": "node1",
        "cpus_available": 8,
        "cpu_model": "x",
        "gpus": [{"name": "A100", "memory": "80 GiB"}],
    }
    new = {"hostname": "node7", "cpus_available": 4, "cpu_model": "x", "gpus": []}
    listed = host_changes(old, new)
    assert [str(c) for c in listed] == [
        "host hostname node1 → node7",
        "host cpus available 8 → 4",
        "host gpus A100 → (none)",
    ]
    assert not any(c.refuses for c in listed)
    assert host_changes(old, old) == []


def test_every_code_change_refuses(git_repo):
    before = snap(git_repo)[0]
    (git_repo / "train.py").write_text("print(2)\n", encoding="utf-8")
    listed = code_changes(before, snap(git_repo)[0])
    assert listed == [Change("code", "diff:train.py", "uncommitted change: train.py (+1 -2)", True)]
    assert str(listed[0]) == "uncommitted change: train.py (+1 -2)"


def test_real_env_snapshots_compare_equal():
    assert changes(env_snapshot(), env_snapshot(), "env") == []


def test_config_file_changes_are_listed_but_never_refuse():
    entry = {"path": "../a.yaml", "absolute": "/a.yaml", "sha256": "1" * 64, "size": 3}
    old = {"vcs": None, "script_sha256": "s", "config_files": [entry]}
    new = {**old, "config_files": [{**entry, "sha256": "2" * 64}]}
    assert code_changes(old, new) == [
        Change("code", "config:../a.yaml", "config file changed: ../a.yaml", False)
    ]
    assert changes(old, new, "code") == []
    # A trial recorded before config files were stored: listed as added, refusing nothing.
    before = {"vcs": None, "script_sha256": "s"}
    assert [c.refuses for c in code_changes(before, new)] == [False]
