from __future__ import annotations

import os
import shutil

import pytest

from kleio.argv import parse_config, script_of
from kleio.git import find_root as find_repo_root
from kleio.git import normalize_remote, project_of
from kleio.identity import (
    config_files,
    describe_command,
    find_recorded,
    legacy_id,
    normalize_command,
    trial_id,
)
from kleio.trial import short_id
from tests.conftest import git


@pytest.mark.parametrize(
    "url",
    [
        "git@github.com:a/b.git",
        "https://github.com/a/b",
        "https://github.com/a/b.git/",
        "https://user:secret@github.com/a/b.git",
        "ssh://git@github.com:22/a/b.git",
        "ssh://git@GitHub.com/a/b",
    ],
)
def test_normalize_remote(url):
    assert normalize_remote(url) == "github.com/a/b"


def test_normalize_remote_local_path():
    assert normalize_remote("/srv/git/project.git") == "/srv/git/project"
    assert normalize_remote("file:///srv/git/project.git") == "/srv/git/project"


def test_project_of_uses_origin_without_credentials(git_repo):
    git(git_repo, "remote", "set-url", "origin", "https://bob:hunter2@example.invalid/t/p.git")
    assert project_of(str(git_repo), str(git_repo)) == "example.invalid/t/p"


def test_project_of_repo_without_origin_uses_root(git_repo):
    git(git_repo, "remote", "remove", "origin")
    sub = git_repo / "sub"
    sub.mkdir()
    assert project_of(str(git_repo), str(sub)) == str(git_repo)


def test_project_of_without_repo_uses_cwd(tmp_path):
    assert find_repo_root(str(tmp_path)) is None
    assert project_of(None, str(tmp_path)) == str(tmp_path)


def test_project_of_linked_worktree(git_repo, tmp_path):
    worktree = tmp_path / "wt"
    git(git_repo, "worktree", "add", "-q", str(worktree))
    assert (worktree / ".git").is_file()
    assert project_of(str(worktree), str(worktree)) == "example.invalid/team/project"


def test_same_command_from_another_cwd_in_repo_has_same_id(git_repo):
    (git_repo / "sub").mkdir()
    (git_repo / "data").mkdir()
    at_root = describe_command(["python", "train.py", "--data", "data"], str(git_repo))
    in_sub = describe_command(["python", "../train.py", "--data", "../data"], str(git_repo / "sub"))
    assert at_root["command"] == in_sub["command"] == ["python", "train.py", "--data", "data"]
    assert at_root["id"] == in_sub["id"]
    assert in_sub["cwd"] == "sub"
    assert at_root["cwd"] == "."


def test_same_origin_in_another_checkout_has_same_id(git_repo, tmp_path):
    other = tmp_path / "elsewhere" / "clone"
    shutil.copytree(git_repo, other)
    first = describe_command(["python", str(git_repo / "train.py"), "--lr", "0.1"], str(git_repo))
    second = describe_command(["python", str(other / "train.py"), "--lr", "0.1"], str(other))
    assert first["root"] != second["root"]
    assert first["id"] == second["id"]
    assert first["command"] == ["python", "train.py", "--lr", "0.1"]


def test_different_options_make_different_ids(git_repo):
    first = describe_command(["python", "train.py", "--lr", "0.1"], str(git_repo))
    second = describe_command(["python", "train.py", "--lr", "0.2"], str(git_repo))
    assert first["id"] != second["id"]


def test_editing_a_referenced_yaml_config_makes_a_new_id(git_repo):
    config = git_repo / "conf.yaml"
    config.write_text("lr: 0.1\n", encoding="utf-8")
    argv = ["python", "train.py", "--config", "conf.yaml"]
    before = describe_command(argv, str(git_repo))
    assert list(before["config_files"]) == ["conf.yaml"]
    assert before == describe_command(argv, str(git_repo))  # stable
    config.write_text("lr: 0.2\n", encoding="utf-8")
    after = describe_command(argv, str(git_repo))
    assert after["id"] != before["id"]


def test_config_files_equals_form_and_positional(git_repo):
    (git_repo / "a.json").write_text("{}", encoding="utf-8")
    (git_repo / "sub").mkdir()
    (git_repo / "sub" / "b.yml").write_text("x: 1", encoding="utf-8")
    files = config_files(["python", "train.py", "--cfg=a.json", "b.yml"], str(git_repo / "sub"))
    assert set(files) == {"sub/b.yml"}  # a.json is not in sub/
    files = config_files(["python", "train.py", "--cfg=../a.json", "b.yml"], str(git_repo / "sub"))
    assert set(files) == {"a.json", "sub/b.yml"}
    assert all(len(digest) == 64 for digest in files.values())


def test_absolute_interpreter_is_reduced_to_its_name(git_repo):
    argv = ["/usr/local/bin/python3.11", "train.py"]
    assert normalize_command(argv, str(git_repo), str(git_repo)) == ["python3.11", "train.py"]
    venv = ["../venv/bin/python", "train.py"]
    assert normalize_command(venv, str(git_repo), str(git_repo)) == ["python", "train.py"]
    # Without a repository, paths stay as typed.
    assert normalize_command(["python", "../x.py"], "/tmp", None) == ["python", "../x.py"]


def test_equals_form_paths_are_normalized(git_repo):
    (git_repo / "data").mkdir()
    (git_repo / "sub").mkdir()
    command = normalize_command(
        ["python", "../train.py", "--data=../data", "--out=../missing"],
        str(git_repo / "sub"),
        str(git_repo),
    )
    assert command == ["python", "train.py", "--data=data", "--out=../missing"]


def test_paths_outside_the_repo_are_kept(git_repo, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("x", encoding="utf-8")
    command = normalize_command(["python", "train.py", str(outside)], str(git_repo), str(git_repo))
    assert command[2] == str(outside)


@pytest.mark.parametrize("form", [["--lr", "0.1"], ["--lr=0.1"]])
def test_parse_config_option_forms(form):
    assert parse_config(["python", "train.py", *form]) == {"lr": "0.1"}


def test_parse_config_full():
    argv = [
        "python",
        "-u",
        "train.py",
        "--lr",
        "0.1",
        "--verbose",
        "-x",
        "3",
        "--tag",
        "a",
        "--tag=b",
        "--shift",
        "-1",
        "in.txt",
        "out dir",
        "--dry-run",
    ]
    assert parse_config(argv) == {
        "lr": "0.1",
        "verbose": True,
        "x": "3",
        "tag": ["a", "b"],
        "shift": "-1",
        "_pos": ["in.txt", "out dir"],
        "dry-run": True,
    }


def test_parse_config_python_m_and_other_programs():
    assert parse_config(["python", "-m", "pkg.train", "--lr", "1"]) == {"lr": "1"}
    assert parse_config(["python", "-W", "ignore", "t.py", "a"]) == {"_pos": ["a"]}
    assert parse_config(["./run.sh", "--n", "2", "--", "--raw"]) == {"n": "2", "_pos": ["--raw"]}
    assert parse_config(["python", "train.py"]) == {}
    assert script_of(["python", "-m", "pkg.train"]) == "pkg.train"
    assert script_of(["python3", "-O", "train.py", "x"]) == "train.py"
    assert script_of(["./run.sh", "x"]) == "./run.sh"
    assert script_of(["python", "-c", "print(1)"]) is None


def test_arguments_with_spaces_survive(git_repo):
    spaced = describe_command(["python", "train.py", "--name", "a b"], str(git_repo))
    split = describe_command(["python", "train.py", "--name", "a", "b"], str(git_repo))
    assert spaced["command"][-1] == "a b"
    assert spaced["config"] == {"name": "a b"}
    assert spaced["argv"] == ["python", "train.py", "--name", "a b"]
    assert spaced["id"] != split["id"]


def test_secrets_are_masked_and_do_not_change_the_id(git_repo):
    first = describe_command(["python", "train.py", "--token", "abc"], str(git_repo))
    second = describe_command(["python", "train.py", "--token", "xyz"], str(git_repo))
    assert first["redacted"] is True
    assert "abc" not in repr(first)
    assert first["id"] == second["id"]


def test_trial_id_is_canonical_and_depends_on_parent():
    base = {"project": "p", "command": ["python", "t.py"], "config_files": {"a": "1", "b": "2"}}
    same = {**base, "config_files": {"b": "2", "a": "1"}}
    assert trial_id(**base) == trial_id(**same)
    child = trial_id(**base, parent={"id": trial_id(**base), "cut": 10})
    assert child != trial_id(**base)
    assert len(trial_id(**base)) == 64
    assert short_id(trial_id(**base)) == trial_id(**base)[:7]


def test_describe_command_without_repo(tmp_path):
    (tmp_path / "t.py").write_text("", encoding="utf-8")
    described = describe_command(["python", "t.py", "--lr", "1"], str(tmp_path))
    assert described["root"] is None
    assert described["project"] == str(tmp_path)
    assert described["cwd"] == str(tmp_path)
    assert described["command"] == ["python", "t.py", "--lr", "1"]
    assert described["script"] == "t.py"
    assert described["config"] == {"lr": "1"}
    assert set(described) == {
        "root", "project", "command", "argv", "redacted", "cwd", "script", "config",
        "config_files", "id",
    }  # fmt: skip


def test_symlinked_checkout(git_repo, tmp_path):
    link = tmp_path / "link"
    os.symlink(git_repo, link)
    direct = describe_command(["python", "train.py"], str(git_repo))
    via_link = describe_command(["python", str(git_repo / "train.py")], str(link))
    assert direct["id"] == via_link["id"]


# -- the same experiment is the same trial (kleio.argv.identity_form) ---------------------


def ids(repo, *commands):
    return [describe_command(["python", "train.py", *c], str(repo))["id"] for c in commands]


def test_equals_and_space_spellings_are_one_trial(git_repo):
    a, b = ids(git_repo, ["--epochs=5"], ["--epochs", "5"])
    assert a == b


def test_the_order_of_named_options_does_not_matter(git_repo):
    a, b, c = ids(
        git_repo,
        ["--lr", "0.1", "--epochs", "5", "--amp"],
        ["--amp", "--epochs=5", "--lr", "0.1"],
        ["--epochs", "5", "--amp", "--lr=0.1"],
    )
    assert a == b == c
    # The command is recorded as typed; only the id uses the identity form.
    doc = describe_command(["python", "train.py", "--lr", "0.1", "--epochs", "5"], str(git_repo))
    assert doc["command"] == ["python", "train.py", "--lr", "0.1", "--epochs", "5"]


def test_positional_order_and_values_still_matter(git_repo):
    a, b = ids(git_repo, ["x", "y", "--lr", "1"], ["y", "x", "--lr", "1"])
    assert a != b
    a, b = ids(git_repo, ["--lr", "1"], ["--lr", "2"])
    assert a != b
    a, b = ids(git_repo, ["--amp", "--lr", "1"], ["--lr", "1"])
    assert a != b


def test_a_flag_before_a_path_may_be_a_positional_argument(git_repo):
    # --verbose may be a flag and a.txt, b.txt positional arguments: swapping the pairs
    # would swap the positionals, so these are two trials.
    a, b = ids(
        git_repo,
        ["--verbose", "a.txt", "--quiet", "b.txt"],
        ["--quiet", "b.txt", "--verbose", "a.txt"],
    )
    assert a != b
    # ... and "--verbose=a.txt" may be an error where "--verbose a.txt" is not.
    a, b = ids(git_repo, ["--verbose=a.txt"], ["--verbose", "a.txt"])
    assert a != b
    # Options around such a pair still move freely.
    a, b = ids(git_repo, ["--lr", "1", "--verbose", "a.txt"], ["--verbose", "a.txt", "--lr=1"])
    assert a == b


def test_repeated_options_and_late_positionals_keep_the_command_as_typed(git_repo):
    a, b = ids(git_repo, ["--tag", "a", "--tag", "b"], ["--tag", "b", "--tag", "a"])
    assert a != b
    # data.csv may be a second value of --lr (nargs='+'): nothing moves.
    a, b = ids(git_repo, ["--lr", "1", "data", "--n", "2"], ["--n", "2", "--lr", "1", "data"])
    assert a != b


def test_identity_form_examples():
    from kleio.argv import identity_form

    assert identity_form(
        ["python", "-u", "t.py", "in", "--b", "2", "--a=1", "--f", "--", "-x"]
    ) == ["python", "-u", "t.py", "in", "--a=1", "--b=2", "--f", "--", "-x"]
    assert identity_form(["python", "t.py", "--v", "a.txt", "--n", "-1"]) == [
        "python",
        "t.py",
        "--n=-1",
        "--v",
        "a.txt",
    ]
    # Single-dash options move, but keep their spelling: -n=3 may mean the value "=3".
    assert identity_form(["python", "t.py", "-n", "3", "-a"]) == ["python", "t.py", "-a", "-n", "3"]
    assert identity_form(["python", "t.py", "-n=3"]) != identity_form(["python", "t.py", "-n", "3"])
    # Already in the identity form: the same id as kleio 0.1 gave it.
    assert identity_form(["./run.sh", "--a=1"]) == ["./run.sh", "--a=1"]


def test_old_trials_are_found_by_their_legacy_id(git_repo, tmp_path):
    from kleio.storage import open_store

    doc = describe_command(["python", "train.py", "--lr", "0.1", "--epochs", "5"], str(git_repo))
    old = legacy_id(doc)
    assert old is not None and old != doc["id"]
    store = open_store("sqlite://" + str(tmp_path / "j.db"))
    try:
        assert find_recorded(store, doc) is None
        # A trial journalled by kleio 0.1: its id is the hash of the command as typed.
        recorded = {**doc, "id": old, "status": "interrupted", "created_at": 1.0}
        store.create_trial(doc=recorded)
        assert find_recorded(store, doc)["id"] == old
        # A command already in the identity form had the same id before: nothing to find.
        same = describe_command(["python", "train.py", "--epochs=5"], str(git_repo))
        assert legacy_id(same) is None
    finally:
        store.close()
