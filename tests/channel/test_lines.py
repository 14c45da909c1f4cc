"""kleio.channel.lines: the program's output cut into journal lines, progress bars
coalesced, bytes kept, endless lines bounded."""

from __future__ import annotations

from kleio.channel.lines import LineCutter


def test_line_cutter_coalesces_progress_and_keeps_bytes():
    cutter = LineCutter()
    assert cutter.feed(b"abc") == []
    assert cutter.feed(b"def\nxy") == ["abcdef"]
    assert cutter.feed(b"\r\n") == ["xy"]
    assert cutter.feed(b"10%\r20%\r") == []
    assert len(cutter.pending) <= len(b"20%\r")
    assert cutter.feed(b"100%\n") == ["100%"]
    assert cutter.feed(b"bad \xff byte\n") == ["bad \udcff byte"]
    assert cutter.feed(b"tail") == []
    assert cutter.flush() == ["tail"]


def test_line_cutter_bounds_an_endless_line():
    cutter = LineCutter()
    lines = cutter.feed(b"x" * 200_000)
    assert sum(len(line) for line in lines) + len(cutter.pending) == 200_000
    assert len(cutter.pending) <= 1 << 16
