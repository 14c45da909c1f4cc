"""The one rule for walking a program's options (kleio.argv)."""

from __future__ import annotations

import pytest

from kleio.argv import apply_overrides, is_option, is_python, split_program, walk
from kleio.errors import UsageError


@pytest.mark.parametrize(
    "name",
    [
        "python",
        "python3",
        "python3.11",
        "pypy3",
        "pythonw",
        "/opt/venv/bin/python3.12",
        "Python.exe",
        "python3.11w",
    ],
)
def test_is_python(name):
    assert is_python(name)


@pytest.mark.parametrize("name", ["pythonx", "ipython", "bash", "py", "python-config"])
def test_is_not_python(name):
    assert not is_python(name)


def test_is_option():
    assert is_option("--lr") and is_option("-x") and is_option("--a=1")
    assert (
        not is_option("-1") and not is_option("-0.5") and not is_option("-") and not is_option("x")
    )


def test_walk():
    assert walk(["a", "--lr", "1", "--b=2", "--f", "-n", "-3", "--", "--x"]) == [
        ("pos", None, ["a"]),
        ("opt", "--lr", ["--lr", "1"]),
        ("opt", "--b", ["--b=2"]),
        ("opt", "--f", ["--f"]),
        ("opt", "-n", ["-n", "-3"]),
        ("end", None, ["--", "--x"]),
    ]


def test_split_program():
    assert split_program(["python", "-W", "ignore", "t.py", "a"]) == ("t.py", 4)
    assert split_program(["python", "-m", "pkg", "a"]) == ("pkg", 3)
    assert split_program(["./run.sh", "a"]) == ("./run.sh", 1)


def test_apply_overrides_replaces_any_spelling_and_appends():
    argv = ["python", "t.py", "--lr=0.1", "--n", "2", "--", "raw"]
    assert apply_overrides(argv, ["--lr", "0.05", "--seed=1"]) == [
        "python",
        "t.py",
        "--lr",
        "0.05",
        "--n",
        "2",
        "--seed=1",
        "--",
        "raw",
    ]
    with pytest.raises(UsageError):
        apply_overrides(argv, ["positional"])
