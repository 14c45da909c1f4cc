"""kleio.channel.output: the tee never waits for the journal; waiting lines are bounded."""

from __future__ import annotations

import json
import os
import queue

from kleio.channel import output as output_module
from kleio.channel.output import PARTIAL_EVERY, Outputs


class StuckWriter:
    """A writer whose queue holds ``size`` messages and is never read unless told."""

    def __init__(self, size: int) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=size)
        self.problems: dict[str, int] = {}

    def problem(self, key: str, message: str, count: int = 1) -> None:
        self.problems[key] = self.problems.get(key, 0) + count

    def lines(self) -> list[tuple[str, dict]]:
        taken = []
        while not self.queue.empty():
            item = self.queue.get_nowait()
            taken += [(item.kind, json.loads(data)) for data in item.datas]
        return taken


def pipes():
    """A program's output pipe and the terminal it is teed to, each as (read end, write end)."""
    program, terminal = os.pipe(), os.pipe()
    os.set_blocking(program[0], False)
    return program, terminal


def test_lines_are_teed_then_journalled_and_the_end_is_told():
    (out_r, out_w), (term_r, term_w) = pipes()
    ended = []
    writer = StuckWriter(10)
    outputs = Outputs(writer, {out_r: ("stdout", term_w)}, ended.append)  # type: ignore[arg-type]
    os.write(out_w, b"one\ntw")
    assert outputs.read(out_r)
    assert os.read(term_r, 100) == b"one\ntw"
    os.close(out_w)
    assert not outputs.read(out_r)
    assert ended == [out_r] and not outputs.open
    assert writer.lines() == [("stdout", {"line": "one"}), ("stdout", {"line": "tw"})]
    for fd in (out_r, term_r, term_w):
        os.close(fd)


def test_a_stuck_writer_makes_lines_wait_then_drop_and_count(monkeypatch):
    monkeypatch.setattr(output_module, "MAX_OVERFLOW", 3)
    writer = StuckWriter(1)
    outputs = Outputs(writer, {5: ("stderr", 6)}, lambda fd: None)  # type: ignore[arg-type]
    for i in range(6):
        outputs.journal(5, [f"l{i}"])
    assert outputs.overflow_lines == 3  # one in the queue, three wait, two dropped
    assert writer.problems == {"output_lines_dropped": 2}
    assert writer.lines() == [("stderr", {"line": "l0"})]
    outputs.flush_overflow()
    assert writer.lines() == [("stderr", {"line": "l1"})]
    writer.queue = queue.Queue()  # the writer is back
    outputs.flush_overflow()
    assert [line["line"] for _, line in writer.lines()] == ["l2", "l3"]
    assert outputs.overflow_lines == 0


def test_an_unfinished_line_is_journalled_as_partial_once_it_lasts():
    (out_r, out_w), (term_r, term_w) = pipes()
    writer = StuckWriter(10)
    outputs = Outputs(writer, {out_r: ("stdout", term_w)}, lambda fd: None)  # type: ignore[arg-type]
    os.write(out_w, b"10%\r20%")
    outputs.read(out_r)
    outputs.partials(100.0)
    assert writer.lines() == []  # a line printed in pieces ends within microseconds
    outputs.partials(100.0 + PARTIAL_EVERY)
    outputs.partials(100.0 + 2 * PARTIAL_EVERY)  # unchanged: not journalled again
    assert writer.lines() == [("stdout", {"line": "20%", "partial": True})]
    for fd in (out_r, out_w, term_r, term_w):
        os.close(fd)
