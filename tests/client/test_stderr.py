"""kleio's one warn (kleio.client.stderr): one flushed line, and never an exception."""

from __future__ import annotations

import io
import sys

from kleio import trial
from kleio.client import stderr, transport


def test_a_warning_is_one_flushed_line(monkeypatch):
    class Unbuffered(io.StringIO):
        flushed = ""

        def flush(self) -> None:
            self.flushed = self.getvalue()

    err = Unbuffered()
    monkeypatch.setattr(sys, "stderr", err)
    stderr.warn("the journal is slow")
    assert err.flushed == "kleio: warning: the journal is slow\n"


def test_a_closed_or_broken_stderr_loses_the_warning_not_the_call(monkeypatch):
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)  # ValueError: I/O operation on closed file
    stderr.warn("lost")

    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stderr", Broken())
    stderr.warn("lost too")


def test_the_client_and_the_core_warn_with_the_same_function():
    assert trial.warn is stderr.warn
    assert transport.warn is stderr.warn
