"""kleio rm's confirmation on a terminal (the command end to end: tests/cli/test_analysis.py)."""

from __future__ import annotations

import io
import sys

from kleio.cli.rm import _confirmed


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_prompt_counts_in_words(monkeypatch, capsys):
    one = [{"id": "a" * 64, "status": "completed", "command": ["python", "t.py"]}]
    two = [*one, {"id": "b" * 64, "status": "broken", "command": ["python", "t.py"]}]
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    assert _confirmed(one)
    assert capsys.readouterr().err.endswith("delete this trial? [y/N] ")
    monkeypatch.setattr(sys, "stdin", Terminal("\n"))
    assert not _confirmed(two)
    assert capsys.readouterr().err.endswith("delete these 2 trials? [y/N] ")
