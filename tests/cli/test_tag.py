"""``kleio tag ID +NAME -NAME``: which names can be tags."""

from __future__ import annotations

import json

import pytest

from kleio import errors
from kleio.storage import open_store
from tests.conftest import git, run_kleio, write


@pytest.fixture
def trial(git_repo, db_uri):
    write(git_repo / "t.py", "print('hi')\n")
    git(git_repo, "add", "t.py")
    git(git_repo, "commit", "-qm", "t")
    assert run_kleio("-q", "python", "t.py", "--seed", "1", cwd=git_repo).returncode == 0
    return json.loads(run_kleio("ls", "--json", cwd=git_repo).stdout)[0]["id"]


def tags_of(trial, cwd):
    return json.loads(run_kleio("tag", trial[:8], "--json", cwd=cwd).stdout)["tags"]


@pytest.mark.parametrize(
    "tag, message",
    [
        (
            "+ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "error: refusing the tag '***': it looks like a secret (a token, or a password=... "
            "pair), and tags are shown and exported as they are. Tag with a name that holds no "
            "secret.\n",
        ),
        ("+password=hunter2", "error: refusing the tag 'password=***': it looks like a secret"),
        (
            "+" + "x" * 100_000,
            "error: a tag is at most 200 characters; this one has 100000. Give it a short name; "
            "longer text goes in a note ('kleio note ID TEXT').\n",
        ),
        ("+a\x1b[2Jb", "error: not a tag: 'a\\x1b[2Jb' (tags are non-empty text"),
        ("+a\x85b", "error: not a tag:"),
    ],
)
def test_a_secret_an_overlong_or_a_control_character_tag_is_refused_whole(
    trial, git_repo, tag, message
):
    result = run_kleio("tag", trial[:8], "+kept", tag, cwd=git_repo)
    assert result.returncode == errors.EXIT_USAGE
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert "hunter2" not in result.stderr and "ghp_" not in result.stderr
    assert tags_of(trial, git_repo) == []  # nothing of the command was done


def test_a_stored_secret_tag_can_still_be_removed(trial, git_repo, db_uri):
    with open_store(db_uri) as store:
        store.update_trial(trial_id=trial, fields={"tags": ["password=hunter2", "x" * 300]})
    result = run_kleio("tag", trial[:8], "-password=hunter2", "-" + "x" * 300, "+ok", cwd=git_repo)
    assert result.returncode == 0, result.stderr
    assert tags_of(trial, git_repo) == ["ok"]
