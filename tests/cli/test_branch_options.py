"""kleio branch's own options, walked by the one rule of kleio.argv (no kleio run needed)."""

from __future__ import annotations

import pytest

from kleio.cli.branch import parse
from kleio.errors import UsageError

DEFAULTS = {"timestamp": None, "no_run": False, "tags": [], "quiet": False, "fresh": False}


@pytest.mark.parametrize(
    ("argv", "changed", "trial", "overrides"),
    [
        (["3f2a", "--lr", "0.05"], {}, "3f2a", ["--lr", "0.05"]),
        (
            ["--no-run", "3f2a", "--lr=0.05", "--flag"],
            {"no_run": True},
            "3f2a",
            ["--lr=0.05", "--flag"],
        ),
        (["--timestamp", "epoch=10", "3f2a"], {"timestamp": "epoch=10"}, "3f2a", []),
        (
            ["--timestamp=2026-01-02T03:04", "-q", "3f2a", "--tag", "a", "--tag=b"],
            {"timestamp": "2026-01-02T03:04", "quiet": True, "tags": ["a", "b"]},
            "3f2a",
            [],
        ),
        (
            ["3f2a", "--fresh", "--epochs", "-1", "--quiet"],
            {"fresh": True, "quiet": True},
            "3f2a",
            ["--epochs", "-1"],
        ),
        # After --, every token is the program's, kleio's option names too.
        (
            ["3f2a", "--lr", "1", "--", "--tag", "x", "-q"],
            {},
            "3f2a",
            ["--lr", "1", "--tag", "x", "-q"],
        ),
        # -h after the id is the program's.
        (["3f2a", "-h"], {}, "3f2a", ["-h"]),
    ],
)
def test_parse(argv, changed, trial, overrides):
    assert parse(argv) == ({**DEFAULTS, **changed}, trial, overrides)


def test_help_before_the_id():
    assert parse(["-h", "3f2a"])[0]["help"] is True
    assert parse(["--no-run", "--help"])[0]["help"] is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "0.1", "3f2a"], "unknown option '--lr' before the trial id"),
        (["-1"], "unknown option '-1' before the trial id"),
        (["3f2a", "--tag"], "--tag needs a value"),
        # A value of kleio's own options never looks like an option (kleio.argv's rule).
        (["3f2a", "--timestamp", "--lr", "1"], "--timestamp needs a value"),
    ],
)
def test_refused(argv, message):
    with pytest.raises(UsageError, match=message):
        parse(argv)
