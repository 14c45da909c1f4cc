"""kleio.snapshot.safety: which recorded paths a trial's code may be rebuilt at."""

from __future__ import annotations

import pytest


def test_safe_path_accepts_names_and_refuses_places():
    from kleio.snapshot.safety import UnsafeSnapshot, safe_path

    for path in [
        "a.py",
        "pkg/mod.py",
        ".gitignore",
        ".github/ci.yml",
        "a/b.git",
        "git",
        "sp ace/\u00e9.py",
        "\udcff.py",
        "x" * 255,
    ]:
        assert safe_path(path, "file") == path
    for path in [
        "",
        "/etc/x",
        "../x",
        "a/../../x",
        "a//b",
        "a/",
        "./a",
        ".git",
        "a/.git/x",
        ".GIT/x",
        ".git./x",
        ".git::$INDEX_ALLOCATION/x",
        "git~1/x",
        ".g\u200cit/x",
        "a\0b",
        "x" * 256,
        "\ud800.py",
        None,
        3,
        ["a"],
    ]:
        with pytest.raises(UnsafeSnapshot):
            safe_path(path, "file")
