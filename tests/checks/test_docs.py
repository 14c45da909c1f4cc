"""docs/reference/cli.rst shows 'kleio check --help' as it is; docs/checks.rst lists every
built-in check with its default thresholds."""

from __future__ import annotations

import pathlib

from kleio.checks.builtin import BUILTIN
from kleio.checks.registry import available

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"


def test_checks_page_lists_every_builtin_check_and_its_defaults():
    text = (DOCS / "checks.rst").read_text(encoding="utf-8")
    classes = available()
    for name in BUILTIN:
        assert f"   * - ``{name}``\n" in text, name
        for option, value in classes[name].defaults.items():
            assert f"``{option}: {value:g}``" in text, (name, option)
