"""The leading options of ``kleio run`` / ``save`` / ``branch``: a ``--tag`` is checked as
``kleio tag`` checks one, before anything runs."""

from __future__ import annotations

import pytest

from kleio import errors
from tests.conftest import run_kleio


@pytest.mark.parametrize(
    ("tag", "said"),
    [
        ("password=hunter2", "looks like a secret"),
        ("ghp_" + "a" * 36, "looks like a secret"),
        ("x" * 201, "at most 200 characters"),
        ("a,b", "not a tag"),
        ("", "not a tag"),
        ("bell\x07", "not a tag"),
    ],
)
def test_a_tag_that_cannot_be_one_is_refused_before_the_run(git_repo, db_uri, tag, said):
    for command in (("--tag", tag, "python", "train.py"), ("run", f"--tag={tag}", "python")):
        result = run_kleio(*command, cwd=git_repo)
        assert result.returncode == errors.EXIT_USAGE, (command, result.stderr)
        assert said in result.stderr and "Traceback" not in result.stderr
        assert "hunter2" not in result.stderr
    branched = run_kleio("branch", "--tag", tag, "abcd", cwd=git_repo)
    assert branched.returncode == errors.EXIT_USAGE and said in branched.stderr
    listed = run_kleio("ls", "--json", cwd=git_repo)
    assert listed.stdout.strip() in ("", "[]")  # nothing ran
