from __future__ import annotations

import hashlib
import importlib.metadata  # noqa: F401  (imported before tests narrow sys.path)
import json
import os
import sys

import pytest

from kleio.git import find_root as find_repo_root
from kleio.snapshot import code as code_module
from kleio.snapshot import environment
from kleio.snapshot.code import code_snapshot
from kleio.snapshot.compare import Change, code_changes, env_changes, host_changes
from kleio.snapshot.environment import env_snapshot
from kleio.snapshot.host import host_snapshot
from tests.conftest import git


def changes(old, new, kind):
    """The lines of the changes of ``kind`` that refuse a resume (what the gate lists)."""
    compare = code_changes if kind == "code" else env_changes
    return [change.message for change in compare(old, new) if change.refuses]


def snap(path):
    return code_snapshot(str(path), find_repo_root(str(path)), "train.py")


# -- code ----------------------------------------------------------------------------------


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


# -- env and host --------------------------------------------------------------------------


def test_env_snapshot_shape_and_secrets(monkeypatch):
    monkeypatch.setenv("MY_API_TOKEN", "s3cr3t-value")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("PYTHONPATH", "https://u:pw@host/x")
    env = env_snapshot()
    text = json.dumps(env)
    assert "MY_API_TOKEN" not in text and "s3cr3t-value" not in text
    assert "pw@" not in text
    assert env["variables"]["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert env["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert env["python"]["executable"] == sys.executable
    assert set(env["platform"]) == {"system", "release", "machine"}
    assert env["packages"]["pytest"] == importlib.metadata.version("pytest")


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()

    def install(name, version):
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        return info

    monkeypatch.setattr(sys, "path", [str(site)])
    scans = []
    real_scan = environment._scan_packages
    monkeypatch.setattr(environment, "_scan_packages", lambda: scans.append(1) or real_scan())
    return site, install, scans


def test_package_cache_hit_and_miss(fake_site):
    site, install, scans = fake_site
    info = install("Foo_Bar", "1.0")
    assert environment.installed_packages() == {"foo-bar": "1.0"}
    assert len(scans) == 1
    assert os.path.exists(environment.packages_cache_path())
    # Hit: nothing in sys.path's directories changed (even if a file was edited in place).
    (info / "METADATA").write_text("Name: Foo_Bar\nVersion: 9.9\n", encoding="utf-8")
    assert environment.installed_packages() == {"foo-bar": "1.0"}
    assert len(scans) == 1
    # Miss: installing a distribution changes the directory's mtime.
    install("numpy", "2.0.0")
    stat = os.stat(site)
    os.utime(site, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert environment.installed_packages() == {"foo-bar": "9.9", "numpy": "2.0.0"}
    assert len(scans) == 2


def test_package_cache_survives_a_corrupt_file(fake_site):
    _, install, scans = fake_site
    install("foo", "1")
    path = environment.packages_cache_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("{not json")
    assert environment.installed_packages() == {"foo": "1"}
    assert len(scans) == 1


def test_host_snapshot(monkeypatch):
    monkeypatch.setenv("KLEIO_HOSTNAME", "node-7")
    host = host_snapshot()
    assert host["hostname"] == "node-7"
    assert host["cpus"] == os.cpu_count()
    assert host["memory_bytes"] is None or host["memory_bytes"] > 0
    assert isinstance(host["gpus"], list)
    assert set(host) >= {"hostname", "user", "cpus", "cpu_model", "memory_bytes", "gpus"}


def test_the_hostname_setting_names_the_host_in_the_snapshot(git_repo):
    from kleio.reservation import hostname

    (git_repo / "kleio.yaml").write_text("hostname: login-node\n", encoding="utf-8")
    assert host_snapshot()["hostname"] == "login-node"  # as the runner is named
    assert host_snapshot("given")["hostname"] == "given"
    assert hostname() == os.uname().nodename and hostname("x") == "x"


def test_gpus_are_asked_once_per_boot(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = bin_dir / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\n"
        f"echo x >> '{calls}'\n"
        'if [ -n "$1" ]; then echo "NVIDIA A100-SXM4-40GB, 40960 MiB, 535.104.05"; '
        'else echo "| NVIDIA-SMI 535.104.05   Driver Version: 535.104.05   CUDA Version: 12.2 |"; '
        "fi\n",
        encoding="utf-8",
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(environment, "_boot_id", lambda: "boot-1")
    expected = {
        "driver": "535.104.05",
        "cuda": "12.2",
        "gpus": [{"name": "NVIDIA A100-SXM4-40GB", "memory": "40960 MiB"}],
    }
    assert environment.gpu_info() == expected
    assert host_snapshot()["gpus"] == expected["gpus"]
    assert env_snapshot()["gpu"] == {"driver": "535.104.05", "cuda": "12.2"}
    assert len(calls.read_text().splitlines()) == 2  # one query and one summary, then cached
    monkeypatch.setattr(environment, "_boot_id", lambda: "boot-2")
    environment.gpu_info()
    assert len(calls.read_text().splitlines()) == 4


# -- change detection ----------------------------------------------------------------------


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


def test_env_snapshot_records_the_variable_lists(monkeypatch):
    monkeypatch.setenv("TF_DETERMINISTIC_OPS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    env = env_snapshot()
    assert env["variables"]["TF_DETERMINISTIC_OPS"] == "1"
    assert env["variables"]["OMP_NUM_THREADS"] == "4"
    assert env["variables_version"] == 2


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
