"""kleio.ledger: every name importable from the package, each submodule loaded on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import kleio.ledger


def test_every_name_is_its_submodules_own():
    for name in kleio.ledger.__all__:
        value = getattr(kleio.ledger, name)
        if name.endswith("_ENV"):
            continue
        home = sys.modules[getattr(value, "__module__", None) or ""] if callable(value) else None
        assert home is None or getattr(home, name) is value, name


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="nothing_here"):
        kleio.ledger.nothing_here  # noqa: B018 - the access is the test


def test_a_start_without_leftovers_reads_and_journals_no_ledger(tmp_path):
    """The runner's start: its execution directory, and its trial's leftovers (none)."""
    code = (
        "import sys\nfrom kleio import ledger\nledger.create_execution_dir\n"
        f"ledger.recover_trial(None, {str(tmp_path)!r}, 'x' * 64)\n"
        "print(sorted(m for m in sys.modules if m.startswith('kleio.ledger.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "['kleio.ledger.directories', 'kleio.ledger.recovery']", (
        result.stderr
    )
